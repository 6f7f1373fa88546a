# The masked-face pipelines of SynthFaces at 56 px, as named variables only (no dataloader),
# so a clean SynthFaces config can add them as a second base and switch to masked training:
#   _base_ = ['./<clean config>.py', '../_base_/pipelines/synthfaces_masked_56px.py']
#   train_dataloader = dict(dataset=dict(pipeline={{_base_.masked_distill_train_pipeline}}))
# SyntheticMask masks half of the training images after the flip; with keep_teacher_view the
# clean (flipped) image stays the teacher view (a teacher bank holds exactly that view). The
# test pipeline masks the first image of a pair under the masked_unmasked protocol.
masked_student_train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='SyntheticMask', p=0.5),
    dict(type='PackFaceInputs'),
]
masked_distill_train_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='RandomFaceFlip', prob=0.5),
    dict(type='SyntheticMask', p=0.5, keep_teacher_view=True),
    dict(type='PackFaceInputs'),
]
masked_test_pipeline = [
    dict(type='LoadFaceImage', size=56),
    dict(type='ProtocolMask', seed=0),
    dict(type='PackFaceInputs'),
]
masked_protocols = ('clean', 'masked_unmasked')
