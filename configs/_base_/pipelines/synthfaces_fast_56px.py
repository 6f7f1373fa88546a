# The fast training data path of SynthFaces at 56 px (docs/architecture.md §2.1, fast path),
# as named variables only (no dataloader), so a config adds it as a second base:
#   _base_ = ['./<config>.py', '../_base_/pipelines/synthfaces_fast_56px.py']
#   train_dataloader = dict(collate_fn=fast_collate,
#                           dataset=dict(pipeline={{_base_.fast_train_pipeline}}))
# The same decode, flip and masks as the default pipelines (the batches are equal bit for
# bit, tests/datasets/test_face_batch_collate.py), packed as arrays: face_batch_collate
# writes one uint8 batch tensor and one FaceBatchSamples instead of one DataSample per
# image. Validation and test keep PackFaceInputs.
fast_collate = dict(type='face_batch_collate')
fast_train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='PackFaceArrays'),
]
fast_masked_distill_train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='SyntheticMask', p=0.5, keep_teacher_view=True),
    dict(type='PackFaceArrays'),
]
# JPEGs decoded by FaceDataPreprocessor on the model's device (nvJPEG on CUDA), brought to
# 56 px there (OpenCV's INTER_AREA, exact for the 112 -> 56 factor) and flipped there; the
# flip is still drawn per sample on the CPU. No masks (they are drawn on decoded images).
device_decode_train_pipeline = [
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='PackFaceArrays', size=56),
]
