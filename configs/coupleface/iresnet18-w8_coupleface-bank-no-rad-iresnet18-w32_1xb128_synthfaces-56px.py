# Ablation row (d) of the SynthFaces ablation (configs/coupleface/README.md): FCD on the mined
# batches of row (e, 4 x 4 groups) (RelationSampler groups of teacher-confusable identities, mined by
# RelationMiningHook) but without RAD (rad_loss=None): separates what the mined batches alone
# give from what the relation loss adds. Same teacher bank as rows (b)-(e).
_base_ = ['./iresnet18-w8_coupleface-bank-iresnet18-w32_1xb128_synthfaces-56px.py']

model = dict(rad_loss=None)
# groups of 4 identities x 4 images, as when the ablation table was measured
train_dataloader = dict(sampler=dict(group_size=4, images_per_identity=4))
