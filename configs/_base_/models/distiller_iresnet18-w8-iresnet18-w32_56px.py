# CoupleFaceDistiller for the SynthFaces benchmark at 56 px: the IResNet-18 (w8, 64-d) student
# + ArcFace (s=64, m=0.5) of configs/arcface/iresnet18-w8_1xb128_synthfaces-56px.py, the
# frozen IResNet-18 (w32, 256-d) teacher of
# configs/arcface/iresnet18-w32_1xb128_synthfaces-56px.py (architecture only: the method
# config sets model.teacher.checkpoint, or replaces the teacher by a teacher bank), and a
# linear connector (64 -> 256) into the teacher's space. Every
# SynthFaces distiller shares this student and connector, so the benchmark rows differ only in
# their losses (like-for-like). num_classes is a placeholder: the method config sets
# student.head.num_classes={{_base_.num_classes}} from its dataset base. channels_last as in
# the arcface configs (NHWC, 0.75-0.85x the CPU step time; docs/benchmarks.md, Channels-last).
model = dict(
    type='CoupleFaceDistiller',
    data_preprocessor=dict(type='FaceDataPreprocessor'),
    student=dict(
        type='FaceRecognizer',
        backbone=dict(type='IResNet', arch=18, input_size=56, base_channels=8,
                      embedding_size=64),
        head=dict(type='ArcFaceHead', num_classes=1000, in_channels=64, scale=64.0,
                  margin=0.5),
        flip_test=True,
        channels_last=True),
    # frozen, in eval mode, never saved in student checkpoints (only its path and sha256)
    teacher=dict(
        model=dict(type='FaceRecognizer', channels_last=True,
                   backbone=dict(type='IResNet', arch=18, input_size=56, base_channels=32,
                                 embedding_size=256))),
    connector=dict(type='LinearConnector', in_channels=64, out_channels=256),
)
