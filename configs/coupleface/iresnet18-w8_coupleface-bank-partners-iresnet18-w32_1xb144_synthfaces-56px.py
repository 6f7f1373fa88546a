# CoupleFace, partner variant (issue 14): FCD + RAD on the student's own relations (student-
# student cosines over the global batch, temperature-KL form over each anchor's positives and
# 16 hardest negatives by teacher similarity) against the teacher's, on ordinary shuffled
# batches of 128 with 16 mined partner images appended (PartnerSampler: an image of an
# identity drawn from the anchor's whole mined top-8, hub identities capped). ArcFace sees the
# 128 shuffled images only (partner_samples=16); FCD and RAD see all 144. RAD weight chosen on
# the validation pairs (all-pairs TAR@1e-3, seed 0): 50 -> 62.8, 250 -> 63.1, 1000 -> 62.1
# (FCD alone 62.4; tools/run_demo.py --suite rad_weight). Same student, connector, schedule
# and teacher bank as the FCD row.
_base_ = ['../fcd/iresnet18-w8_fcd-bank-iresnet18-w32_1xb128_synthfaces-56px.py']

model = dict(
    rad_loss=dict(type='RelationAwareDistillationLoss', relation='student', distance='kl',
                  temperature=0.1, num_negatives=16, loss_weight=250.0),
    partner_samples=16,
    grad_norm_interval=10,
)
train_dataloader = dict(
    batch_size=144,
    sampler=dict(_delete_=True, type='PartnerSampler', batch_size=144, num_partners=16,
                 top_k=8),
)
custom_hooks = _base_.custom_hooks + [dict(type='RelationMiningHook', num_neighbours=8)]
# the lr (0.1, as every SynthFaces row) is not rescaled: auto_scale_lr stays disabled
auto_scale_lr = dict(base_batch_size=144)
