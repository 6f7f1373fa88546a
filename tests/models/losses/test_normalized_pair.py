"""normalized_pair: unit rows, at least fp32, gradient to the student only."""
import torch

from coupleface.models.losses.normalized_pair import normalized_pair


def test_unit_rows_and_gradient_to_student_only():
    student = torch.randn(4, 3, requires_grad=True)
    teacher = torch.randn(4, 3, requires_grad=True)
    s, t = normalized_pair(student, teacher)
    torch.testing.assert_close(s.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(t.norm(dim=1), torch.ones(4))
    torch.testing.assert_close(s, student / student.norm(dim=1, keepdim=True))
    assert s.requires_grad and not t.requires_grad
    (s * t).sum().backward()
    assert student.grad is not None and teacher.grad is None


def test_dtype_is_the_students_promoted_to_fp32():
    s, t = normalized_pair(torch.randn(2, 3).half(), torch.randn(2, 3).double())
    assert s.dtype == t.dtype == torch.float32
    s, t = normalized_pair(torch.randn(2, 3).double(), torch.randn(2, 3).half())
    assert s.dtype == t.dtype == torch.float64
