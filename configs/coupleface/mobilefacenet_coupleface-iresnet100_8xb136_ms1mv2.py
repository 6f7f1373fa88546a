# CoupleFace on MS1MV2 (faces_emore, 85,742 identities): the MS1MV3 recipe
# (mobilefacenet_coupleface-iresnet100_8xb136_ms1mv3.py: MobileFaceNet student, IResNet-100
# teacher, FCD + RAD on mined identity groups, 8 GPUs x 128, 40 epochs) on the other data,
# with a teacher trained on MS1MV2: insightface's ms1mv2_arcface_r100_fp16/backbone.pth or a
# checkpoint of configs/arcface/iresnet100_8xb128_ms1mv2.py.
_base_ = ['./mobilefacenet_coupleface-iresnet100_8xb136_ms1mv3.py']

# the folder of configs/_base_/datasets/ms1mv2.py and its identity count
data_root = 'data/faces_emore'
num_classes = 85742
num_images = 5822653
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
lfw_masked_dataloader = dict(dataset=dict(data_root=data_root))

teacher_checkpoint = 'checkpoints/ms1mv2_arcface_r100_fp16/backbone.pth'
model = dict(
    student=dict(head=dict(num_classes=num_classes)),
    teacher=dict(checkpoint=teacher_checkpoint),
)
