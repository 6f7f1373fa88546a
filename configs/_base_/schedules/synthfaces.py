# A short CPU schedule for SynthFaces: SGD as insightface (lr 0.1, momentum 0.9, weight
# decay 5e-4), per-iteration linear warm-up over the first epoch then polynomial decay,
# gradient clipping at norm 5. 8 epochs (304 steps at 4,800 images): at 4 epochs (152 steps,
# 38 of them warm-up) every model was schedule-bound and the teacher no better than the
# student (docs/benchmarks.md, "The benchmark regime"). Validation (flip test) runs once, at the end.
max_epochs = 8
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4),
    clip_grad=dict(max_norm=5, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='PolyLR', power=2.0, eta_min=0.0, by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128, enable=False)
