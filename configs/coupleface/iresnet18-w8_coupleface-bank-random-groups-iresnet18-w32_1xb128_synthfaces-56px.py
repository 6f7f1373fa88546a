# Ablation row (c) of the SynthFaces ablation (configs/coupleface/README.md): FCD + RAD
# without mining. RelationSampler still builds batches of 8 groups x 4 identities x 4 images,
# but a group's other identities are random (random_groups=True), so RAD sees mostly easy
# negatives; RelationMiningHook logs "mining skipped" and mines nothing. Otherwise row (e):
# same teacher bank, losses and weights.
_base_ = ['./iresnet18-w8_coupleface-bank-iresnet18-w32_1xb128_synthfaces-56px.py']

# groups of 4 identities x 4 images, as when the ablation table was measured
train_dataloader = dict(sampler=dict(random_groups=True, group_size=4, images_per_identity=4))
