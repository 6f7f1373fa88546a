# MobileFaceNet (insightface's mbf) + ArcFace on SynthFaces at 56 px.
_base_ = [
    '../_base_/models/mobilefacenet_arcface.py',
    '../_base_/datasets/synthfaces_56px.py',
    '../_base_/schedules/synthfaces.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(input_size=56, embedding_size=128),
    head=dict(num_classes={{_base_.num_classes}}, in_channels=128),
)
# 38 iterations an epoch at 1-5 s each on 2 CPU cores: log every 10 (at the runtime's 50 the
# first line would come after about 4 minutes)
default_hooks = dict(logger=dict(interval=10))
