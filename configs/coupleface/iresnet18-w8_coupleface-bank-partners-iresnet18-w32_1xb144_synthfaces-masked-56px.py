# Masked-face track on SynthFaces (tools/run_demo.py --suite masked): the CoupleFace partner
# config (student-relation KL RAD, 128 shuffled + 16 mined partner images) with SyntheticMask
# on half of the student's training images (after the flip) while the teacher embedding is the
# clean image's (keep_teacher_view=True; the bank holds the clean, possibly flipped, view, so
# it stays valid; mining reads the clean view too). Validated and tested clean and
# masked_unmasked.
_base_ = ['./iresnet18-w8_coupleface-bank-partners-iresnet18-w32_1xb144_synthfaces-56px.py',
          '../_base_/pipelines/synthfaces_masked_56px.py']

train_dataloader = dict(dataset=dict(pipeline={{_base_.masked_distill_train_pipeline}}))
val_dataloader = dict(dataset=dict(protocols={{_base_.masked_protocols}},
                                   pipeline={{_base_.masked_test_pipeline}}))
test_dataloader = dict(dataset=dict(protocols={{_base_.masked_protocols}},
                                    pipeline={{_base_.masked_test_pipeline}}))
