"""Mine informative mutual relations with the teacher before training (docs/architecture.md §2.2).

In ``before_train`` (after checkpoint loading) the hook extracts teacher
embeddings of the un-augmented training images (or reads the teacher bank),
builds identity centers, mines each identity's most similar other identities
and its hardest positive images (``coupleface.mining.mine_relations``, the pipeline
``tools/mine_relations.py`` runs too), saves ``relations.npz`` in the work dir, and
hands the tables to the ``RelationSampler`` in ``before_train_epoch`` (the
sampler lives in the main process, so persistent workers are no obstacle).

Work is split across ranks so none idles into the process-group timeout: each
rank embeds its shard of images, centers are summed with ``all_reduce``, each
rank mines a block of identities, and the blocks are gathered, so every rank
ends with the same table. On resume the file is reloaded instead of mined again
(read by rank 0 and broadcast, so a work dir on node-local storage is fine);
a file from another teacher or dataset is rejected by its recorded provenance.
"""
from __future__ import annotations

import os.path as osp
import time
from typing import Optional

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.dist import get_dist_info, is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from coupleface.datasets.clean_view import clean_view_embeddings, teacher_view_size
from coupleface.mining import load_relations, mine_relations, relations_meta, save_mined_relations
from coupleface.mining.relations_file import load_hard_positives
from coupleface.registry import HOOKS


