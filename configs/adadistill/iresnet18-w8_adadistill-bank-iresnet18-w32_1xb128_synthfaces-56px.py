# AdaDistill-style baseline on SynthFaces (configs/adadistill/README.md): the IResNet-18 (w8,
# 64-d) student trained with ArcFace against class centers distilled from the IResNet-18 (w32)
# teacher's embeddings (AdaDistillHead: adaptive moving average, no gradient), read from the
# teacher bank. No other loss term. The head works in the teacher's 256-d space: like-for-like
# with the other SynthFaces rows, the 64-d student reaches it through the inherited
# LinearConnector (64 -> 256), which the distiller puts in front of a head that uses teacher
# embeddings. Default ResumableSampler batches (random images). Write the bank once with
#   python tools/extract_embeddings.py configs/arcface/iresnet18-w32_1xb128_synthfaces-56px.py \
#       TEACHER.pth --out work_dirs/demo/teacher_bank/synthfaces
_base_ = ['../fcd/iresnet18-w8_fcd-iresnet18-w32_1xb128_synthfaces-56px.py']

# prefix of the bank files (PREFIX.npy, PREFIX.json); override with model.teacher_bank.path=...
teacher_bank = 'work_dirs/demo/teacher_bank/synthfaces'
model = dict(
    student=dict(
        head=dict(_delete_=True, type='AdaDistillHead', num_classes={{_base_.num_classes}},
                  in_channels=256, scale=64.0, margin=0.5, alpha='adaptive')),
    teacher=None,
    teacher_bank=dict(path=teacher_bank),
    fcd_loss=None,
)
