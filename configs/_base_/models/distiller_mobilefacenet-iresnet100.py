# CoupleFaceDistiller for MS1M at 112 px: the MobileFaceNet student (insightface's mbf, 512-d)
# + ArcFace (s=64, m=0.5) of configs/arcface/mobilefacenet_8xb128_ms1mv3.py and the frozen
# IResNet-100 teacher of configs/arcface/iresnet100_8xb128_ms1mv3.py (architecture only: the
# method config sets model.teacher.checkpoint, e.g. insightface's released
# ms1mv3_arcface_r100_fp16/backbone.pth). num_classes is a placeholder: the method config sets
# student.head.num_classes={{_base_.num_classes}} from its dataset base.
model = dict(
    type='CoupleFaceDistiller',
    data_preprocessor=dict(type='FaceDataPreprocessor'),
    student=dict(
        type='FaceRecognizer',
        backbone=dict(type='MobileFaceNet', input_size=112, embedding_size=512),
        head=dict(type='ArcFaceHead', num_classes=1000, in_channels=512, scale=64.0,
                  margin=0.5),
        flip_test=True),
    # frozen, in eval mode, never saved in student checkpoints (only its path and sha256)
    teacher=dict(
        model=dict(type='FaceRecognizer',
                   backbone=dict(type='IResNet', arch=100, input_size=112,
                                 embedding_size=512))),
    # both embeddings are 512-d, so no connector; a student of another size needs
    # connector=dict(type='LinearConnector', in_channels=d, out_channels=512)
    connector=None,
)
