# CoupleFace, relation-KL variant (issue 14): FCD + RAD on the student's own relations
# (student-student cosines over the global batch, all-gathered with gradient) against the
# teacher's on the same pairs, as a temperature-KL over each anchor's informative partners
# (its positives and 16 hardest negatives by teacher similarity), on ordinary shuffled
# batches. Unlike the `cross` form (the FCD residual projected on the partners, docs/method.md)
# this constrains what FCD does not: the geometry among the student's embeddings. The weight
# (250, with FCD at 100) was chosen on the validation pairs over 50/250/1000 with the partner
# variant (tools/run_demo.py --suite rad_weight); gnorm_rad / gnorm_fcd are logged
# (grad_norm_interval). Same student, connector, schedule and teacher bank as the FCD row.
_base_ = ['../fcd/iresnet18-w8_fcd-bank-iresnet18-w32_1xb128_synthfaces-56px.py']

model = dict(
    rad_loss=dict(type='RelationAwareDistillationLoss', relation='student', distance='kl',
                  temperature=0.1, num_negatives=16, loss_weight=250.0),
    grad_norm_interval=10,
)
