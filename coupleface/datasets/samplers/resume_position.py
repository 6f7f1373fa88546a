"""The resume position every coupleface sampler shares: how many indices of the current epoch
this rank has handed out, saved by ``ExactResumeHook`` and skipped after a resume.

``ResumableSampler``, ``RelationSampler`` and ``PartnerSampler`` produce their streams
differently but keep this position the same way, so it lives here once.
"""
from __future__ import annotations

from typing import Iterable, Iterator


class ResumePositionMixin:
    """``state_dict``/``load_state_dict`` of a sampler's position in its epoch stream.

    The class using it has ``seed``, ``epoch`` and ``num_samples`` (indices per rank and
    epoch), calls :meth:`_reset_position` in ``__init__``, wraps its epoch's indices in
    :meth:`_resumed` inside ``__iter__`` (after taking the skip with :meth:`_take_skip`) and
    calls :meth:`_new_epoch` from ``set_epoch``.
    """

    seed: int
    epoch: int
    num_samples: int

    def _reset_position(self) -> None:
        self._skip = self._samples_yielded = 0

    def _take_skip(self) -> int:
        """The indices to skip this epoch (a resumed position, once), counted as handed out."""
        skip, self._skip = self._skip, 0
        self._samples_yielded = skip
        return skip

    def _resumed(self, indices: Iterable[int]) -> Iterator[int]:
        """Yield ``indices`` (already without the skipped ones), counting each."""
        for index in indices:
            self._samples_yielded += 1
            yield index

    def _new_epoch(self, epoch: int) -> None:
        """A resume position belongs to the epoch it was saved in: drop it on another."""
        if epoch != self.epoch:
            self._reset_position()

    def state_dict(self) -> dict:
        """``seed``, ``epoch`` and ``samples_yielded`` (handed out this epoch, prefetch too)."""
        return dict(seed=self.seed, epoch=self.epoch, samples_yielded=self._samples_yielded)

    def load_state_dict(self, state: dict) -> None:
        """Resume at ``state``: the next ``__iter__`` skips ``samples_yielded`` indices.

        Args:
            state (dict): Keys ``seed``, ``epoch`` and ``samples_yielded``.
        """
        skip = int(state['samples_yielded'])
        if not 0 <= skip <= self.num_samples:
            raise ValueError(f'{type(self).__name__}.load_state_dict: samples_yielded={skip} '
                             f'is not in [0, {self.num_samples}]')
        self.seed, self.epoch = int(state['seed']), int(state['epoch'])
        self._skip = self._samples_yielded = skip
