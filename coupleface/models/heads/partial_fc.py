"""PartialFC: class centers sharded across ranks, class-center sampling, distributed softmax.

An, Deng et al., "Killing Two Birds with One Stone: Efficient and Robust Training of Face
Recognition CNNs by Partial FC", CVPR 2022 (https://arxiv.org/abs/2203.15565); the
algorithm of insightface arcface_torch's ``PartialFC_V2`` (our own code):

1. The ``C`` class centers are split into contiguous shards, one per rank: rank ``r`` owns
   ``num_local = C // W + (r < C % W)`` classes from ``class_start = C // W * r +
   min(r, C % W)``. Only the shard lives on the rank (``weight [num_local, D]``).
2. Embeddings and labels are gathered from every rank (the global batch, ``N`` rows);
   embedding gradients go back to their owner rank.
3. Each rank keeps the centers of the positive classes it owns (the unique labels of the
   global batch in its range) and fills up to ``num_sample = int(sample_rate * num_local)``
   with random negatives; ``sample_rate=1`` keeps the whole shard (model parallelism only).
4. The margin maths are the wrapped margin head's :meth:`MarginHead.margin_logits`, so
   ArcFace, CosFace, the combined margin, CurricularFace and AdaFace all work. Each row's
   positive cosine is all-reduced from its owner rank and passed to the margin head as an
   extra column on every rank, so rules that need the positive on every rank (CurricularFace's
   hard negatives ``cos_j > cos(theta_y + m)``, the EMA of ``t``) and norm statistics
   (AdaFace, over the global batch) are the dense head's on the global batch.
5. A softmax cross entropy over all ranks' columns: row max all-reduced (MAX), sum of exps
   and the positive logit (owner rank only, masked) all-reduced (SUM); the loss is the mean
   over the global batch of ``log(sum exp) + max - z_pos`` (with label smoothing when the
   wrapped head has it, spread over all sampled columns of all ranks).

Gradients (the convention of :mod:`coupleface.utils.dist`): every rank reports the same
global-batch loss ``L``; the local centers get ``dL/dW_local``; the embeddings of rank ``r``
get the gradient of the sum of the ranks' losses, ``W * dL/dx_r``, so that DDP's averaging of
the backbone gradients yields ``dL/dtheta``, as training on the global batch in one process
(insightface scales its all-gather gradient by ``W`` for the same reason). Sampled-out
centers get a zero gradient (the optimizer still holds the whole shard, as insightface).

Distributed training needs three things from the code around the head:

* DDP must not average the shards (they are different tensors, even of different shapes):
  the head declares ``weight`` in :attr:`PartialFCHead.rank_local_params`, and the module
  wrapped by DDP (``FaceRecognizer``, ``CoupleFaceDistiller``) calls
  :func:`coupleface.utils.dist.mark_rank_local_params_for_ddp` on itself at the end of its
  ``__init__`` (it fills ``_ddp_params_and_buffers_to_ignore``, which DDP and MMEngine's
  ``MMDistributedDataParallel`` honour). Neither knows about PartialFC.
* Checkpoints hold the full ``[C, D]`` matrix under ``weight`` (the dense head's key):
  ``state_dict()`` gathers the shards and ``load_state_dict`` slices the local shard, so a
  checkpoint resumes on any number of ranks and loads into a dense head. The gather is a
  collective: every rank must call ``state_dict()`` (MMEngine's weight init does), or
  :func:`gather_partial_fc_weights` must have been called on every rank first. MMEngine's
  ``Runner.save_checkpoint`` runs on rank 0 only;
  :class:`~coupleface.engine.hooks.PartialFCCheckpointHook` makes every rank gather first
  (without it, saving would hang).
* The optimizer state of a shard (momentum) is saved from rank 0 only; the hook drops that
  stale state after a resume where it cannot be the rank's own.
"""
from __future__ import annotations

import copy
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from coupleface.registry import MODELS
from coupleface.utils.amp import autocast_off, upcast
from coupleface.utils.dist import (
    all_gather_no_grad,
    all_gather_with_grad,
    all_reduce,
    get_dist_info,
)

from .margin_head import MarginHead
from .partial_fc_functions import (
    DistributedSoftmaxCrossEntropy,
    ScaleGradient,
    draw_shard,
    shard_range,
)

__all__ = ['PartialFCHead', 'gather_partial_fc_weights', 'partial_fc_heads']

