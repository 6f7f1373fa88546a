# Teacher on SynthFaces: IResNet-18 at half width (32 base channels) + ArcFace, 56 px input,
# 256-d embeddings. Bigger and slower than the students; same code path as the MS1M teachers.
_base_ = [
    '../_base_/models/iresnet18_arcface.py',
    '../_base_/datasets/synthfaces_56px.py',
    '../_base_/schedules/synthfaces.py',
    '../_base_/default_runtime.py',
]
# channels_last: NHWC weights and inputs, 0.75-0.85x the CPU fwd+bwd time of these models on
# both oneDNN code paths (AVX-512 and AVX2; docs/benchmarks.md, Channels-last); same results up
# to float summation order. Convolutions with < 16 input channels stay NCHW on the CPU (a torch
# bug), so narrowing this config is safe.
model = dict(
    channels_last=True,
    backbone=dict(arch=18, input_size=56, base_channels=32, embedding_size=256),
    head=dict(num_classes={{_base_.num_classes}}, in_channels=256),
)
# 38 iterations an epoch at 1-5 s each on 2 CPU cores: log every 10 (at the runtime's 50 the
# first line would come after about 4 minutes)
default_hooks = dict(logger=dict(interval=10))
