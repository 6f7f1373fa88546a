# CoupleFace with a teacher bank: the teacher's embeddings of every training image (and its
# mirror) are read from a memory-mapped file written once by tools/extract_embeddings.py,
# instead of running the teacher every step. Valid because the teacher view is not
# randomly augmented (the flip is a stored second view).
# Ablation row (e) of the SynthFaces ablation (configs/coupleface/README.md): the full method,
# FCD + RAD on batches of mined identity groups. Write the bank first, with the teacher's
# config and checkpoint (the (b)-(e) ablation configs and the RKD bank config share it):
#   python tools/extract_embeddings.py configs/arcface/iresnet18-w32_1xb128_synthfaces-56px.py \
#       TEACHER.pth --out work_dirs/demo/teacher_bank/synthfaces
_base_ = ['./iresnet18-w8_coupleface-iresnet18-w32_1xb128_synthfaces-56px.py']

# prefix of the bank files (PREFIX.npy, PREFIX.json); override with model.teacher_bank.path=...
teacher_bank = 'work_dirs/demo/teacher_bank/synthfaces'
model = dict(teacher=None, teacher_bank=dict(path=teacher_bank))
