# EKD-style baseline on SynthFaces (configs/ekd/README.md): the IResNet-18 (w8, 64-d) student +
# ArcFace + the evaluation-oriented rank loss (EvaluationRankLoss) on the critical pairs of
# each batch, against the IResNet-18 (w32) teacher's embeddings read from the teacher bank.
# No FCD term: EKD argues against one-to-one embedding constraints. Like-for-like with the
# other SynthFaces rows: the same 64-d student and the inherited LinearConnector (64 -> 256),
# whose outputs' relations are ranked (the distiller hands every loss the connector output).
# Default ResumableSampler batches (random images). Write the bank once with
#   python tools/extract_embeddings.py configs/arcface/iresnet18-w32_1xb128_synthfaces-56px.py \
#       TEACHER.pth --out work_dirs/demo/teacher_bank/synthfaces
_base_ = ['../fcd/iresnet18-w8_fcd-iresnet18-w32_1xb128_synthfaces-56px.py']

# prefix of the bank files (PREFIX.npy, PREFIX.json); override with model.teacher_bank.path=...
teacher_bank = 'work_dirs/demo/teacher_bank/synthfaces'
model = dict(
    teacher=None,
    teacher_bank=dict(path=teacher_bank),
    fcd_loss=None,
    # logged as loss_ekd; thresholds at FAR 1e-2/1e-3/1e-4 over the batch's negative pairs
    # (moving average), critical pairs = teacher/student accept-reject disagreements; the
    # weight is not tuned
    extra_losses=dict(
        ekd=dict(type='EvaluationRankLoss', target_fars=(1e-2, 1e-3, 1e-4),
                 selection='disagreement', temperature=0.05, threshold_momentum=0.9,
                 loss_weight=10.0)),
)
