# A generic mmpretrain backbone (ResNet-18) with EmbeddingNeck + ArcFace on SynthFaces at 56 px.
# ResNet's stem and 4 stages reduce 56 px to a 2x2 map.
_base_ = [
    '../_base_/models/resnet18_embneck_arcface.py',
    '../_base_/datasets/synthfaces_56px.py',
    '../_base_/schedules/synthfaces.py',
    '../_base_/default_runtime.py',
]
model = dict(
    neck=dict(feat_size=2, embedding_size=128),
    head=dict(num_classes={{_base_.num_classes}}, in_channels=128),
)
# 38 iterations an epoch at 1-5 s each on 2 CPU cores: log every 10 (at the runtime's 50 the
# first line would come after about 4 minutes)
default_hooks = dict(logger=dict(interval=10))
