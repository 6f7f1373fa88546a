"""Heatmaps of the teacher's and the student's relations on one mined identity group.

What RAD distils (CoupleFace, Liu et al., ECCV 2022; our reading in docs/method.md) are the
cosine similarities between faces of mutually confusable identities. This tool picks one
mined group, an anchor identity and its mined neighbour identities (from a
``relations.npz`` written by the RelationMiningHook or ``tools/mine_relations.py``, or mined
here with the teacher), embeds ``k`` images of each with the teacher and with the student,
and draws side by side the teacher's cosine-similarity matrix, the student's, and their
difference (student - teacher), with the identity blocks marked.

Images go through the clean teacher view of the config (``LoadFaceImage(size)`` +
``PackFaceInputs``, the size of the training pipeline's ``LoadFaceImage``, no augmentation)
and the model's data preprocessor, as in relation mining. The student's matrix is
``<s_i, s_j>`` of its own embeddings (no connector needed); the teacher's ``<t_i, t_j>``.

Examples:
    CFG=configs/coupleface/iresnet18-w8_coupleface-iresnet18-w32_1xb128_synthfaces-56px.py
    python tools/analysis_tools/plot_relations.py --config $CFG \\
        --student-ckpt work_dirs/cf/epoch_8.pth --teacher-ckpt work_dirs/teacher/epoch_8.pth \\
        --relations work_dirs/cf/relations.npz --out rel.png
    # mine on the fly with the teacher; anchor identity 12
    python tools/analysis_tools/plot_relations.py --config $CFG --student-ckpt S.pth \\
        --teacher-ckpt T.pth --identity 12 --out rel_12.png
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Teacher vs student cosine-similarity heatmaps of a mined identity group')
    parser.add_argument('--config', required=True,
                        help='distillation config (its train dataset, student and teacher)')
    parser.add_argument('--student-ckpt', required=True,
                        help='student checkpoint (distiller or recognizer)')
    parser.add_argument('--teacher-ckpt',
                        help='teacher checkpoint (default: model.teacher.checkpoint of the config)')
    parser.add_argument('--teacher-config',
                        help='config whose model (or model.teacher.model) is the teacher, for '
                        'configs without one (teacher bank)')
    parser.add_argument('--relations',
                        help='relations.npz (neighbours, similarities, centers); default: mine '
                        'with the teacher over the whole training set')
    parser.add_argument('--identity', type=int,
                        help='anchor identity (default: the one whose nearest mined neighbour '
                        'is most similar, the most confusable group)')
    parser.add_argument('--neighbours', type=int, default=3,
                        help='neighbour identities shown with the anchor')
    parser.add_argument('--images-per-id', type=int, default=4, help='images per identity')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--dpi', type=int, default=120)
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override entries of --config, xxx=yyy (mmengine syntax), e.g. '
                             'train_dataloader.dataset.data_root=DIR')
    args = parser.parse_args(argv)
    if args.neighbours < 1 or args.images_per_id < 1:
        parser.error('--neighbours and --images-per-id must be >= 1')
    return args


# ---------------------------------------------------------------------------- models
def _teacher_source(cfg, args: argparse.Namespace) -> Tuple[dict, str]:
    """The teacher's recognizer config and checkpoint path."""
    from coupleface.apis.model_loading import load_config

    teacher = cfg.model.get('teacher') or {}
    model_cfg = teacher.get('model')
    if args.teacher_config:
        other = load_config(args.teacher_config)
        other_teacher = other.model.get('teacher') or {}
        model_cfg = other_teacher.get('model') or other.model
    if model_cfg is None:
        raise ValueError(f'{args.config} has no model.teacher.model (a teacher-bank config?): '
                         'pass --teacher-config with the teacher\'s config')
    ckpt = args.teacher_ckpt or teacher.get('checkpoint')
    if not ckpt:
        raise ValueError('no teacher checkpoint: pass --teacher-ckpt')
    model_cfg = model_cfg.to_dict() if hasattr(model_cfg, 'to_dict') else dict(model_cfg)
    return model_cfg, ckpt


def load_models(cfg, args: argparse.Namespace):
    """The student (from the distiller config) and the frozen teacher, eval mode."""
    from coupleface.apis.model_loading import init_recognizer

    student = init_recognizer(cfg, args.student_ckpt, device=args.device)
    teacher_cfg, teacher_ckpt = _teacher_source(cfg, args)
    teacher = init_recognizer(dict(model=teacher_cfg), teacher_ckpt, device=args.device)
    return student, teacher


