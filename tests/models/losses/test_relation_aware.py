"""RelationAwareDistillationLoss (RAD): hand computations with explicit loops, gradients,
TeacherBank partners, memory shape (B_local x B_global, never B_global^2)."""
import itertools
import math

import pytest
import torch
from torch.overrides import TorchFunctionMode

import coupleface.models.losses.relation_aware as rad_module
from coupleface.models.losses import RelationAwareDistillationLoss, hardest_negatives
from coupleface.registry import MODELS

# 6 samples of 3 identities, 3-d; no ties among teacher similarities.
T = [[1.0, 0.2, 0.1], [0.9, 0.35, -0.1], [0.1, 1.0, 0.3], [-0.2, 0.8, 0.5],
     [0.3, -0.1, 1.0], [0.55, 0.1, 0.7]]
S = [[0.8, 0.5, 0.0], [1.0, -0.2, 0.3], [0.4, 0.9, -0.2], [0.0, 1.0, 0.6],
     [0.2, 0.3, 0.9], [0.9, 0.2, 0.4]]
Y = [0, 0, 1, 1, 2, 2]
BANK_T = [[0.7, 0.7, 0.1], [0.0, 0.3, 1.0], [1.0, 0.0, 0.2]]
BANK_Y = [1, 2, 0]


def unit(v):
    n = math.sqrt(sum(a * a for a in v))
    return [a / n for a in v]


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def reference(student, teacher, labels, relation='cross', distance='l2',
              weighting='relation_aware', num_negatives=None, temperature=0.1,
              weight_temperature=0.1, beta=0.1, exclude_self=True, bank_t=(), bank_y=()):
    """RAD with explicit loops; ``student`` a B x D tensor (for autograd), the rest lists."""
    s = [student[i] / student[i].norm() for i in range(len(labels))]
    t = [unit(v) for v in teacher] + [unit(v) for v in bank_t]
    py = list(labels) + list(bank_y)
    num, den, kls = 0.0, 0.0, []
    for i in range(len(labels)):
        r_t = {j: dot(t[i], t[j]) for j in range(len(py))}

        def r_s(j):
            partner = t[j] if relation == 'cross' else s[j]
            return sum(s[i][d] * partner[d] for d in range(len(t[i])))

        pos = [j for j in range(len(py)) if py[j] == labels[i] and (j != i or not exclude_self)]
        neg = sorted((j for j in range(len(py)) if py[j] != labels[i]), key=lambda j: -r_t[j])
        if num_negatives is not None:
            neg = neg[:num_negatives]
        omega = pos + neg
        if distance == 'kl':
            if not omega:
                continue
            zt = sum(math.exp(r_t[j] / temperature) for j in omega)
            zs = sum(torch.exp(r_s(j) / temperature) for j in omega)
            kl = 0.0
            for j in omega:
                p = math.exp(r_t[j] / temperature) / zt
                q = torch.exp(r_s(j) / temperature) / zs
                kl = kl + p * (math.log(p) - torch.log(q))
            kls.append(kl * temperature ** 2)
            continue
        weights = {j: 1.0 for j in pos}
        z = sum(math.exp(r_t[j] / weight_temperature) for j in neg)
        for j in neg:
            weights[j] = (1.0 if weighting == 'uniform'
                          else len(neg) * math.exp(r_t[j] / weight_temperature) / z)
        for j, w in weights.items():
            diff = r_s(j) - r_t[j]
            if distance == 'l2':
                d = diff ** 2
            elif distance == 'l1':
                d = diff.abs()
            else:
                d = 0.5 * diff ** 2 / beta if diff.abs() < beta else diff.abs() - 0.5 * beta
            num, den = num + w * d, den + w
    if distance == 'kl':
        return sum(kls) / len(kls)
    return num / den


def student_tensor(values=S):
    return torch.tensor(values, dtype=torch.float64, requires_grad=True)


def run(loss, student, teacher=T, labels=Y, **kw):
    return loss(student, torch.tensor(teacher, dtype=torch.float64), torch.tensor(labels), **kw)


