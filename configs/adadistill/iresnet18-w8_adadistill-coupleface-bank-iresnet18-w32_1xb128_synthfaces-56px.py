# AdaDistill-style head + CoupleFace (beyond the paper, issue 14): the AdaDistill-style row's
# head (ArcFace against class centers distilled from the teacher, through the 64 -> 256
# connector) plus CoupleFace's FCD and student-relation KL RAD of the relation-KL row
# (configs/coupleface/iresnet18-w8_coupleface-bank-kl-...). Same student, connector,
# schedule and teacher bank as every SynthFaces row; default ResumableSampler batches.
_base_ = ['./iresnet18-w8_adadistill-bank-iresnet18-w32_1xb128_synthfaces-56px.py']

model = dict(
    fcd_loss=dict(_delete_=True, type='FeatureConsistencyLoss', mode='l2', loss_weight=100.0),
    rad_loss=dict(type='RelationAwareDistillationLoss', relation='student', distance='kl',
                  temperature=0.1, num_negatives=16, loss_weight=250.0),
    grad_norm_interval=10,
)
