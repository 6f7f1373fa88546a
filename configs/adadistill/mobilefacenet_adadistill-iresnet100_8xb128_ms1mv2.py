# AdaDistill-style baseline on MS1MV2 (configs/adadistill/README.md): the MobileFaceNet
# student (512-d) trained with ArcFace against class centers distilled from the frozen
# IResNet-100 teacher's embeddings (AdaDistillHead; centers updated from the global batch of
# 8 GPUs x 128, identical on every rank); no other loss term; the MobileFaceNet recipe
# (ms1m_40e_mbf.py).
# Teacher: insightface's ms1mv2_arcface_r100_fp16/backbone.pth as released, or a checkpoint
# of configs/arcface/iresnet100_8xb128_ms1mv2.py:
#   bash tools/dist_train.sh \
#       configs/adadistill/mobilefacenet_adadistill-iresnet100_8xb128_ms1mv2.py 8 \
#       --cfg-options model.teacher.checkpoint=PATH
_base_ = [
    '../_base_/models/distiller_mobilefacenet-iresnet100.py',
    '../_base_/datasets/ms1mv2.py',
    '../_base_/schedules/ms1m_40e_mbf.py',
    '../_base_/default_runtime.py',
]

teacher_checkpoint = 'checkpoints/ms1mv2_arcface_r100_fp16/backbone.pth'
model = dict(
    # the head works in the teacher's embedding space: the student embeds at 512 too, so the
    # base's connector=None stays
    student=dict(
        head=dict(_delete_=True, type='AdaDistillHead', num_classes={{_base_.num_classes}},
                  in_channels=512, scale=64.0, margin=0.5, alpha='adaptive')),
    teacher=dict(checkpoint=teacher_checkpoint),
)
