# CoupleFace on MS1MV3: MobileFaceNet student (512-d) + ArcFace + FCD + RAD towards the frozen
# IResNet-100 teacher (insightface's ms1mv3_arcface_r100_fp16/backbone.pth, or a checkpoint of
# configs/arcface/iresnet100_8xb128_ms1mv3.py), student recipe ms1m_40e_mbf.py (8 GPUs x 128,
# 40 epochs). Before the first epoch RelationMiningHook embeds every training image with the
# teacher (split across the GPUs), mines each identity's 8 nearest identities and writes
# relations.npz in the work dir (reloaded on resume). PartnerSampler then gives each GPU an
# ordinary shuffled batch of 128 (what ArcFace sees) plus 8 images of identities drawn from
# the mined neighbours of the batch's identities (hub identities capped; 64 per global step),
# on which FCD and RAD also work: the variant that was best on the SynthFaces validation pairs
# (16 per 128 there; docs/benchmarks.md; it does not beat FCD beyond the seed spread). At MS1M
# scale (93,431 identities, about 1 % of them in a batch) the mined partners are what brings
# confusable identities together. 8 rather than 16 partners keep the step within 1.15x the
# student alone (136 / 128 images = 1.06x; benchmark: tools/analysis_tools/benchmark.py
# --sections step, row (e); docs/benchmarks.md "Step cost of the partner images").
#   bash tools/dist_train.sh configs/coupleface/mobilefacenet_coupleface-iresnet100_8xb136_ms1mv3.py 8 \
#       --cfg-options model.teacher.checkpoint=PATH
_base_ = ['../fcd/mobilefacenet_fcd-iresnet100_8xb128_ms1mv3.py']

num_partners = 8  # mined partner images per GPU batch, on top of the 128 shuffled ones
model = dict(
    # the student's own relations (student-student cosines over the global batch, gathered
    # with gradient) against the teacher's on the same pairs, as a temperature-KL over each
    # anchor's positives and 16 hardest negatives by teacher similarity. The `cross` form
    # (student anchor vs teacher partners) is FCD projected on the partners (docs/method.md).
    # The weight of the SynthFaces configs (chosen on their validation pairs), not tuned on MS1M.
    rad_loss=dict(type='RelationAwareDistillationLoss', relation='student', distance='kl',
                  temperature=0.1, num_negatives=16, loss_weight=250.0),
    partner_samples=num_partners,  # ArcFace on the shuffled 128 only
)
train_dataloader = dict(
    # batch_size must equal the sampler's: 128 shuffled + 8 partners
    batch_size=128 + num_partners,
    sampler=dict(_delete_=True, type='PartnerSampler', batch_size=128 + num_partners,
                 num_partners=num_partners, top_k=8),
)
# num_neighbours: identities mined per identity (= the sampler's top_k); batch_size/num_workers:
# the teacher's extraction pass over the training set (per GPU)
custom_hooks = _base_.custom_hooks + [
    dict(type='RelationMiningHook', num_neighbours=8, batch_size=256, num_workers=8)]
# the recipe's learning rate is for this step (8 x 128 classified images + the partners):
# with auto_scale_lr enabled it stays the recipe's
auto_scale_lr = dict(base_batch_size=8 * (128 + num_partners))