VARIANTS = list(itertools.product(['cross', 'student'], ['l2', 'l1', 'smooth_l1', 'kl'],
                                  ['uniform', 'relation_aware'], [None, 1, 3]))


@pytest.mark.parametrize('relation,distance,weighting,num_negatives', VARIANTS)
def test_matches_hand_computation(relation, distance, weighting, num_negatives):
    cfg = dict(relation=relation, distance=distance, weighting=weighting,
               num_negatives=num_negatives, temperature=0.5, weight_temperature=0.2, beta=0.05)
    s_ref, s = student_tensor(), student_tensor()
    expected = reference(s_ref, T, Y, **cfg)
    loss = run(RelationAwareDistillationLoss(**cfg, loss_weight=2.0), s)
    assert loss.item() == pytest.approx(2.0 * expected.item(), rel=1e-10, abs=1e-12)
    # Same gradient: the weights (and the teacher side) are constants.
    (2.0 * expected).backward()
    loss.backward()
    torch.testing.assert_close(s.grad, s_ref.grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('relation', ['cross', 'student'])
def test_exclude_self_false_adds_the_self_pair(relation):
    cfg = dict(relation=relation, distance='l2', num_negatives=2, weight_temperature=0.3)
    s = student_tensor()
    with_self = run(RelationAwareDistillationLoss(exclude_self=False, **cfg), s)
    expected = reference(student_tensor(), T, Y, exclude_self=False, **cfg)
    assert with_self.item() == pytest.approx(expected.item(), rel=1e-10)
    assert with_self.item() != pytest.approx(
        run(RelationAwareDistillationLoss(**cfg), s).item(), rel=1e-3)


def test_kl_equals_formula_on_one_anchor():
    # Anchor 0 alone with one positive (1) and all negatives: the KL of the softmaxed rows.
    temp = 0.5
    s = student_tensor(S[:1] + S[1:])
    loss = RelationAwareDistillationLoss(relation='cross', distance='kl', num_negatives=None,
                                         temperature=temp)
    t = torch.nn.functional.normalize(torch.tensor(T, dtype=torch.float64), dim=1)
    sn = torch.nn.functional.normalize(s.detach(), dim=1)
    p = torch.softmax(t[0] @ t[1:].t() / temp, dim=0)
    q = torch.softmax(sn[0] @ t[1:].t() / temp, dim=0)
    kl0 = (p * (p.log() - q.log())).sum() * temp ** 2
    # Every anchor has Ω = all other samples here: the loss is the mean of such rows.
    rows = []
    for i in range(6):
        others = [j for j in range(6) if j != i]
        p = torch.softmax(t[i] @ t[others].t() / temp, dim=0)
        q = torch.softmax(sn[i] @ t[others].t() / temp, dim=0)
        rows.append((p * (p.log() - q.log())).sum() * temp ** 2)
    assert rows[0].item() == pytest.approx(kl0.item(), rel=1e-12)
    assert run(loss, s).item() == pytest.approx(torch.stack(rows).mean().item(), rel=1e-10)


@pytest.mark.parametrize('relation,distance,weighting,num_negatives', VARIANTS)
def test_zero_when_student_equals_teacher_positive_otherwise(relation, distance, weighting,
                                                             num_negatives):
    loss = RelationAwareDistillationLoss(relation=relation, distance=distance,
                                         weighting=weighting, num_negatives=num_negatives)
    assert run(loss, student_tensor(T)).item() == pytest.approx(0.0, abs=1e-12)
    assert run(loss, student_tensor()).item() > 1e-4


@pytest.mark.parametrize('cfg', [dict(), dict(relation='cross', distance='l2'),
                                 dict(relation='cross', distance='kl'),
                                 dict(relation='student', distance='smooth_l1'),
                                 dict(relation='cross', distance='l1', weighting='uniform',
                                      num_negatives=None)])
def test_sgd_step_moves_student_relations_toward_teacher(cfg):
    loss_fn = RelationAwareDistillationLoss(**cfg)
    s = student_tensor()
    teacher = torch.tensor(T, dtype=torch.float64, requires_grad=True)
    before = loss_fn(s, teacher, torch.tensor(Y))
    before.backward()
    assert teacher.grad is None  # the teacher is detached
    with torch.no_grad():
        stepped = s - 0.05 * s.grad
    after = loss_fn(stepped, teacher, torch.tensor(Y))
    assert after.item() < before.item()


def test_bank_partners_are_included():
    cfg = dict(relation='cross', distance='l2', num_negatives=3, weight_temperature=0.2)
    s = student_tensor()
    bank_t = torch.tensor(BANK_T, dtype=torch.float64)
    with_bank = run(RelationAwareDistillationLoss(**cfg), s, bank_teacher=bank_t,
                    bank_labels=torch.tensor(BANK_Y))
    expected = reference(student_tensor(), T, Y, bank_t=BANK_T, bank_y=BANK_Y, **cfg)
    assert with_bank.item() == pytest.approx(expected.item(), rel=1e-10)
    without = run(RelationAwareDistillationLoss(**cfg), s)
    assert with_bank.item() != pytest.approx(without.item(), rel=1e-3)
    kl = RelationAwareDistillationLoss(relation='cross', distance='kl', num_negatives=None,
                                       temperature=0.5)
    expected_kl = reference(student_tensor(), T, Y, distance='kl', temperature=0.5,
                            bank_t=BANK_T, bank_y=BANK_Y)
    assert run(kl, s, bank_teacher=bank_t, bank_labels=torch.tensor(BANK_Y)).item() == \
        pytest.approx(expected_kl.item(), rel=1e-10)


def test_bank_errors():
    s, bank_t = student_tensor(), torch.tensor(BANK_T, dtype=torch.float64)
    with pytest.raises(ValueError, match="relation='cross'"):
        run(RelationAwareDistillationLoss(relation='student'), s, bank_teacher=bank_t,
            bank_labels=torch.tensor(BANK_Y))
    with pytest.raises(ValueError, match='together'):
        run(RelationAwareDistillationLoss(relation='cross'), s, bank_teacher=bank_t)
    with pytest.raises(ValueError, match='bank_teacher must be M x 3'):
        run(RelationAwareDistillationLoss(relation='cross'), s, bank_teacher=bank_t[:, :2],
            bank_labels=torch.tensor(BANK_Y))


def test_no_informative_pair_gives_zero_with_gradient():
    loss = RelationAwareDistillationLoss(relation='cross', distance='l2', num_negatives=0)
    s = student_tensor(S[:2])
    value = run(loss, s, T[:2], [0, 1])  # no positive, no negative kept
    value.backward()
    assert value.item() == 0.0 and torch.equal(s.grad, torch.zeros_like(s))
    kl = run(RelationAwareDistillationLoss(distance='kl', num_negatives=0), student_tensor(S[:2]),
             T[:2], [0, 1])
    assert kl.item() == 0.0


def test_hardest_negatives_picks_highest_teacher_similarity():
    r_t = torch.tensor([[0.9, 0.1, 0.5, 0.7], [0.2, 0.3, 0.4, 0.1]])
    neg = torch.tensor([[False, True, True, True], [True, True, False, False]])
    picked = hardest_negatives(r_t, neg, 2)
    assert picked.tolist() == [[False, False, True, True], [True, True, False, False]]
    assert torch.equal(hardest_negatives(r_t, neg, None), neg)
    assert hardest_negatives(r_t, neg, 3)[1].tolist() == [True, True, False, False]


class _MaxNumel(TorchFunctionMode):
    """Record the largest tensor any torch op returns."""

    def __init__(self):
        super().__init__()
        self.max_numel, self.shape = 0, None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for o in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(o, torch.Tensor) and o.numel() > self.max_numel:
                self.max_numel, self.shape = o.numel(), tuple(o.shape)
        return out


@pytest.mark.parametrize('relation', ['cross', 'student'])
@pytest.mark.parametrize('distance', ['l2', 'kl'])
def test_memory_is_local_by_global_never_global_squared(monkeypatch, relation, distance):
    """Simulate rank 3 of 300 (B_local=2, B_global=600): no op returns a B_global^2 tensor."""
    b_local, world, rank, dim = 2, 300, 3, 4
    gen = torch.Generator().manual_seed(0)
    global_t = torch.randn(world * b_local, dim, generator=gen)
    global_s = torch.randn(world * b_local, dim, generator=gen)
    global_y = torch.arange(world * b_local) // 3
    mine = slice(rank * b_local, (rank + 1) * b_local)

    global_t_n = torch.nn.functional.normalize(global_t, dim=1)
    global_s_n = torch.nn.functional.normalize(global_s, dim=1)

    def gather_no_grad(x):  # normalised teacher or labels of this rank -> all ranks
        if x.dtype.is_floating_point:
            torch.testing.assert_close(x, global_t_n[mine])
            return global_t_n
        assert torch.equal(x, global_y[mine])
        return global_y

    def gather_with_grad(x):  # normalised student of this rank, kept in the graph
        return torch.cat([global_s_n[:rank * b_local], x, global_s_n[(rank + 1) * b_local:]])

    monkeypatch.setattr(rad_module, 'all_gather_no_grad', gather_no_grad)
    monkeypatch.setattr(rad_module, 'all_gather_with_grad', gather_with_grad)
    monkeypatch.setattr(rad_module, 'get_dist_info', lambda: (rank, world))
    student = global_s[mine].clone().requires_grad_()
    loss_fn = RelationAwareDistillationLoss(relation=relation, distance=distance,
                                            num_negatives=None)
    with _MaxNumel() as mode:
        loss = loss_fn(student, global_t[mine], global_y[mine])
        loss.backward()
    n_global = world * b_local
    assert torch.isfinite(loss) and student.grad.abs().sum() > 0
    # The largest tensors are the gathered partners (N x D) or the B_local x N relations.
    assert mode.max_numel <= max(b_local * n_global, n_global * dim), mode.shape
    assert mode.max_numel < n_global ** 2 / 10


def test_registry_and_argument_checks():
    loss = MODELS.build(dict(type='RelationAwareDistillationLoss', distance='smooth_l1'))
    assert isinstance(loss, RelationAwareDistillationLoss)
    assert 'smooth_l1' in repr(loss)
    for bad in (dict(relation='both'), dict(distance='cos'), dict(weighting='soft'),
                dict(num_negatives=-1), dict(temperature=0), dict(weight_temperature=-1),
                dict(beta=0)):
        with pytest.raises(ValueError):
            RelationAwareDistillationLoss(**bad)
    with pytest.raises(ValueError, match='same shape'):
        RelationAwareDistillationLoss()(torch.randn(6, 4), torch.randn(6, 3), torch.tensor(Y))
    with pytest.raises(ValueError, match='labels'):
        RelationAwareDistillationLoss()(torch.randn(6, 3), torch.randn(6, 3), torch.tensor(Y[:5]))


def test_half_precision_inputs_compute_in_float32():
    s = torch.tensor(S, dtype=torch.bfloat16, requires_grad=True)
    loss = RelationAwareDistillationLoss()(s, torch.tensor(T, dtype=torch.bfloat16),
                                           torch.tensor(Y))
    assert loss.dtype == torch.float32
    loss.backward()
    assert s.grad.dtype == torch.bfloat16


def test_default_is_the_student_relation_kl_form():
    """``cross`` is FCD projected on the partners (test_relation_aware_cross_is_fcd.py): an
    ablation, never the default again."""
    loss = RelationAwareDistillationLoss()
    assert (loss.relation, loss.distance) == ('student', 'kl')
    s_ref, s = student_tensor(), student_tensor()
    expected = reference(s_ref, T, Y, relation='student', distance='kl', num_negatives=16)
    assert run(loss, s).item() == pytest.approx(expected.item(), rel=1e-10)