# ------------------------------------------------------------------------ embeddings
@torch.no_grad()
def embed(models: Sequence[torch.nn.Module], dataset, indices: Sequence[int], size: int,
          preprocessor, batch_size: int = 64) -> List[torch.Tensor]:
    """L2-normalised embeddings of the clean view of ``indices``, one tensor per model."""
    from coupleface.datasets.clean_view import clean_view_embeddings

    outs: List[List[torch.Tensor]] = [[] for _ in models]
    for embs in clean_view_embeddings(dataset, indices, size, preprocessor, models,
                                      batch_size=batch_size):
        for out, emb in zip(outs, embs):
            out.append(F.normalize(emb, dim=1))
    return [torch.cat(out) for out in outs]


def mine_with_teacher(teacher, dataset, labels: np.ndarray, num_classes: int, size: int,
                      preprocessor, k: int, batch_size: int) -> Dict[str, np.ndarray]:
    """Identity centers and ``k`` neighbour identities from the teacher, on the fly."""
    from coupleface.mining import mine_relations

    (emb, ) = embed([teacher], dataset, range(len(labels)), size, preprocessor, batch_size)
    mined = mine_relations(emb, labels, num_classes, min(k, num_classes - 1),
                           allow_empty=True, progress=False, distributed=False)
    return dict(neighbours=mined.neighbours, similarities=mined.similarities,
                centers=mined.centers)


def choose_group(relations: Dict[str, np.ndarray], labels: np.ndarray,
                 identity: Optional[int], num_neighbours: int) -> List[int]:
    """The anchor identity followed by its mined neighbours that have images."""
    neighbours, sims = relations['neighbours'], relations['similarities']
    present = np.bincount(labels, minlength=len(neighbours)) > 0
    if identity is None:
        score = np.where(present & (neighbours[:, 0] >= 0), sims[:, 0], -np.inf)
        if not np.isfinite(score).any():
            raise ValueError('no identity has a mined neighbour with images')
        identity = int(np.argmax(score))
    if not 0 <= identity < len(neighbours):
        raise ValueError(f'--identity {identity} is outside [0, {len(neighbours)}) '
                         '(the identities of the relations)')
    if not present[identity]:
        raise ValueError(f'identity {identity} has no image in the training set')
    group = [identity] + [int(n) for n in neighbours[identity]
                          if n >= 0 and present[n]][:num_neighbours]
    if len(group) < 2:
        raise ValueError(f'identity {identity} has no mined neighbour with images')
    return group


# --------------------------------------------------------------------------- drawing
def _mark_blocks(ax, bounds: List[int], names: List[str], color: str) -> None:
    for b in bounds[1:-1]:
        ax.axhline(b - 0.5, color=color, linewidth=1.2)
        ax.axvline(b - 0.5, color=color, linewidth=1.2)
    centers = [(a + b - 1) / 2 for a, b in zip(bounds[:-1], bounds[1:])]
    ax.set_xticks(centers)
    ax.set_xticklabels(names, rotation=45, ha='right', fontsize=8)
    ax.set_yticks(centers)
    ax.set_yticklabels(names, fontsize=8)


def block_stats(matrix: np.ndarray, ids: np.ndarray) -> Dict[str, float]:
    """Mean of ``matrix`` over same-identity pairs (off-diagonal) and other-identity pairs."""
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    pos, neg = same & off, ~same
    return dict(positive=float(matrix[pos].mean()) if pos.any() else float('nan'),
                negative=float(matrix[neg].mean()) if neg.any() else float('nan'))