@MODELS.register_module()
class PartialFCHead(BaseModule):
    """PartialFC around any margin head: sharded class centers, sampled negatives.

    Build it after the process group is initialised (MMEngine's ``Runner`` does); the shard
    is fixed at construction. Every rank must pass the same local batch size. With one
    process and ``sample_rate=1`` the loss and gradients are the wrapped head's.

    Args:
        margin_head: Config (or a built :class:`MarginHead`) of the margin head whose
            ``margin_logits`` supply the margin maths, ``label_smoothing`` and
            ``loss_weight``. Its ``num_classes``/``in_channels`` give the class count and
            embedding size. A config is built without its dense ``[C, D]`` weight; a built
            head's weight, if any, initialises the shard (its rows of it) and is then
            removed from that head. The margin head's buffers (CurricularFace's ``t``,
            AdaFace's norm statistics) stay in it, under ``margin_head.``.
        sample_rate: Fraction of each shard's centers used per step, in (0, 1]. Positives
            are always kept; at least ``max(1, int(sample_rate * num_local))`` centers.
            Defaults to 1.0 (no sampling: model parallelism only).
        init_cfg: MMEngine init config. Defaults to None: the shard is drawn at construction
            from N(0, 0.01^2) (insightface), in blocks seeded from ``torch.initial_seed()``
            so that the full matrix does not depend on the number of ranks.

    Examples:
        >>> head = dict(
        ...     type='PartialFCHead',
        ...     margin_head=dict(type='ArcFaceHead', num_classes=93431, in_channels=512),
        ...     sample_rate=0.1)
    """

    #: Parameters that hold a different tensor on every rank (the class-center shard):
    #: DDP must neither broadcast nor average them
    #: (:func:`coupleface.utils.dist.mark_rank_local_params_for_ddp`).
    rank_local_params = ('weight',)

    def __init__(self, margin_head: Union[dict, MarginHead], sample_rate: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f'sample_rate must be in (0, 1], got {sample_rate}')
        head, dense_weight = self._build_margin_head(margin_head)
        self.margin_head = head
        self.num_classes = head.num_classes
        self.in_channels = head.in_channels
        self.sample_rate = float(sample_rate)

        self.rank, self.world_size = get_dist_info()
        self.class_start, self.num_local = shard_range(self.num_classes, self.world_size,
                                                       self.rank)
        if self.num_local < 1:
            raise ValueError(f'PartialFCHead needs at least one class per rank, got '
                             f'num_classes={self.num_classes} on {self.world_size} ranks')
        self.num_sample = max(1, int(self.sample_rate * self.num_local))

        self.weight = nn.Parameter(torch.empty(self.num_local, self.in_channels))
        with torch.no_grad():
            if dense_weight is not None:
                self.weight.copy_(dense_weight[self.class_start:self.class_start + self.num_local])
            else:
                self.weight.copy_(draw_shard(self.num_classes, self.in_channels, self.class_start,
                                            self.num_local, std=0.01))
        # Full matrix gathered by gather_partial_fc_weights(), valid while the shard is unchanged.
        self._full_weight: Optional[Tensor] = None
        self._full_weight_version = -1

    @staticmethod
    def _build_margin_head(margin_head: Union[dict, MarginHead]
                           ) -> Tuple[MarginHead, Optional[Tensor]]:
        if isinstance(margin_head, MarginHead):
            head = margin_head
        elif isinstance(margin_head, dict):
            cfg = copy.deepcopy(margin_head)
            for key in ('num_classes', 'in_channels'):
                if key not in cfg:
                    raise ValueError(f'margin_head needs {key!r}, got {margin_head}')
            num_classes = cfg['num_classes']
            # Build with 2 classes: the dense [C, D] weight (GBs for millions of classes) is
            # never allocated; the head keeps num_classes = C for its repr.
            cfg['num_classes'] = 2
            head = MODELS.build(cfg)
            if not isinstance(head, MarginHead):
                raise TypeError(f'margin_head must build a MarginHead, got {type(head).__name__}')
            del head.weight
            head.num_classes = int(num_classes)
            return head, None
        else:
            raise TypeError(f'margin_head must be a config dict or a MarginHead, '
                            f'got {type(margin_head).__name__}')
        dense = None
        if isinstance(head._parameters.get('weight'), Tensor):
            dense = head.weight.detach()
            if dense.shape != (head.num_classes, head.in_channels):
                raise ValueError(f'margin_head.weight must be [{head.num_classes}, '
                                 f'{head.in_channels}], got {tuple(dense.shape)}')
            del head.weight
        return head, dense

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_classes}, in_channels={self.in_channels}, '
                f'sample_rate={self.sample_rate}, rank={self.rank}, '
                f'world_size={self.world_size}, class_start={self.class_start}, '
                f'num_local={self.num_local}, num_sample={self.num_sample}')

    # --------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, labels: Tensor) -> Tuple[Optional[Tensor], Tensor]:
        """Choose this rank's centers for a global batch and remap the labels.

        Args:
            labels: Class indices of the global batch ``[N]``, in ``[0, num_classes)``.

        Returns:
            ``(index, columns)``: ``index`` the sorted local class indices of the sampled
            centers (``None`` when the whole shard is used: ``sample_rate=1`` or
            ``num_sample >= num_local``); ``columns [N]`` each row's positive column among
            them, or -1 when its class is on another rank. All positives this rank owns
            are sampled; ``len(index) = max(num_sample, number of such positives)``.
        """
        local = labels.long() - self.class_start
        owned = (local >= 0) & (local < self.num_local)
        if self.num_sample >= self.num_local:
            return None, torch.where(owned, local, torch.full_like(local, -1))
        positives = torch.unique(local[owned])  # sorted
        if positives.numel() >= self.num_sample:
            index = positives
        else:
            score = torch.rand(self.num_local, device=labels.device)
            score[positives] = 2.0  # above every uniform draw: always chosen
            index = score.topk(self.num_sample).indices.sort().values
        columns = torch.searchsorted(index, local.clamp(0, self.num_local - 1))
        return index, torch.where(owned, columns, torch.full_like(columns, -1))

    # ------------------------------------------------------------------ loss
    def forward(self, feats: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError(
            'PartialFCHead has no dense [B, num_classes] logits (each rank holds a shard of '
            'the class centers); use loss(feats, labels)')

    def loss(self, feats: Tensor, labels: Tensor) -> Dict[str, Tensor]:
        """Margin-softmax cross entropy of the global batch against all class centers.

        A collective: every rank calls it with the same local batch size.

        Args:
            feats: This rank's raw embeddings ``[B, in_channels]``.
            labels: This rank's class indices ``[B]`` in ``[0, num_classes)``.

        Returns:
            ``loss_cls``: the wrapped head's ``loss_weight`` times the mean cross entropy over
            the global batch (the same value on every rank); ``acc_top1``: top-1 accuracy
            (percent, detached) of the plain cosine over the global batch, the argmax taken
            over the centers sampled this step (all centers with ``sample_rate=1``).
        """
        if feats.dim() != 2 or feats.shape[1] != self.in_channels:
            raise ValueError(f'feats must have shape [B, {self.in_channels}], '
                             f'got {tuple(feats.shape)}')
        if labels.shape != feats.shape[:1]:
            raise ValueError(f'labels must have shape [{feats.shape[0]}], '
                             f'got {tuple(labels.shape)}')
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f'labels must be an integer tensor, got {labels.dtype}')
        world_size = self.world_size
        all_feats = all_gather_with_grad(feats)
        all_labels = all_gather_no_grad(labels).long()
        # Checked on the gathered labels, so every rank raises together.
        MarginHead._check_labels(all_labels, 0, self.num_classes)
        if world_size > 1:
            all_feats = ScaleGradient.apply(all_feats, float(world_size))

        head = self.margin_head
        index, columns = self.sample(all_labels)
        with autocast_off(feats.device):
            all_feats = upcast(all_feats)
            dtype = torch.promote_types(all_feats.dtype, upcast(self.weight).dtype)
            all_feats = all_feats.to(dtype)
            weight = (self.weight if index is None else self.weight[index]).to(dtype)
            norms = all_feats.norm(p=2, dim=1)
            cos = F.linear(F.normalize(all_feats, dim=1), F.normalize(weight, dim=1))

            # Every rank gets each row's positive cosine from its owner (gradient on the owner).
            owned = columns >= 0
            local_positive = MarginHead.positive_cosine(cos, columns)
            shared = torch.where(owned, local_positive.detach(), torch.zeros_like(local_positive))
            shared = all_reduce(shared, 'sum')
            positive = torch.where(owned, local_positive, shared)

            # The positive as an extra last column on every rank, labelled as the positive:
            # the margin head sees the true target of every row (CurricularFace's hard
            # negatives, its t, AdaFace's statistics). On the owner rank the positive's own
            # column is then overwritten by that margin logit.
            num_cols = cos.shape[1]
            cos_ext = torch.cat([cos, positive.unsqueeze(1)], dim=1)
            extra = torch.full_like(columns, num_cols)
            logits_ext = head.margin_logits(cos_ext, extra, norms)
            logits = torch.where(MarginHead.positive_mask(cos, columns),
                                 logits_ext[:, num_cols:], logits_ext[:, :num_cols])

            smoothing = head.label_smoothing
            total_cols = num_cols
            if smoothing > 0 and world_size > 1:
                count = torch.tensor([float(num_cols)], device=cos.device)
                total_cols = int(all_reduce(count, 'sum').item())
            loss = DistributedSoftmaxCrossEntropy.apply(logits, columns, smoothing,
                                                         total_cols)

            with torch.no_grad():
                best = all_reduce(cos.max(dim=1).values, 'max')
                acc = (positive.detach() >= best).to(torch.float32).mean() * 100.0
        return dict(loss_cls=loss * head.loss_weight, acc_top1=acc.detach())

    # ---------------------------------------------------------- checkpoints
    @torch.no_grad()
    def gather_weight(self, dst: Optional[int] = None) -> Optional[Tensor]:
        """The full ``[num_classes, in_channels]`` center matrix, gathered from all ranks.

        A collective: every rank must call it.

        Args:
            dst: Gather to this rank only (the others get ``None``); ``None`` gathers to
                every rank.

        Returns:
            The full matrix (a new tensor on the shard's device), or ``None`` on ranks
            other than ``dst``.
        """
        shard = self.weight.detach()
        if self.world_size == 1:
            return shard.clone()
        rows = math.ceil(self.num_classes / self.world_size)
        padded = shard.new_zeros(rows, self.in_channels)
        padded[:self.num_local] = shard
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        if dst is None:
            dist.all_gather(parts, padded)
        else:
            dist.gather(padded, parts if self.rank == dst else None, dst=dst)
            if self.rank != dst:
                return None
        sizes = [shard_range(self.num_classes, self.world_size, r)[1]
                 for r in range(self.world_size)]
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    def _cache_full_weight(self, dst: Optional[int]) -> None:
        full = self.gather_weight(dst)
        self._full_weight = full
        self._full_weight_version = self.weight._version if full is not None else -1

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.world_size == 1:
            return
        full = self._full_weight
        if full is None or self._full_weight_version != self.weight._version:
            full = self.gather_weight()  # collective: every rank is calling state_dict()
        self._full_weight, self._full_weight_version = None, -1
        destination[prefix + 'weight'] = full

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        key = prefix + 'weight'
        value = state_dict.get(key)
        if isinstance(value, Tensor) and value.dim() == 2:
            if value.shape[0] == self.num_classes:
                state_dict[key] = value[self.class_start:self.class_start + self.num_local]
            else:
                # E.g. a bare shard: it cannot be told which classes it holds.
                error_msgs.append(
                    f'{key}: PartialFCHead loads the full [{self.num_classes}, '
                    f'{self.in_channels}] class-center matrix (and keeps rows '
                    f'[{self.class_start}, {self.class_start + self.num_local}) on rank '
                    f'{self.rank}), got {tuple(value.shape)}')
                state_dict.pop(key)  # the base class then lists it as missing (strict)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


def partial_fc_heads(model: nn.Module) -> List[Tuple[str, PartialFCHead]]:
    """Every :class:`PartialFCHead` in ``model``, with its module name.

    Args:
        model: Any module, possibly wrapped by DDP.

    Returns:
        ``(name, head)`` pairs in ``named_modules()`` order.
    """
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, PartialFCHead)]


def gather_partial_fc_weights(model: nn.Module, dst: Optional[int] = 0) -> None:
    """Gather the full center matrix of every :class:`PartialFCHead` in ``model``.

    A collective (every rank calls it, in the same order). Until the shard changes, a later
    ``state_dict()`` on ``dst`` (on every rank with ``dst=None``) uses the gathered matrix
    without communicating, so it may then run on that rank alone, as MMEngine's
    rank-0-only ``Runner.save_checkpoint`` does.

    Args:
        model: A model, possibly wrapped by DDP.
        dst: The rank that will save, or ``None`` for all ranks. Defaults to 0.
    """
    for _, head in partial_fc_heads(model):
        if head.world_size > 1:
            head._cache_full_weight(dst)
