"""Proof by test: the ``cross`` RAD form is the FCD residual projected on the partners.

``r_s(i,j) - r_t(i,j) = <ŝ_i, t̂_j> - <t̂_i, t̂_j> = <ŝ_i - t̂_i, t̂_j>``, so cross RAD (l2,
uniform weights) equals the mean over Ω of the squared projections of the FCD residual;
it has FCD's minimiser (ŝ_i = t̂_i) and, pair by pair, is never larger than the anchor's FCD
term (Cauchy-Schwarz with |t̂_j| = 1). The ``student`` form is not: it is zero for any
student whose relations equal the teacher's (here a rotation of the teacher), where FCD
is not. Whoever makes ``cross`` a default again has to delete this file first.
"""
import torch
import torch.nn.functional as F

from coupleface.models.losses import FeatureConsistencyLoss, RelationAwareDistillationLoss


def _batch(seed=0, n=12, d=8):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.arange(n) // 3
    return student, teacher, labels


def _cross(**kw):
    return RelationAwareDistillationLoss(relation='cross', distance='l2', weighting='uniform',
                                         num_negatives=None, **kw)


def test_cross_rad_equals_projected_fcd_residual():
    student, teacher, labels = _batch()
    s, t = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    residual = s - t                                    # FCD's residual, per anchor
    projections = residual @ t.t()                      # <ŝ_i - t̂_i, t̂_j>
    omega = ~torch.eye(len(labels), dtype=torch.bool)   # uniform, all partners but self
    expected = projections[omega].pow(2).mean()
    got = _cross()(student, teacher, labels)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # pair by pair at most the anchor's FCD term |ŝ_i - t̂_i|²; so RAD <= FCD (l2 mode)
    fcd_rows = residual.pow(2).sum(dim=1, keepdim=True).expand_as(projections)
    assert (projections.pow(2) <= fcd_rows + 1e-12).all()
    assert got <= FeatureConsistencyLoss(mode='l2')(student, teacher)
    # its gradient is the FCD residual's, projected: zero at FCD's minimiser
    at_min = teacher.clone().requires_grad_(True)
    loss = _cross()(at_min, teacher, labels)
    loss.backward()
    assert float(loss) < 1e-24 and at_min.grad.abs().max() < 1e-12


def test_student_relations_carry_what_fcd_does_not():
    _, teacher, labels = _batch(1)
    q, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(2)))
    rotated = (teacher @ q).requires_grad_(True)  # same relations, other embeddings
    student_rad = RelationAwareDistillationLoss(relation='student', distance='l2',
                                                weighting='uniform', num_negatives=None)
    assert float(student_rad(rotated, teacher, labels)) < 1e-20
    assert float(FeatureConsistencyLoss(mode='l2')(rotated, teacher)) > 0.5
    assert float(_cross()(rotated, teacher, labels)) > 1e-3
