"""coupleface.benchmarks.head: per-rank bytes of a margin head computed from shapes."""
from coupleface.benchmarks.head import LOGIT_COPIES, head_bytes


def test_head_bytes_formula():
    b = head_bytes(1000, 0.1, 64, dim=512, ranks=1, logit_copies=8)
    assert b['params'] == 1000 * 512 * 4 * 3
    assert b['centers'] == 100 * 512 * 4 * 2
    assert b['logits'] == 64 * 100 * 4 * 8
    dense = head_bytes(1000, None, 64, dim=512)
    assert dense['logit_matrix'] == 64 * 1000 * 4
    sharded = head_bytes(8000, 1.0, 64, dim=512, ranks=8)
    assert sharded['params'] == b['params']
    assert LOGIT_COPIES == 8
