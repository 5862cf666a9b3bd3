"""cs336lm.lm.optim against torch.optim.AdamW, torch's clip_grad_norm_, and the course's schedule values."""

import io

import pytest
import torch

from cs336lm.lm.optim import AdamW, clip_grad_norm, lr_cosine_schedule


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _train(model, optimizer, steps=20):
    torch.manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 6)
        loss = (model(x) - x[:, :3]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@pytest.mark.parametrize(
    "hyper",
    [dict(lr=1e-2, betas=(0.9, 0.95), weight_decay=0.0), dict(lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01)],
    ids=["no-decay", "course"],
)
def test_adamw_matches_torch_adamw_over_20_steps(hyper):
    # The handout decays after the Adam update, torch before it: they differ by O(lr² · weight_decay) per step,
    # which the course's hyperparameters keep below 1e-8 (the by-hand test below pins the handout's order).
    ours, theirs = _model(), _model()
    _train(ours, AdamW(ours.parameters(), **hyper))
    _train(theirs, torch.optim.AdamW(theirs.parameters(), **hyper))
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_adamw_follows_the_handout_algorithm_by_hand():
    lr, (b1, b2), eps, wd = 0.1, (0.9, 0.99), 1e-8, 0.5
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = AdamW([theta], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    expected, m, v = theta.detach().clone(), torch.zeros(2), torch.zeros(2)
    for t, g in enumerate([torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.25])], start=1):
        theta.grad = g
        optimizer.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        alpha = lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
        expected = expected - alpha * m / (v.sqrt() + eps)
        expected = expected - lr * wd * expected
        torch.testing.assert_close(theta.detach(), expected)


def test_adamw_foreach_equals_loop_and_skips_params_without_grad():
    loop, multi = _model(), _model()
    loop[2].bias.requires_grad_(False)
    multi[2].bias.requires_grad_(False)
    opt_loop, opt_multi = AdamW(loop.parameters(), lr=1e-2), AdamW(multi.parameters(), lr=1e-2, foreach=True)
    _train(loop, opt_loop)
    _train(multi, opt_multi)
    for p, q in zip(loop.parameters(), multi.parameters(), strict=True):
        assert torch.equal(p, q)
    assert loop[2].bias not in opt_loop.state
    assert opt_multi.state[multi[0].weight]["step"] == 20


def test_adamw_state_dict_round_trips_through_weights_only_load():
    model = _model()
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    _train(model, optimizer, steps=3)
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    restored = AdamW(_model().parameters())
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert restored.param_groups[0]["lr"] == 3e-3 and restored.param_groups[0]["weight_decay"] == 0.05
    for p, q in zip(model.parameters(), restored.param_groups[0]["params"], strict=True):
        assert restored.state[q]["step"] == 3
        assert torch.equal(restored.state[q]["exp_avg_sq"], optimizer.state[p]["exp_avg_sq"])


def test_adamw_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match=r"betas = \(0.9, 1.0\)"):
        AdamW(_model().parameters(), betas=(0.9, 1.0))


def test_cosine_schedule_matches_course_values():
    expected = [
        0, 0.14285714285714285, 0.2857142857142857, 0.42857142857142855, 0.5714285714285714, 0.7142857142857143,
        0.8571428571428571, 1.0, 0.9887175604818206, 0.9554359905560885, 0.9018241671106134, 0.8305704108364301,
        0.7452476826029011, 0.6501344202803414, 0.55, 0.44986557971965857, 0.3547523173970989,
        0.26942958916356996, 0.19817583288938662, 0.14456400944391146, 0.11128243951817937, 0.1, 0.1, 0.1, 0.1,
    ]
    got = [lr_cosine_schedule(it, 1.0, 0.1, 7, 21) for it in range(25)]
    assert got == pytest.approx(expected, rel=1e-7)
    assert lr_cosine_schedule(7, 1.0, 0.1, 7, 21) == 1.0  # warmup end is the max
    assert lr_cosine_schedule(21, 1.0, 0.1, 7, 21) == pytest.approx(0.1)  # cosine end is the min


@pytest.mark.parametrize("max_norm", [1e-2, 1e4])
def test_clip_grad_norm_matches_torch_with_a_frozen_param(max_norm):
    ours, theirs = _model(), _model()
    for model in (ours, theirs):
        model[0].bias.requires_grad_(False)
        model(torch.ones(4, 6)).square().sum().mul(10).backward()
    norm = clip_grad_norm((p for p in ours.parameters()), max_norm)  # a one-shot generator
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
    assert norm.shape == () and norm.item() == pytest.approx(expected.item(), rel=1e-6)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-6)


def test_clip_grad_norm_without_grads_is_zero():
    assert clip_grad_norm(_model().parameters(), 1.0) == 0.0
