"""Worker for ``test_relation_mining_hook_dist.py``: run the RelationMiningHook's mining.

``python -m torch.distributed.run --nproc_per_node 2 _mining_dist_worker.py OUT_DIR`` runs
``before_train`` on every rank with 2 gloo processes; :func:`run_hook` called in one process
(no process group) gives the single-process reference. Each run mines twice: once with a
frozen teacher (a tiny IResNet FaceRecognizer on the clean view) and once from a teacher
bank; then it resumes (``reload``) with a work dir per rank, as on nodes without shared
storage, where only rank 0's holds the mined files. The dataset and the bank record which
sample indices each rank read, and each rank saves its table and what it read to
``OUT_DIR/<mode>/rank{r}.pt``.
"""
import datetime
import os
import os.path as osp
import shutil
import sys
from types import SimpleNamespace

import numpy as np
import torch

# odd sizes: the two ranks get shards of 16 and 15 images and mine 5 and 4 identities
NUM_CLASSES, SIZE, DIM, K, HARD = 9, 32, 16, 3, 2
IMAGES_PER_ID = (4, 3, 4, 3, 4, 3, 4, 3, 3)
MODES = ('teacher', 'bank')  # mined; then 'reload' (resume)


class TinyFaceDataset:
    """Identities whose images are a per-identity pattern plus noise (so centers are
    well separated and no two neighbour similarities tie); records what it serves."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.labels = np.repeat(np.arange(NUM_CLASSES), IMAGES_PER_ID).astype(np.int64)
        protos = rng.integers(0, 256, (NUM_CLASSES, SIZE, SIZE, 3))
        noise = rng.integers(-40, 41, (len(self.labels), SIZE, SIZE, 3))
        self.images = np.clip(protos[self.labels] + noise, 0, 255).astype(np.uint8)
        self.num_classes = NUM_CLASSES
        # what the hook reads of the training pipeline: the clean view's size
        self.pipeline = [dict(type='LoadFaceImage', size=SIZE), dict(type='PackFaceInputs')]
        self.seen = []

    def __len__(self) -> int:
        return len(self.labels)

    def get_gt_labels(self) -> np.ndarray:
        return self.labels

    def get_data_info(self, idx: int) -> dict:
        self.seen.append(int(idx))
        return dict(img_bytes=self.images[idx], gt_label=int(self.labels[idx]),
                    sample_idx=int(idx))


class RecordingBank:
    """A teacher bank stand-in: fixed random embeddings, records the looked-up indices."""

    def __init__(self, num_samples: int) -> None:
        gen = torch.Generator().manual_seed(1)
        self.table = torch.randn(num_samples, 2, DIM, generator=gen)
        self.seen = []

    def lookup(self, idx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
        self.seen.extend(idx.tolist())
        return self.table[idx, flip.long()]


class RecordingSampler:
    """The part of RelationSampler the hook talks to."""

    group_size = 2
    random_groups = False

    def __init__(self) -> None:
        self.neighbours = self.hard_positives = None

    def set_neighbours(self, neighbours) -> None:
        self.neighbours = neighbours

    def set_hard_positives(self, table) -> None:
        self.hard_positives = table


def _teacher():
    from coupleface.models.recognizers import FaceRecognizer
    torch.manual_seed(0)  # the same weights in every process
    teacher = FaceRecognizer(backbone=dict(type='IResNet', arch=18, input_size=SIZE,
                                           base_channels=8, embedding_size=DIM))
    return teacher.eval().requires_grad_(False)


def run_hook(mode: str, work_dir: str) -> dict:
    """Run the hook's ``before_train`` + ``before_train_epoch`` on a runner stand-in."""
    from coupleface.engine.hooks import relation_mining_hook as hook_mod
    from coupleface.registry import MODELS

    saves = []

    def recording_save(path, *args, **kwargs):
        saves.append(path)
        return save_relations(path, *args, **kwargs)

    save_relations = hook_mod.save_mined_relations

    dataset = TinyFaceDataset()
    bank = RecordingBank(len(dataset)) if mode == 'bank' else None
    model = SimpleNamespace(
        teacher_embeddings=None, teacher_info=dict(teacher_sha256='abc'),
        teacher_bank=bank, teacher=_teacher() if mode != 'bank' else None,
        data_preprocessor=MODELS.build(dict(type='FaceDataPreprocessor')))
    sampler = RecordingSampler()
    runner = SimpleNamespace(
        model=model, work_dir=work_dir,
        train_dataloader=SimpleNamespace(dataset=dataset, sampler=sampler))
    hook = hook_mod.RelationMiningHook(num_neighbours=K, hard_positives=HARD, batch_size=4,
                                       num_workers=0, chunk_size=4)
    hook_mod.save_mined_relations = recording_save
    try:
        hook.before_train(runner)
    finally:
        hook_mod.save_mined_relations = save_relations
    hook.before_train_epoch(runner)
    seen = bank.seen if bank is not None else dataset.seen
    return dict(neighbours=torch.from_numpy(np.asarray(hook.neighbours)),
                sampler_neighbours=torch.from_numpy(np.asarray(sampler.neighbours)),
                hard_positives=[torch.from_numpy(np.asarray(r)) for r in sampler.hard_positives],
                seen=torch.tensor(sorted(seen), dtype=torch.long), saves=len(saves))


def main(out_dir: str) -> None:
    import torch.distributed as dist

    from coupleface.utils.dist import get_dist_info, init_cpu_distributed

    init_cpu_distributed(timeout_s=60)  # a rank stuck in a collective fails the test
    if not dist.is_initialized():  # a CUDA machine: MMEngine would init nccl; gloo here
        dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=60))
    rank, world_size = get_dist_info()
    for mode in MODES + ('reload',):
        work_dir = osp.join(out_dir, mode)
        os.makedirs(work_dir, exist_ok=True)
        run_dir = work_dir
        if mode == 'reload':  # node-local work dirs: only rank 0's has the mined files
            run_dir = osp.join(work_dir, f'rank{rank}_work')
            os.makedirs(run_dir, exist_ok=True)
            if rank == 0:
                for name in ('relations.npz', 'relations_hard_positives.npy'):
                    shutil.copy(osp.join(out_dir, 'teacher', name), run_dir)
        result = run_hook(mode, run_dir)
        result.update(rank=rank, world_size=world_size)
        torch.save(result, osp.join(work_dir, f'rank{rank}.pt'))
        dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
