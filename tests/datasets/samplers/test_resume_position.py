"""ResumePositionMixin: the position it saves and restores, on a minimal sampler."""
import pytest

from coupleface.datasets.samplers.resume_position import ResumePositionMixin


class Counting(ResumePositionMixin):
    def __init__(self, n):
        self.seed, self.epoch, self.num_samples = 7, 0, n
        self._reset_position()

    def __iter__(self):
        skip = self._take_skip()
        yield from self._resumed(range(skip, self.num_samples))

    def set_epoch(self, epoch):
        self._new_epoch(epoch)
        self.epoch = epoch


def test_position_round_trip_and_skip():
    s = Counting(10)
    it = iter(s)
    assert [next(it) for _ in range(4)] == [0, 1, 2, 3]
    assert s.state_dict() == dict(seed=7, epoch=0, samples_yielded=4)
    t = Counting(10)
    t.load_state_dict(dict(seed=3, epoch=0, samples_yielded=4))
    assert (t.seed, t.epoch) == (3, 0)
    assert list(t) == [4, 5, 6, 7, 8, 9] and t.state_dict()['samples_yielded'] == 10
    assert list(t) == list(range(10))  # the skip applies once


def test_new_epoch_drops_the_position_and_bad_state_is_named():
    s = Counting(10)
    s.load_state_dict(dict(seed=7, epoch=0, samples_yielded=4))
    s.set_epoch(0)
    assert list(s)[0] == 4
    s.load_state_dict(dict(seed=7, epoch=0, samples_yielded=4))
    s.set_epoch(1)
    assert list(s)[0] == 0
    with pytest.raises(ValueError, match=r'Counting.load_state_dict: samples_yielded=11 is '
                                         r'not in \[0, 10\]'):
        s.load_state_dict(dict(seed=7, epoch=0, samples_yielded=11))
