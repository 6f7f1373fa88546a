# Student baseline on SynthFaces: IResNet-18 at quarter width (16 base channels) + ArcFace,
# 56 px input (a plain resize of the aligned 112 px crops) so it trains on a CPU in minutes.
# Same code path as the MS1M recipes; only the sizes differ.
# Ablation row (a) of the SynthFaces ablation (configs/coupleface/README.md): the student
# alone, no teacher.
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
    backbone=dict(input_size=56, base_channels=16, embedding_size=128),
    head=dict(num_classes={{_base_.num_classes}}, in_channels=128),
)
