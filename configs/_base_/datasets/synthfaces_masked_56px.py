# Masked-face training on SynthFaces at 56 px (the CPU-sized twin of ms1m_masked.py): after the
# flip, SyntheticMask masks the student view of half the samples and keeps the clean face as
# the teacher view. Validation and test pairs are evaluated clean and masked_unmasked (the
# first image of every pair masked, always the same way); VerificationMetric adds the
# '<set>/mfr/...' drop keys. The pipelines are ../pipelines/synthfaces_masked_56px.py's.
_base_ = ['./synthfaces_56px.py', '../pipelines/synthfaces_masked_56px.py']

train_dataloader = dict(dataset=dict(pipeline={{_base_.masked_distill_train_pipeline}}))
val_dataloader = dict(dataset=dict(protocols={{_base_.masked_protocols}},
                                   pipeline={{_base_.masked_test_pipeline}}))
test_dataloader = dict(dataset=dict(protocols={{_base_.masked_protocols}},
                                    pipeline={{_base_.masked_test_pipeline}}))
