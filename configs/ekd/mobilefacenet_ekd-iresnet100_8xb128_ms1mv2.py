# EKD-style baseline on MS1MV2 (configs/ekd/README.md): the MobileFaceNet student (512-d) +
# ArcFace + the evaluation-oriented rank loss on the critical pairs of the global batch
# (8 GPUs x 128, relations gathered across ranks), against the frozen IResNet-100 teacher of
# the same 112 px face; no FCD term; the MobileFaceNet recipe (ms1m_40e_mbf.py).
# Teacher: insightface's ms1mv2_arcface_r100_fp16/backbone.pth as released, or a checkpoint
# of configs/arcface/iresnet100_8xb128_ms1mv2.py:
#   bash tools/dist_train.sh configs/ekd/mobilefacenet_ekd-iresnet100_8xb128_ms1mv2.py 8 \
#       --cfg-options model.teacher.checkpoint=PATH
_base_ = [
    '../_base_/models/distiller_mobilefacenet-iresnet100.py',
    '../_base_/datasets/ms1mv2.py',
    '../_base_/schedules/ms1m_40e_mbf.py',
    '../_base_/default_runtime.py',
]

teacher_checkpoint = 'checkpoints/ms1mv2_arcface_r100_fp16/backbone.pth'
# both embeddings are 512-d (the base's connector=None): the ranked relations are the
# student's own
model = dict(
    student=dict(head=dict(num_classes={{_base_.num_classes}})),
    teacher=dict(checkpoint=teacher_checkpoint),
    # logged as loss_ekd; 1024 x 1023 ordered negative pairs per step, so FAR 1e-4 is ~100
    # pairs above the threshold; weight of the SynthFaces config, not tuned on MS1M
    extra_losses=dict(
        ekd=dict(type='EvaluationRankLoss', target_fars=(1e-2, 1e-3, 1e-4),
                 selection='disagreement', temperature=0.05, threshold_momentum=0.9,
                 loss_weight=10.0)),
)
