# Student baseline on SynthFaces: IResNet-18 at eighth width (8 base channels) + ArcFace, a 64-d
# embedding, 56 px input (a plain resize of the aligned 112 px crops) so it trains on a CPU in
# about two minutes. Capacity-limited on purpose, the way MobileFaceNet is against IResNet-100
# on MS1M: trained alone it stays > 15 TAR@FAR=1e-2 points below the IResNet-18 (w32, 256-d)
# teacher (docs/benchmarks.md, "The benchmark regime"). Same code path as the MS1M recipes.
# Row "student alone" of the SynthFaces benchmark (configs/coupleface/README.md): no teacher.
_base_ = [
    '../_base_/models/iresnet18_arcface.py',
    '../_base_/datasets/synthfaces_56px.py',
    '../_base_/schedules/synthfaces.py',
    '../_base_/default_runtime.py',
]
# channels_last: NHWC weights and inputs, 0.75-0.85x the CPU fwd+bwd time of these models on
# both oneDNN code paths (AVX-512 and AVX2; docs/benchmarks.md, Channels-last); same results up
# to float summation order. Convolutions with < 16 input channels stay NCHW on the CPU (a torch
# bug), so this narrow model is safe.
model = dict(
    channels_last=True,
    backbone=dict(input_size=56, base_channels=8, embedding_size=64),
    head=dict(num_classes={{_base_.num_classes}}, in_channels=64),
)
# 38 iterations an epoch at 1-5 s each on 2 CPU cores: log every 10 (at the runtime's 50 the
# first line would come after about 4 minutes)
default_hooks = dict(logger=dict(interval=10))
