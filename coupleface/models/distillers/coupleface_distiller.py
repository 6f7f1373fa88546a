"""CoupleFace distiller: margin-softmax + FCD + RAD on a frozen teacher (docs/architecture.md §2.1).

The single-teacher pattern of mmrazor, with one difference that matters for
checkpoints and DDP: the frozen teacher is *not* a registered child module. It
is kept beside the student (moved with ``.to()``, always in eval mode), so it is
absent from ``parameters()`` (hence from the optimizer and from DDP's gradient
sync) and from ``state_dict()`` (student checkpoints record the teacher's path
and sha256 instead, as ``_extra_state``).

With a teacher bank, RAD can also take partners from the bank
(``rad_bank_partners=M``): every step draws ``M`` bank rows (original view) with
:func:`draw_bank_partners`, seeded from the run's seed and the iteration, so every
rank draws the same rows and a resumed run draws what the uninterrupted one drew.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import MessageHub, print_log
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn

from coupleface.models.recognizers.face_recognizer import FaceRecognizer
from coupleface.registry import MODELS
from coupleface.utils.dist import mark_rank_local_params_for_ddp
from coupleface.utils.face_batch_samples import FaceBatchSamples, batch_field
from coupleface.utils.random_streams import BANK_PARTNER_STREAM, floyd_draw, seed_sequence

from .teacher import build_frozen_teacher, embedding_dim

#: a list of ``DataSample`` (default path) or one ``FaceBatchSamples`` (fast path)
BatchSamples = Union[List[DataSample], FaceBatchSamples]


def draw_bank_partners(num_rows: int, num: int, seed: int, iteration: int) -> torch.Tensor:
    """The TeacherBank rows that are RAD partners at one iteration.

    ``num`` distinct rows, uniformly at random (Floyd's algorithm,
    ``coupleface.utils.random_streams.floyd_draw``: O(num) draws, whatever the bank
    size), from a CPU ``torch.Generator`` seeded with
    ``np.random.SeedSequence([seed, iteration, 0xBA4C]).generate_state(2)`` (the two
    32-bit words, high word first; ``BANK_PARTNER_STREAM``): the same rows on every rank
    and in a resumed run. Step ``j`` of the draw maps the ``j``-th float64 uniform ``u``
    of the generator to ``min(floor(u * (hi + 1)), hi)``.

    Args:
        num_rows: Rows in the bank ``N``.
        num: Rows to draw, ``0 <= num <= N``.
        seed: The run's seed.
        iteration: The training iteration (0-based).

    Returns:
        Tensor: int64 ``num`` distinct row indices in ``[0, N)``.
    """
    if not 0 <= num <= num_rows:
        raise ValueError(f'cannot draw {num} distinct rows from a bank of {num_rows}')
    words = seed_sequence(seed, iteration, BANK_PARTNER_STREAM).generate_state(2)
    gen = torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))
    uniform = torch.rand(num, generator=gen, dtype=torch.float64).numpy()
    hi = np.arange(num_rows - num, num_rows, dtype=np.int64)  # Floyd's bound of each step
    ints = np.minimum((uniform * (hi + 1)).astype(np.int64), hi)[:, None]  # in [0, hi]
    rows = floyd_draw(np.array([num_rows], dtype=np.int64), num, lambda j, _: ints[j])[0]
    return torch.from_numpy(rows)


@MODELS.register_module()
class CoupleFaceDistiller(BaseModel):
    """Distil a frozen teacher into a student face recognizer.

    ``loss = head.loss(s) + w_fcd(t) · FCD(s, t) + w_rad(t) · RAD(s, t, labels)``
    where ``s`` is the (connector-projected) student embedding and ``t`` the
    teacher embedding of the clean teacher view, computed online or read from a
    teacher bank by ``(sample_idx, flip)``. A student head whose class attribute
    ``uses_teacher_embeddings`` is True (``AdaDistillHead``) is called as
    ``head.loss(feats, labels, teacher=t)`` with the raw student embedding when it is
    the teacher's size, else with the connector's output (``head_through_connector``;
    the evaluated embedding stays the raw one); the distillation factor does not scale it.

    Args:
        student: ``FaceRecognizer`` config (with its margin head).
        teacher: ``dict(model=<FaceRecognizer cfg>, checkpoint=<path>)``; the
            checkpoint may be a full recognizer checkpoint or a bare insightface
            ``backbone.pth`` state dict, which also loads without a model config as
            ``dict(network='r50', checkpoint=<path>)`` (``build_frozen_teacher``).
            Mutually exclusive with ``teacher_bank``.
        teacher_bank: ``dict(path=<prefix>)`` of a bank written by
            ``tools/extract_embeddings.py`` (valid for un-augmented teacher views).
        connector: Config of the student-side projection (``LinearConnector``),
            required when the student and teacher embedding sizes differ.
        fcd_loss: ``FeatureConsistencyLoss`` config, or ``None`` to disable.
        rad_loss: ``RelationAwareDistillationLoss`` config, or ``None``.
        extra_losses: Further ``{name: loss cfg}`` taking ``(student, teacher)``, or
            ``(student, teacher, labels)`` when the loss class sets
            ``needs_labels = True`` (e.g. the EKD-style rank loss); logged as
            ``loss_<name>``.
        distill_warmup_iters: Distillation weights ramp linearly from 0 to 1 over
            these iterations.
        distill_stop_iter: From this iteration on, distillation terms are off.
        grad_norm_interval: Every this many iterations, log the L2 norm of each loss
            term's gradient on the student embeddings of the batch (``gnorm_cls``,
            ``gnorm_fcd``, ``gnorm_rad``, ``gnorm_<extra>``; after the term's weight), so a
            relation term's weight can be set to a real share of FCD's. ``0``: off
            (default). Costs one backward pass per term through the head and losses only.
        partner_samples: The last ``partner_samples`` images of every rank batch are
            partners appended by ``PartnerSampler`` (its ``num_partners``): the
            classification loss (and its ``acc_top1``) sees only the shuffled part before
            them; FCD, RAD and the extra losses see the whole batch. Defaults to 0.
        rad_bank_partners: With ``teacher_bank`` and ``rad_loss`` (cross relation),
            the number ``M`` of bank rows added as teacher partners of every anchor
            (``bank_teacher``/``bank_labels`` of the RAD loss). Each step draws ``M``
            distinct rows (original view) uniformly at random with
            :func:`draw_bank_partners`, seeded from the run's seed (``runner.seed``,
            passed on by ``AugmentSeedHook`` through :meth:`set_run_seed`; 0 without it)
            and the iteration, so all
            ranks use the same rows and resume is exact. The bank must record labels
            (written by ``tools/extract_embeddings.py``). A drawn row may be one of the
            batch's own images (then a positive with ``r_t = 1``); with ``M << N`` this
            is rare. Defaults to 0 (off).
        data_preprocessor: Defaults to ``FaceDataPreprocessor``.
        init_cfg: Initialisation config (of the student/connector).

    Examples:
        >>> model = dict(
        ...     type='CoupleFaceDistiller',
        ...     student=dict(type='FaceRecognizer',
        ...                  backbone=dict(type='MobileFaceNet', embedding_size=512),
        ...                  head=dict(type='ArcFaceHead', num_classes=85742,
        ...                            in_channels=512)),
        ...     teacher=dict(model=dict(type='FaceRecognizer',
        ...                             backbone=dict(type='IResNet', arch=100)),
        ...                  checkpoint='ms1mv3_arcface_r100/backbone.pth'),
        ...     fcd_loss=dict(type='FeatureConsistencyLoss', loss_weight=1.0),
        ...     rad_loss=dict(type='RelationAwareDistillationLoss', loss_weight=1.0,
        ...                   num_negatives=8))
    """

    def __init__(self, student: dict, teacher: Optional[dict] = None,
                 teacher_bank: Optional[dict] = None, connector: Optional[dict] = None,
                 fcd_loss: Optional[dict] = None, rad_loss: Optional[dict] = None,
                 extra_losses: Optional[Dict[str, dict]] = None,
                 distill_warmup_iters: int = 0, distill_stop_iter: Optional[int] = None,
                 rad_bank_partners: int = 0, partner_samples: int = 0,
                 grad_norm_interval: int = 0,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='FaceDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if (teacher is None) == (teacher_bank is None):
            raise ValueError('CoupleFaceDistiller needs exactly one of teacher=dict(model=..., '
                             'checkpoint=...) and teacher_bank=dict(path=...)')
        self.student: FaceRecognizer = MODELS.build(student)
        if self.student.head is None:
            raise ValueError('CoupleFaceDistiller: the student needs a margin head')

        teacher_model: Optional[FaceRecognizer] = None
        self.teacher_bank = None
        self.teacher_info: Dict[str, str] = {}
        if teacher is not None:
            teacher_model, self.teacher_info = build_frozen_teacher(teacher)
            teacher_dim = embedding_dim(teacher_model)
        else:
            from .teacher_bank import TeacherBank
            bank_cfg = dict(teacher_bank)
            path = bank_cfg.pop('path')
            self.teacher_bank = TeacherBank(path, **bank_cfg)
            teacher_dim = self.teacher_bank.embedding_dim
            self.teacher_info = dict(teacher_bank=osp.abspath(path),
                                     **{f'bank_{k}': str(v) for k, v in
                                        self.teacher_bank.meta.items()
                                        if k in ('teacher_sha256', 'dataset')})

        # Not a registered child module: out of parameters(), state_dict() and DDP.
        object.__setattr__(self, '_teacher', teacher_model)
        student_dim = embedding_dim(self.student)
        self.connector = MODELS.build(connector) if connector is not None else None
        if self.connector is not None:
            student_dim = getattr(self.connector, 'out_channels', student_dim)
        if student_dim is not None and teacher_dim is not None and student_dim != teacher_dim:
            raise ValueError(
                f'student embedding size {student_dim} differs from the teacher\'s '
                f'{teacher_dim}: add connector=dict(type="LinearConnector", '
                f'in_channels={student_dim}, out_channels={teacher_dim})')

        head_dim = getattr(self.student.head, 'in_channels', None)
        # a head that works in the teacher's space (AdaDistillHead) gets the connector output
        # when the student embeds at another size (like-for-like with the connector rows)
        self.head_through_connector = False
        if getattr(self.student.head, 'uses_teacher_embeddings', False):
            raw_dim = embedding_dim(self.student)
            if teacher_dim is not None and head_dim != teacher_dim:
                raise ValueError(
                    f'{type(self.student.head).__name__} works in the teacher\'s embedding '
                    f'space: set the head\'s in_channels to the teacher\'s {teacher_dim} '
                    f'(got in_channels={head_dim})')
            # (a narrower student without a connector was refused above)
            self.head_through_connector = self.connector is not None and raw_dim != head_dim
        self.fcd_loss = MODELS.build(fcd_loss) if fcd_loss is not None else None
        self.rad_loss = MODELS.build(rad_loss) if rad_loss is not None else None
        self.extra_losses = nn.ModuleDict(
            {name: MODELS.build(cfg) for name, cfg in (extra_losses or {}).items()})
        # a loss declares that it takes identity labels (``needs_labels = True``)
        self._losses_with_labels = {
            name for name, loss in self.extra_losses.items()
            if getattr(loss, 'needs_labels', False)}
        self.distill_warmup_iters = int(distill_warmup_iters)
        self.distill_stop_iter = distill_stop_iter
        self.rad_bank_partners = self._check_rad_bank_partners(rad_bank_partners)
        self.run_seed = 0  # set_run_seed (AugmentSeedHook) gives the run's seed
        if isinstance(partner_samples, bool) or int(partner_samples) != partner_samples \
                or partner_samples < 0:
            raise ValueError(f'partner_samples must be an integer >= 0, got {partner_samples!r}')
        self.partner_samples = int(partner_samples)
        if isinstance(grad_norm_interval, bool) or int(grad_norm_interval) != \
                grad_norm_interval or grad_norm_interval < 0:
            raise ValueError(f'grad_norm_interval must be an integer >= 0, '
                             f'got {grad_norm_interval!r}')
        self.grad_norm_interval = int(grad_norm_interval)
        mark_rank_local_params_for_ddp(self)  # e.g. PartialFC's class-center shards

    def _check_rad_bank_partners(self, num: int) -> int:
        """Validate ``rad_bank_partners`` against the teacher source and the RAD loss."""
        if isinstance(num, bool) or int(num) != num or num < 0:
            raise ValueError(f'rad_bank_partners must be an integer >= 0, got {num!r}')
        num = int(num)
        if num == 0:
            return 0
        if self.teacher_bank is None:
            raise ValueError(f'rad_bank_partners={num} draws RAD partners from the teacher '
                             'bank: it needs teacher_bank=dict(path=...), not an online teacher')
        if self.rad_loss is None:
            raise ValueError(f'rad_bank_partners={num} adds RAD partners but rad_loss is None')
        if getattr(self.rad_loss, 'relation', 'cross') != 'cross':
            raise ValueError(f'rad_bank_partners={num} needs rad_loss relation=\'cross\' (bank '
                             f'rows have no student embedding), got {self.rad_loss.relation!r}')
        if self.teacher_bank.labels is None:
            raise ValueError(f'rad_bank_partners={num} needs identity labels in the teacher '
                             f'bank, but {self.teacher_bank.json_path} records none: re-extract '
                             'it with tools/extract_embeddings.py')
        if num > len(self.teacher_bank):
            raise ValueError(f'rad_bank_partners={num} exceeds the {len(self.teacher_bank)} '
                             f'rows of teacher bank {self.teacher_bank.npy_path}')
        return num

    # -- the hidden teacher ------------------------------------------------------------
    @property
    def teacher(self) -> Optional[FaceRecognizer]:
        """The frozen online teacher (``None`` with a teacher bank)."""
        return self._teacher

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self._teacher is not None:
            self._teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'CoupleFaceDistiller':
        super().train(mode)
        if self._teacher is not None:
            self._teacher.eval()
        return self

    def get_extra_state(self) -> Dict[str, str]:
        """Saved in place of teacher weights: where the teacher came from."""
        return dict(self.teacher_info)

    def set_extra_state(self, state) -> None:
        if state and self.teacher_info and dict(state) != self.teacher_info:
            print_log(f'checkpoint was distilled from {dict(state)}, the config now uses '
                      f'{self.teacher_info}', logger='current', level=30)

    # -- forward -------------------------------------------------------------------------
    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor', teacher_inputs: Optional[torch.Tensor] = None):
        if mode == 'loss':
            return self.loss(inputs, data_samples, teacher_inputs)
        if mode == 'predict':
            return self.student.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student.extract_feat(inputs)
        raise RuntimeError(f'Invalid mode "{mode}": expected loss, predict or tensor')

    def set_run_seed(self, seed: Optional[int]) -> None:
        """Set the run's seed that the per-iteration draws of the model use.

        ``AugmentSeedHook`` calls it with ``runner.seed`` in ``before_train``; until then
        (and with ``None``) the seed is 0. Today only :meth:`bank_partner_indices` draws.

        Args:
            seed: The run's seed (``runner.seed``).
        """
        self.run_seed = 0 if seed is None else int(seed)

    @staticmethod
    def current_iter() -> int:
        """The Runner's iteration count (``'iter'`` of the current MessageHub), else 0."""
        return MessageHub.get_current_instance().get_info('iter', 0) or 0

    def distill_factor(self) -> float:
        """Weight factor of the distillation terms at the current iteration."""
        it = self.current_iter()
        if self.distill_stop_iter is not None and it >= self.distill_stop_iter:
            return 0.0
        if self.distill_warmup_iters > 0:
            return min(1.0, (it + 1) / self.distill_warmup_iters)
        return 1.0

    @torch.no_grad()
    def teacher_embeddings(self, inputs: torch.Tensor, data_samples: BatchSamples,
                           teacher_inputs: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Teacher embeddings of the clean view: online forward or bank lookup."""
        if self.teacher_bank is not None:
            idx = batch_field(data_samples, 'sample_idx').cpu()
            flip = batch_field(data_samples, 'flip').cpu()
            return self.teacher_bank.lookup(idx, flip).to(inputs.device)
        view = teacher_inputs if teacher_inputs is not None else inputs
        return self._teacher.extract_feat(view).float()

    def bank_partner_indices(self, iteration: Optional[int] = None) -> torch.Tensor:
        """The teacher bank rows that are RAD partners at ``iteration`` (default: now).

        Returns:
            Tensor: int64 ``rad_bank_partners`` row indices (CPU), the same on every rank.
        """
        if iteration is None:
            iteration = self.current_iter()
        return draw_bank_partners(len(self.teacher_bank), self.rad_bank_partners,
                                  self.run_seed, iteration)

    @torch.no_grad()
    def bank_partners(self, device: torch.device, iteration: Optional[int] = None
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher embeddings (original view) and labels of this step's bank partners.

        Args:
            device: Where to put them.
            iteration: Defaults to the current iteration.

        Returns:
            tuple[Tensor, Tensor]: float32 ``M x D`` embeddings and int64 ``M`` labels.
        """
        idx = self.bank_partner_indices(iteration)
        emb = self.teacher_bank.lookup(idx, torch.zeros_like(idx, dtype=torch.bool))
        return emb.to(device), self.teacher_bank.lookup_labels(idx).to(device)

    def _classified(self, batch: int) -> slice:
        """The samples the classification loss sees: all but the trailing partners."""
        if not self.partner_samples:
            return slice(None)
        if batch <= self.partner_samples:
            raise ValueError(f'batch of {batch} samples but partner_samples='
                             f'{self.partner_samples}: the sampler\'s num_partners and the '
                             'distiller\'s partner_samples must match, below the batch size')
        return slice(0, batch - self.partner_samples)

    def loss(self, inputs: torch.Tensor, data_samples: BatchSamples,
             teacher_inputs: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Classification loss plus the weighted distillation terms."""
        feats = self.student.extract_feat(inputs)
        labels = self.student.gt_labels(data_samples, feats.device)
        cls = self._classified(feats.shape[0])  # the shuffled part, before any partners
        teacher = projected = None
        if getattr(self.student.head, 'uses_teacher_embeddings', False):
            # e.g. AdaDistillHead: the head itself distils (class centers from the teacher);
            # it gets the student embedding in the teacher's space (raw, or the connector's)
            teacher = self.teacher_embeddings(inputs, data_samples, teacher_inputs)
            if self.head_through_connector:
                projected = self.connector(feats)
            head_in = projected if projected is not None else feats
            losses = dict(self.student.head.loss(head_in[cls], labels[cls],
                                                 teacher=teacher[cls]))
        else:
            losses = dict(self.student.head.loss(feats[cls], labels[cls]))
        factor = self.distill_factor()
        if self.fcd_loss is None and self.rad_loss is None and not self.extra_losses:
            return losses
        if teacher is None:
            teacher = self.teacher_embeddings(inputs, data_samples, teacher_inputs)
        student = projected if projected is not None else (
            self.connector(feats) if self.connector is not None else feats)
        if student.shape[-1] != teacher.shape[-1]:
            raise ValueError(f'student embedding size {student.shape[-1]} differs from the '
                             f'teacher\'s {teacher.shape[-1]}: configure a connector')
        student = student.float()
        if self.fcd_loss is not None:
            losses['loss_fcd'] = factor * self.fcd_loss(student, teacher)
        if self.rad_loss is not None:
            if self.rad_bank_partners:
                bank_t, bank_labels = self.bank_partners(student.device)
                losses['loss_rad'] = factor * self.rad_loss(
                    student, teacher, labels, bank_teacher=bank_t, bank_labels=bank_labels)
            else:
                losses['loss_rad'] = factor * self.rad_loss(student, teacher, labels)
        for name, loss in self.extra_losses.items():
            args = (student, teacher, labels) if name in self._losses_with_labels \
                else (student, teacher)
            losses[f'loss_{name}'] = factor * loss(*args)
        self._log_grad_norms(losses, feats)
        return losses

    def _log_grad_norms(self, losses: Dict[str, torch.Tensor], feats: torch.Tensor) -> None:
        """Add ``gnorm_<term>``: |d loss_<term> / d feats| (this rank's embeddings)."""
        if not self.grad_norm_interval or not feats.requires_grad \
                or self.current_iter() % self.grad_norm_interval:
            return
        for key in [k for k in losses if k.startswith('loss_')]:
            value = losses[key]
            grad = None
            if value.requires_grad:
                grad, = torch.autograd.grad(value, feats, retain_graph=True, allow_unused=True)
            losses['gnorm_' + key[5:]] = (grad.detach().norm() if grad is not None
                                          else feats.new_zeros(()))
