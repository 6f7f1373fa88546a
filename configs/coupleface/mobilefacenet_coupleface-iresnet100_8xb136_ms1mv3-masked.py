# Masked-face CoupleFace on MS1MV3, the ICCV 2021 Masked Face Recognition challenge (MFR)
# MS1M-track set-up: trained on MS1MV3 only, 112x112 RGB aligned faces in, a 512-d embedding
# out (the track allows at most 512). The MobileFaceNet student sees a synthetically masked
# face (SyntheticMask on half of the samples, after the flip), the frozen IResNet-100 teacher
# always the clean face (keep_teacher_view=True), so FCD and RAD pull masked student
# embeddings towards clean teacher ones. Otherwise the MS1MV3 CoupleFace recipe
# (mobilefacenet_coupleface-iresnet100_8xb136_ms1mv3.py). Pipelines as
# configs/_base_/datasets/ms1m_masked.py: validation on LFW clean and masked_unmasked (masked
# probe vs clean gallery), testing on all five sets under both protocols.
_base_ = ['./mobilefacenet_coupleface-iresnet100_8xb136_ms1mv3.py']

train_pipeline = [
    dict(type='LoadFaceImage', size=112, on_error='skip', max_failures=100),
    dict(type='RandomFaceFlip', prob=0.5),
    # masks the student view with p=0.5; the clean (flipped) image becomes teacher_inputs
    dict(type='SyntheticMask', p=0.5, keep_teacher_view=True),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = {{_base_.lfw_masked_dataloader}}
test_dataloader = dict(dataset=dict(protocols=('clean', 'masked_unmasked'),
                                    pipeline={{_base_.masked_test_pipeline}}))
