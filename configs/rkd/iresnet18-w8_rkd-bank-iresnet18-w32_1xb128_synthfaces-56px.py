# RKD baseline on SynthFaces: the IResNet-18 (w16) student + ArcFace + Relational Knowledge
# Distillation (Park et al., CVPR 2019): distance-wise (weight 25) and angle-wise (weight 50)
# relations of the local batch, matched to the IResNet-18 (w32) teacher's. No FCD, no RAD,
# default ResumableSampler batches (random images). Teacher embeddings come from the same
# teacher bank as the (b)-(e) ablation configs (configs/coupleface/README.md); write it with
#   python tools/extract_embeddings.py configs/arcface/iresnet18-w32_1xb128_synthfaces-56px.py \
#       TEACHER.pth --out work_dirs/demo/teacher_bank/synthfaces
# RKD is dimension-free, but the distiller hands every loss the same (s, t) pair, so the
# 128-d student goes through the inherited LinearConnector to the teacher's 256-d.
_base_ = ['../fcd/iresnet18-w8_fcd-bank-iresnet18-w32_1xb128_synthfaces-56px.py']

model = dict(
    fcd_loss=None,
    # {name: loss}: each is logged as loss_<name> (loss_rkd_d, loss_rkd_a); the paper's weights
    extra_losses=dict(rkd_d=dict(type='DistanceWiseRKD', loss_weight=25.0),
                      rkd_a=dict(type='AngleWiseRKD', loss_weight=50.0)),
)
