# The fast training data path of SynthFaces at 56 px (docs/architecture.md §2.1, fast path),
# as named variables only (no dataloader), so a config adds it as a second base:
#   _base_ = ['./<config>.py', '../_base_/pipelines/synthfaces_fast_56px.py']
#   train_dataloader = dict(collate_fn=fast_collate,
#                           dataset=dict(pipeline={{_base_.fast_train_pipeline}}))
# The same decode, flip and masks as the default pipelines (the batches are equal bit for
# bit, tests/datasets/test_face_batch_collate.py), packed as arrays: face_batch_collate
# writes one uint8 batch tensor and one FaceBatchSamples instead of one DataSample per
# image. Validation and test keep PackFaceInputs.
# Each pipeline goes with its collate: where nothing after the flip looks at the image, the
# collate draws the flips of the whole batch (flip_prob: the same flips, images and flags as
# RandomFaceFlip(prob=0.5), without a SeedSequence + PCG64 per sample) and the pipeline has
# no RandomFaceFlip; the masked pipeline flips per sample because SyntheticMask draws on the
# flipped image.
fast_collate = dict(type='face_batch_collate', flip_prob=0.5)
fast_train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='PackFaceArrays'),
]
# The fastest CPU path: the collate decodes (and resizes) each JPEG as LoadFaceImage(56)
# would and writes it, flipped where drawn, into the batch tensor while it is still in the
# CPU cache (docs/benchmarks.md, "Data pipeline at decode speed"). Same batches again.
cpu_decode_collate = dict(type='face_batch_collate', flip_prob=0.5, decode='cpu')
cpu_decode_train_pipeline = [
    dict(type='PackFaceArrays', size=56),
]
fast_masked_collate = dict(type='face_batch_collate')
fast_masked_distill_train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='SyntheticMask', p=0.5, keep_teacher_view=True),
    dict(type='PackFaceArrays'),
]
# JPEGs decoded by FaceDataPreprocessor on the model's device (nvJPEG on CUDA), brought to
# 56 px there (OpenCV's INTER_AREA, exact for the 112 -> 56 factor) and flipped there by the
# flags fast_collate draws for the batch on the CPU. No masks (they are drawn on decoded
# images). Use with collate_fn=fast_collate.
device_decode_train_pipeline = [
    dict(type='PackFaceArrays', size=56),
]
