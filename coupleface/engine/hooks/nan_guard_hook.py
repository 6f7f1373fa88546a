"""Stop training at the first NaN/Inf loss, naming the iteration and the loss terms.

A diverged run keeps "training" on NaN weights for hours and, worse, writes them into
the next checkpoint, so resuming cannot recover. After every training iteration this
hook checks each loss term the model returned (keys with ``loss`` in their name, as
MMEngine sums them) and the gradient norm logged by a clipping optimizer wrapper; on a
non-finite value it raises :class:`NonFiniteLossError` *before* ``CheckpointHook`` runs
(the last checkpoint stays good). All ranks agree on the decision, so no rank is left
waiting in a collective.

With mixed precision (``AmpOptimWrapper``), overflowing gradients are normal: the loss
scaler skips that step and lowers the scale. Such iterations are logged as skipped
instead of stopping, unless ``max_amp_skips`` consecutive steps are skipped.

Gradient clipping is configured on the optimizer wrapper, not here:
``optim_wrapper = dict(clip_grad=dict(max_norm=5, norm_type=2))``.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, List, Mapping, Optional

import torch
from mmengine.dist import is_distributed
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from coupleface.registry import HOOKS
from coupleface.utils.dist import all_reduce
from coupleface.utils.validation import check_int

DATA_BATCH = Optional[Any]


class NonFiniteLossError(ValueError):
    """A loss term (or the gradient norm) became NaN/Inf; the message names them.

    A ``ValueError`` so the command-line tools print it as one ``error:`` line.
    """


def _as_float(value: Any) -> Optional[float]:
    """A logged value as one float (the worst element of a tensor); ``None`` if not numeric."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 0:
            return None
        value = value.detach().float()
        finite = torch.isfinite(value)
        if bool(finite.all()):
            return float(value.reshape(-1)[0])
        return float(value[~finite].reshape(-1)[0])
    if isinstance(value, (list, tuple)):
        floats = [f for f in map(_as_float, value) if f is not None]
        bad = [f for f in floats if not math.isfinite(f)]
        return bad[0] if bad else (sum(floats) if floats else None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:  # numpy scalars
        return float(value)
    except (TypeError, ValueError):
        return None


def nonfinite_terms(outputs: Optional[Mapping[str, Any]]) -> Dict[str, float]:
    """The loss terms of ``outputs`` (keys containing ``loss``) that are NaN or Inf.

    Args:
        outputs: What ``model.train_step`` returned (MMEngine's ``log_vars``).

    Returns:
        dict: ``{term: value}`` for the non-finite terms, in ``outputs`` order.
    """
    bad = {}
    for name, value in (outputs or {}).items():
        if 'loss' not in name:
            continue
        number = _as_float(value)
        if number is not None and not math.isfinite(number):
            bad[name] = number
    return bad


@HOOKS.register_module()
class NanGuardHook(Hook):
    """Raise on the first non-finite loss term or gradient norm (log it under AMP).

    The loss terms are read from the ``outputs`` of ``train_step`` (falling back to the
    message hub's ``train/loss*`` scalars when a loop passes no outputs); the gradient
    norm from the message hub's ``train/grad_norm``, which the optimizer wrapper logs
    when ``clip_grad`` is set. With an ``AmpOptimWrapper``, an iteration whose loss
    scale dropped (or whose loss is non-finite) is logged as a skipped step; more than
    ``max_amp_skips`` in a row raise.

    The hook runs before ``LoggerHook`` and ``CheckpointHook`` (priority ``NORMAL``),
    so a NaN step is never checkpointed; ``before_save_checkpoint`` also refuses
    non-finite weights.

    Args:
        check_grad_norm (bool): Also stop on a non-finite ``train/grad_norm``.
            Defaults to True.
        check_weights (bool): Refuse to write a checkpoint whose model weights are
            not finite. Defaults to True.
        max_amp_skips (int): With AMP, consecutive skipped steps tolerated before
            stopping (the scale keeps halving; a model that is NaN itself never
            recovers). Defaults to 100.
        sync_ranks (bool): Make all ranks stop together (one tiny ``all_reduce`` per
            iteration); otherwise the healthy ranks stop at the process-group
            timeout. Defaults to True.

    Examples:
        >>> custom_hooks = [dict(type='NanGuardHook')]
        >>> optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1),
        ...                      clip_grad=dict(max_norm=5, norm_type=2))
    """

    priority = 'NORMAL'

    def __init__(self, check_grad_norm: bool = True, check_weights: bool = True,
                 max_amp_skips: int = 100, sync_ranks: bool = True) -> None:
        self.max_amp_skips = check_int(max_amp_skips, 'max_amp_skips', owner='NanGuardHook')
        self.check_grad_norm = check_grad_norm
        self.check_weights = check_weights
        self.sync_ranks = sync_ranks
        self.amp_skips = 0  # consecutive skipped AMP steps
        self.total_amp_skips = 0
        self._scale_before: Optional[float] = None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _loss_scaler(runner):
        scaler = getattr(getattr(runner, 'optim_wrapper', None), 'loss_scaler', None)
        if scaler is None or not getattr(scaler, 'is_enabled', lambda: True)():
            return None
        return scaler

    @staticmethod
    def _hub_terms(runner, grad_norm: bool) -> Dict[str, float]:
        """Non-finite ``train/loss*`` (and ``train/grad_norm``) values of the message hub."""
        bad = {}
        for key, buffer in runner.message_hub.log_scalars.items():
            name = key[len('train/'):] if key.startswith('train/') else None
            if name is None or not ('loss' in name or (grad_norm and name == 'grad_norm')):
                continue
            try:
                value = float(buffer.current())
            except (ValueError, TypeError, IndexError):
                continue
            if not math.isfinite(value):
                bad[name] = value
        return bad

    def _any_rank(self, flag: bool) -> bool:
        if not (self.sync_ranks and is_distributed()):
            return flag
        value = torch.tensor([1.0 if flag else 0.0])
        all_reduce(value, op='max')
        return bool(value.item() > 0)

    # ------------------------------------------------------------------ hooks
    def before_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None) -> None:
        scaler = self._loss_scaler(runner)
        self._scale_before = float(scaler.get_scale()) if scaler is not None else None

    def after_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None,
                         outputs: Optional[Mapping[str, Any]] = None) -> None:
        if outputs:
            bad = nonfinite_terms(outputs)
            grad_norm = runner.message_hub.log_scalars.get('train/grad_norm') \
                if self.check_grad_norm else None
            if grad_norm is not None and not math.isfinite(float(grad_norm.current())):
                bad['grad_norm'] = float(grad_norm.current())
        else:
            bad = self._hub_terms(runner, grad_norm=self.check_grad_norm)

        scaler = self._loss_scaler(runner)
        if scaler is not None:
            scale_after = float(scaler.get_scale())
            dropped = self._scale_before is not None and scale_after < self._scale_before
            self._after_amp_iter(runner, batch_idx, bad, dropped, scale_after)
            return
        if not self._any_rank(bool(bad)):
            return
        where = self._where(runner, batch_idx)
        if bad:
            terms = ', '.join(f'{k}={v}' for k, v in bad.items())
            message = f'non-finite loss at {where}: {terms}'
        else:
            message = f'non-finite loss on another rank at {where}'
        raise NonFiniteLossError(
            f'{message}; training stopped before this step was checkpointed (lower the '
            'learning rate, set optim_wrapper.clip_grad=dict(max_norm=...), or check the '
            'data), then resume from the last checkpoint')

    def _after_amp_iter(self, runner, batch_idx: int, bad: Dict[str, float], dropped: bool,
                        scale_after: float) -> None:
        skipped = self._any_rank(bool(bad) or dropped)
        if not skipped:
            self.amp_skips = 0
            return
        self.amp_skips += 1
        self.total_amp_skips += 1
        where = self._where(runner, batch_idx)
        terms = ', '.join(f'{k}={v}' for k, v in bad.items()) or 'gradients overflowed'
        if self.amp_skips > self.max_amp_skips:
            raise NonFiniteLossError(
                f'AMP: {self.amp_skips} consecutive steps skipped by the loss scaler, last at '
                f'{where} ({terms}; loss scale {scale_after:g}): the model does not recover; '
                'resume from the last checkpoint with a lower learning rate')
        print_log(f'AMP: step skipped by the loss scaler at {where} ({terms}); loss scale '
                  f'{self._scale_before:g} -> {scale_after:g} '
                  f'({self.amp_skips} in a row, {self.total_amp_skips} in total)',
                  logger='current', level=logging.WARNING)

    @staticmethod
    def _where(runner, batch_idx: int) -> str:
        return (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                f'batch {batch_idx + 1})')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_weights:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        names: List[str] = []
        for name, tensor in model.state_dict().items():
            if torch.is_tensor(tensor) and tensor.is_floating_point() \
                    and not bool(torch.isfinite(tensor).all()):
                names.append(name)
        if names:
            shown = ', '.join(names[:5]) + (f', ... (+{len(names) - 5} more)'
                                            if len(names) > 5 else '')
            raise NonFiniteLossError(
                f'refusing to write a checkpoint at iteration {runner.iter + 1}: non-finite '
                f'weights in {shown}; the last checkpoint is kept')
