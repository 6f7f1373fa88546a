# Masked-face track on SynthFaces (the CPU-sized twin of the ICCV 2021 MFR challenge set-up):
# the IResNet-18 (w8, 64-d) student alone, SyntheticMask on half of its training images (after
# the flip); validated and tested on the clean and the masked_unmasked (first image of every
# pair masked) protocols. Row "student alone" of the masked suite (tools/run_demo.py --suite
# masked); the pipelines are configs/_base_/datasets/synthfaces_masked_56px.py's.
_base_ = ['./iresnet18-w8_1xb128_synthfaces-56px.py']

train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='SyntheticMask', p=0.5),
    dict(type='PackFaceInputs'),
]
masked_test_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='ProtocolMask', seed=0),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(protocols=('clean', 'masked_unmasked'),
                                   pipeline=masked_test_pipeline))
test_dataloader = dict(dataset=dict(protocols=('clean', 'masked_unmasked'),
                                    pipeline=masked_test_pipeline))
