# Ablation row (b) of the SynthFaces ablation (configs/coupleface/README.md): the w16 student +
# ArcFace + FCD only, the teacher's embeddings read from a teacher bank instead of running
# the IResNet-18 (w32) teacher every step; default ResumableSampler batches (random images).
# Same bank as the (c)-(e) rows; write it once with
#   python tools/extract_embeddings.py configs/arcface/iresnet18-w32_1xb128_synthfaces-56px.py \
#       TEACHER.pth --out work_dirs/demo/teacher_bank/synthfaces
_base_ = ['./iresnet18-w8_fcd-iresnet18-w32_1xb128_synthfaces-56px.py']

# prefix of the bank files (PREFIX.npy, PREFIX.json); override with model.teacher_bank.path=...
teacher_bank = 'work_dirs/demo/teacher_bank/synthfaces'
model = dict(teacher=None, teacher_bank=dict(path=teacher_bank))
