# Masked-face track on SynthFaces (tools/run_demo.py --suite masked): the FCD bank config with
# SyntheticMask on half of the student's training images (after the flip) while the teacher
# embedding is the clean image's (keep_teacher_view=True; the bank holds the clean, possibly
# flipped, view, so it stays valid). Validated and tested clean and masked_unmasked.
_base_ = ['./iresnet18-w8_fcd-bank-iresnet18-w32_1xb128_synthfaces-56px.py']

train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='SyntheticMask', p=0.5, keep_teacher_view=True),
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