def plot_relation_heatmaps(teacher_sim: np.ndarray, student_sim: np.ndarray,
                           ids: np.ndarray, group: List[int], title: str = ''):
    """Three heatmaps (teacher, student, student - teacher) with identity blocks marked.

    Args:
        teacher_sim: ``n x n`` teacher cosine similarities.
        student_sim: ``n x n`` student cosine similarities.
        ids: ``n`` identity of each row, grouped (the rows of one identity contiguous).
        group: The identities in display order, the anchor first.
        title: Figure title.

    Returns:
        matplotlib.figure.Figure: The figure (Agg canvas).
    """
    from coupleface.visualization import new_figure

    bounds = [0] + [int((ids == g).sum()) for g in group]
    bounds = list(np.cumsum(bounds))
    names = [f'id {g}' + (' (anchor)' if i == 0 else '') for i, g in enumerate(group)]
    diff = student_sim - teacher_sim
    low = float(min(teacher_sim.min(), student_sim.min(), 0.0))
    span = max(float(np.abs(diff).max()), 1e-3)
    fig = new_figure(figsize=(16, 5.6))
    axes = fig.subplots(1, 3)
    panels = [(teacher_sim, 'Teacher cosine similarity', 'viridis', low, 1.0, 'white'),
              (student_sim, 'Student cosine similarity', 'viridis', low, 1.0, 'white'),
              (diff, 'Student - teacher', 'RdBu_r', -span, span, 'black')]
    for ax, (mat, name, cmap, vmin, vmax, line) in zip(axes, panels):
        im = ax.imshow(mat, cmap=cmap, vmin=vmin, vmax=vmax, interpolation='nearest')
        stats = block_stats(mat, ids)
        ax.set_title(f'{name}\nmean: same id {stats["positive"]:+.3f}, other ids '
                     f'{stats["negative"]:+.3f}', fontsize=10)
        _mark_blocks(ax, bounds, names, line)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ------------------------------------------------------------------------------ main
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, object]:
    args = parse_args(argv)
    from coupleface.apis.model_loading import load_config
    from coupleface.datasets.clean_view import teacher_view_size
    from coupleface.mining import load_relations
    from coupleface.registry import DATASETS
    from coupleface.setup_env import register_all_modules
    from coupleface.visualization import save_figure

    register_all_modules(init_default_scope=True)
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset = DATASETS.build(dataset_cfg)
    labels = np.asarray(dataset.get_gt_labels(), dtype=np.int64)
    size = teacher_view_size(dataset.pipeline)
    student, teacher = load_models(cfg, args)
    preprocessor = student.data_preprocessor  # the distiller's: same for both views

    if args.relations:
        relations = load_relations(args.relations)
        source = osp.basename(args.relations)
        if len(relations['neighbours']) < labels.max() + 1:
            raise ValueError(f'{args.relations} holds {len(relations["neighbours"])} '
                             f'identities but the training set has labels up to {labels.max()}')
    else:
        num_classes = getattr(dataset, 'num_classes', None) or int(labels.max()) + 1
        print(f'mining {args.neighbours} neighbours of {num_classes} identities with the '
              f'teacher over {len(labels)} images ...')
        relations = mine_with_teacher(teacher, dataset, labels, int(num_classes), size,
                                      preprocessor, args.neighbours, args.batch_size)
        source = 'mined with the teacher'
    group = choose_group(relations, labels, args.identity, args.neighbours)
    indices, ids = [], []
    for g in group:
        rows = np.flatnonzero(labels == g)[:args.images_per_id]
        indices += rows.tolist()
        ids += [g] * len(rows)
    ids = np.asarray(ids)
    t, s = embed([teacher, student], dataset, indices, size, preprocessor, args.batch_size)
    teacher_sim = (t @ t.t()).numpy()
    student_sim = (s @ s.t()).numpy()

    anchor = group[0]
    nb = relations['neighbours'][anchor].tolist()
    sims = relations['similarities'][anchor]
    shown = ', '.join(f'{g} ({sims[nb.index(g)]:.2f})' for g in group[1:])
    title = (f'Identity {anchor} and its mined neighbours {shown} (teacher center cosine; '
             f'relations {source}); {args.images_per_id} images each, {size} px clean view')
    fig = plot_relation_heatmaps(teacher_sim, student_sim, ids, group, title)
    save_figure(fig, args.out, dpi=args.dpi)
    diff = student_sim - teacher_sim
    off = ~np.eye(len(ids), dtype=bool)
    result = dict(group=group, ids=ids.tolist(), indices=indices, teacher=teacher_sim,
                  student=student_sim, mean_abs_diff=float(np.abs(diff[off]).mean()),
                  teacher_blocks=block_stats(teacher_sim, ids),
                  student_blocks=block_stats(student_sim, ids), out=args.out)
    print(f'identity group {group} ({len(ids)} images): mean |student - teacher| = '
          f'{result["mean_abs_diff"]:.4f}; teacher same/other id '
          f'{result["teacher_blocks"]["positive"]:.3f}/{result["teacher_blocks"]["negative"]:.3f}'
          f', student {result["student_blocks"]["positive"]:.3f}/'
          f'{result["student_blocks"]["negative"]:.3f}')
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    from coupleface.utils.cli import run_cli
    sys.exit(run_cli(main))
