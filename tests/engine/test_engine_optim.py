"""COURSE.md §1: v ← α v − (η/√t) g ; z ← z + v, t counted from 1, v starting at 0."""

import math

import pytest
import torch

from worker.engine.models import MLP
from worker.engine.optim import MomentumSGD, momentum_update, param_groups

# Hand case: F(z) = ½‖z‖², so g = z. z0 = (1, −2), η = 0.5, α = 0.9, η_t = η/√t.
# t=1: η_1 = 0.5          g = ( 1, −2)            v = (−0.5, 1.0)                z = (0.5, −1.0)
# t=2: η_2 = 0.35355339   g = ( 0.5, −1)          v = 0.9·v − η_2·g
#                                                   = (−0.45 − 0.17677670, 0.9 + 0.35355339)
#                                                   = (−0.62677670, 1.25355339)  z = (−0.12677670, 0.25355339)
# t=3: η_3 = 0.28867513   g = (−0.12677670, 0.25355339)
#                         v = (−0.56409903 + 0.03659726, 1.12819805 − 0.07319452)
#                           = (−0.52750177, 1.05500353)                    z = (−0.65427847, 1.30855692)
ETA, ALPHA = 0.5, 0.9
EXPECTED = [  # (t, η_t, v_t, z_t)
    (1, 0.5, (-0.5, 1.0), (0.5, -1.0)),
    (2, 0.35355339, (-0.62677670, 1.25355339), (-0.12677670, 0.25355339)),
    (3, 0.28867513, (-0.52750177, 1.05500353), (-0.65427847, 1.30855692)),
]


def test_pure_update_matches_hand_computation():
    z = torch.tensor([1.0, -2.0], dtype=torch.float64)
    v = torch.zeros(2, dtype=torch.float64)
    for t, eta_t, v_exp, z_exp in EXPECTED:
        assert ETA / math.sqrt(t) == pytest.approx(eta_t, abs=1e-8)
        z, v = momentum_update(z, v, g=z.clone(), lr=ETA / math.sqrt(t), alpha=ALPHA)
        assert v.tolist() == pytest.approx(v_exp, abs=1e-7)
        assert z.tolist() == pytest.approx(z_exp, abs=1e-7)


def test_optimizer_matches_hand_computation():
    z = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = MomentumSGD([z], lr=ETA, momentum=ALPHA)
    for t, _, v_exp, z_exp in EXPECTED:
        opt.set_lr(ETA / math.sqrt(t))
        opt.zero_grad()
        (0.5 * (z * z).sum()).backward()  # g = z
        opt.step()
        assert opt.state[z]["velocity"].tolist() == pytest.approx(v_exp, abs=1e-7)
        assert z.detach().tolist() == pytest.approx(z_exp, abs=1e-7)


def test_minus_sign_descends():
    # The slide's v ← αv + ηg would climb; the course's update must lower the loss.
    z = torch.nn.Parameter(torch.tensor([3.0]))
    opt = MomentumSGD([z], lr=0.1, momentum=0.5)
    for _ in range(20):
        opt.zero_grad()
        (z * z).sum().backward()
        opt.step()
    assert abs(z.item()) < 0.5


def test_same_trajectory_as_torch_sgd_at_constant_rate():
    # With η constant, v = −η·b where b is torch.optim.SGD's momentum buffer: same z.
    torch.manual_seed(0)
    a, b = MLP(5, [7], 3), MLP(5, [7], 3)
    b.load_state_dict(a.state_dict())
    ours = MomentumSGD(param_groups(a), lr=0.05, momentum=0.9)
    ref = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9, foreach=True)
    X, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    for _ in range(10):
        for model, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_groups_separate_weights_from_biases_and_keep_their_own_rate():
    model = MLP(4, [3], 2)
    groups = param_groups(model)
    assert [g["kind"] for g in groups] == ["weights", "biases"]
    assert all(p.ndim == 2 for p in groups[0]["params"])
    assert all(p.ndim == 1 for p in groups[1]["params"])

    opt = MomentumSGD(groups, lr=0.1, momentum=0.0)
    opt.param_groups[1]["lr"] = 0.0  # biases frozen
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model(torch.randn(8, 4)).sum().backward()
    opt.step()
    for n, p in model.named_parameters():
        changed = not torch.equal(before[n], p)
        assert changed == n.endswith("weight"), n
