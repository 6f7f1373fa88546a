# Masked-face track on SynthFaces (the CPU-sized twin of the ICCV 2021 MFR challenge set-up):
# the IResNet-18 (w8, 64-d) student alone, SyntheticMask on half of its training images (after
# the flip); validated and tested on the clean and the masked_unmasked (first image of every
# pair masked) protocols. Row "student alone" of the masked suite (tools/run_demo.py --suite
# masked).
_base_ = ['./iresnet18-w8_1xb128_synthfaces-56px.py',
          '../_base_/pipelines/synthfaces_masked_56px.py']

train_dataloader = dict(dataset=dict(pipeline={{_base_.masked_student_train_pipeline}}))
val_dataloader = dict(dataset=dict(protocols={{_base_.masked_protocols}},
                                   pipeline={{_base_.masked_test_pipeline}}))
test_dataloader = dict(dataset=dict(protocols={{_base_.masked_protocols}},
                                    pipeline={{_base_.masked_test_pipeline}}))
