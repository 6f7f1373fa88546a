# The FCD teacher-bank config (ablation row (b)) on the fast data path: with a teacher bank
# a step costs what the student costs, so the data pipeline bounds throughput at scale.
# Same batches as the parent config, bit for bit (PackFaceArrays(size) + face_batch_collate
# with decode='cpu': each JPEG decoded by the collate straight into one uint8 batch tensor,
# one FaceBatchSamples, the flips drawn for the whole batch, flip_prob=0.5;
# docs/architecture.md §2.1, fast path). For the device JPEG decode on a GPU, use the
# device_decode_train_pipeline and fast_collate of the pipeline base (see the base file).
_base_ = ['./iresnet18-w8_fcd-bank-iresnet18-w32_1xb128_synthfaces-56px.py',
          '../_base_/pipelines/synthfaces_fast_56px.py']

train_dataloader = dict(collate_fn={{_base_.cpu_decode_collate}},
                        dataset=dict(pipeline={{_base_.cpu_decode_train_pipeline}}))