@HOOKS.register_module()
class RelationMiningHook(Hook):
    """Mine neighbour identities (and hard positives) with the teacher.

    Args:
        num_neighbours: Neighbours mined per identity (``K``); at least the
            sampler's ``group_size - 1``. Defaults to ``2 * (group_size - 1)``.
        hard_positives: Hardest images kept per identity for the sampler
            (``0`` = none).
        batch_size: Extraction batch size.
        num_workers: Extraction data loader workers.
        chunk_size: Mining block size (memory O(chunk_size²), never O(C²)).
        relations_file: A relations file to use (e.g. from
            ``tools/mine_relations.py``) instead of mining; checked against the
            dataset and teacher.
        filename: Name of the file written in the work dir.
        view_size: Image size of the teacher's clean view (online teacher only: the
            view is ``LoadFaceImage(view_size)`` + ``PackFaceInputs``). ``None``
            (default): the ``size`` of the first ``LoadFaceImage`` of the training
            set's pipeline (``datasets.clean_view.teacher_view_size``); a pipeline
            without one is a one-line error asking for ``view_size``.

    Examples:
        >>> custom_hooks = [dict(type='RelationMiningHook', num_neighbours=8)]
        >>> train_dataloader = dict(
        ...     batch_size=64,
        ...     sampler=dict(type='RelationSampler', batch_size=64, group_size=4,
        ...                  images_per_identity=4))
    """

    priority = 'NORMAL'

    def __init__(self, num_neighbours: Optional[int] = None, hard_positives: int = 0,
                 batch_size: int = 256, num_workers: int = 2, chunk_size: int = 4096,
                 relations_file: Optional[str] = None, filename: str = 'relations.npz',
                 view_size: Optional[int] = None) -> None:
        self.num_neighbours = num_neighbours
        self.view_size = view_size
        self.hard_positives = int(hard_positives)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.chunk_size = chunk_size
        self.relations_file = relations_file
        self.filename = filename
        self.neighbours: Optional[np.ndarray] = None
        self.hard_positive_table: Optional[list] = None

    # -- provenance ----------------------------------------------------------------------
    @staticmethod
    def _distiller(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'teacher_embeddings'):
            raise ValueError('RelationMiningHook needs a distiller with a teacher '
                             f'(got {type(model).__name__})')
        return model

    def _expected_meta(self, runner, model, k: int) -> dict:
        """The relations meta of this run (written when mining, checked when reloading)."""
        dataset = runner.train_dataloader.dataset
        info = model.teacher_info
        teacher = info.get('teacher_sha256') or info.get('bank_teacher_sha256', '')
        return relations_meta(teacher, len(dataset), int(dataset.num_classes), int(k),
                              self.hard_positives)

    # -- hooks ---------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        sampler = runner.train_dataloader.sampler
        if not hasattr(sampler, 'set_neighbours'):
            raise ValueError('RelationMiningHook needs train_dataloader.sampler='
                             'dict(type="RelationSampler" or "PartnerSampler", ...), got '
                             f'{type(sampler).__name__}')
        if self.hard_positives > 0 and not hasattr(sampler, 'set_hard_positives'):
            raise ValueError(f'RelationMiningHook(hard_positives={self.hard_positives}) needs '
                             'a sampler that uses them (RelationSampler); '
                             f'{type(sampler).__name__} does not: set hard_positives=0')
        if getattr(sampler, 'random_groups', False) or getattr(sampler, 'random_partners',
                                                               False):
            print_log(f'{type(sampler).__name__} draws random identities: mining skipped',
                      logger='current')
            return
        model = self._distiller(runner)
        # RelationSampler: 2 neighbours per group member; PartnerSampler: its top_k (or 8)
        k = self.num_neighbours or getattr(sampler, 'top_k', None) or 2 * max(
            1, getattr(sampler, 'group_size', 5) - 1)
        expect = self._expected_meta(runner, model, k)
        path = self.relations_file or osp.join(runner.work_dir, self.filename)
        reloaded = self._reload(path, expect)
        if reloaded is not None:
            print_log(f'relations reloaded from {path} (not mined again)', logger='current')
            neighbours, self.hard_positive_table = reloaded
            self.neighbours = neighbours[:, :k]
            return
        if self.relations_file:
            raise FileNotFoundError(f'relations_file not found: {self.relations_file}')
        self._mine(runner, model, k, expect, path)

    def _reload(self, path: str, expect: dict) -> Optional[tuple]:
        """``(neighbours, hard positives)`` read from ``path`` by rank 0, on every rank.

        Rank 0 decides and broadcasts: ranks that each looked for the file themselves
        would, on a work dir not shared between nodes, split into reloading and mining
        ranks and wait in mismatched collectives until the timeout. ``None``: rank 0
        has no file.
        """
        rank, _ = get_dist_info()
        message: list = [None]
        if rank == 0:
            try:
                if osp.isfile(path):
                    rel = load_relations(path, expect_meta=expect)
                    message[0] = ('ok', rel['neighbours'], self._load_hard_positives(path))
                else:
                    message[0] = ('missing',)
            except Exception as err:  # every rank must raise, not only rank 0
                message[0] = ('error', f'{type(err).__name__}: {err}')
                if is_distributed():
                    torch_dist.broadcast_object_list(message, src=0)
                raise
        if is_distributed():
            torch_dist.broadcast_object_list(message, src=0)
        status = message[0]
        if status[0] == 'error':
            raise RuntimeError(f'rank 0 could not reload relations from {path}: {status[1]}')
        return (status[1], status[2]) if status[0] == 'ok' else None

    def before_train_epoch(self, runner) -> None:
        sampler = runner.train_dataloader.sampler
        if self.neighbours is not None and hasattr(sampler, 'set_neighbours'):
            sampler.set_neighbours(self.neighbours)
            if self.hard_positive_table is not None and self.hard_positives > 0:
                sampler.set_hard_positives(self.hard_positive_table)

    # -- mining ------------------------------------------------------------------------
    def _view_size(self, runner) -> Optional[int]:
        """The clean view's image size: ``view_size``, else derived from the training set."""
        if self.view_size is not None:
            return self.view_size
        pipeline = getattr(runner.train_dataloader.dataset, 'pipeline', None)
        try:
            return teacher_view_size(pipeline)
        except ValueError as err:
            raise ValueError(f'RelationMiningHook: {err}; set RelationMiningHook(view_size=...)'
                             ) from None

    @torch.no_grad()
    def _embed_shard(self, runner, model, indices: np.ndarray) -> torch.Tensor:
        dataset = runner.train_dataloader.dataset
        if model.teacher_bank is not None:
            idx = torch.as_tensor(indices, dtype=torch.long)
            return model.teacher_bank.lookup(idx, torch.zeros(len(idx), dtype=torch.bool))
        size = self._view_size(runner)
        rank, _ = get_dist_info()
        out = [emb for (emb, ) in clean_view_embeddings(
            dataset, indices, size, model.data_preprocessor,
            [model.teacher], batch_size=self.batch_size, num_workers=self.num_workers,
            desc='teacher embeddings' if rank == 0 else None)]
        return torch.cat(out) if out else torch.zeros(0, 1)

    def _mine(self, runner, model, k: int, meta: dict, path: str) -> None:
        start = time.time()
        dataset = runner.train_dataloader.dataset
        rank, world = get_dist_info()
        labels = np.asarray(dataset.get_gt_labels(), dtype=np.int64)
        num_classes = int(dataset.num_classes)
        shard = np.arange(rank, len(dataset), world)
        mined = mine_relations(self._embed_shard(runner, model, shard), labels, num_classes, k,
                               sample_indices=shard, hard_positives=self.hard_positives,
                               chunk_size=self.chunk_size, progress=rank == 0, meta=meta,
                               distributed=is_distributed())
        self.neighbours = mined.neighbours
        self.hard_positive_table = mined.hard_positive_lists()
        if rank == 0:
            save_mined_relations(path, mined)
        if is_distributed():
            torch_dist.barrier()
        print_log(f'mined {k} neighbours for {num_classes} identities from {len(dataset)} '
                  f'images in {time.time() - start:.1f}s -> {path}; mean top-1 teacher '
                  f'similarity {float(mined.similarities[:, 0].mean()):.3f}', logger='current')

    def _load_hard_positives(self, path: str) -> Optional[list]:
        hard = load_hard_positives(path) if self.hard_positives > 0 else None
        return None if hard is None else [row[row >= 0] for row in hard]
