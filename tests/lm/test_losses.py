"""cs336lm.lm.losses against F.cross_entropy."""

import math

import pytest
import torch
import torch.nn.functional as F

from cs336lm.lm.losses import cross_entropy, perplexity


@pytest.mark.parametrize("scale", [1.0, 1000.0, 1e6])
def test_cross_entropy_matches_torch_at_huge_logits(scale):
    torch.manual_seed(0)
    logits, targets = torch.randn(8, 5) * scale, torch.randint(0, 5, (8,))
    loss = cross_entropy(logits, targets)
    assert loss.shape == () and torch.isfinite(loss)
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets), atol=1e-4, rtol=1e-4)


def test_cross_entropy_accepts_leading_dims_and_bf16():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 4, 7) * 5, torch.randint(0, 7, (2, 4))
    expected = F.cross_entropy(logits.view(-1, 7), targets.view(-1))
    torch.testing.assert_close(cross_entropy(logits, targets), expected)
    bf16 = cross_entropy(logits.bfloat16(), targets)
    assert bf16.dtype == torch.float32
    torch.testing.assert_close(bf16, F.cross_entropy(logits.bfloat16().float().view(-1, 7), targets.view(-1)))


def test_cross_entropy_gradient_matches_torch():
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 9, requires_grad=True), torch.randint(0, 9, (6,))
    (ours,) = torch.autograd.grad(cross_entropy(logits, targets), logits)
    (theirs,) = torch.autograd.grad(F.cross_entropy(logits, targets), logits)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_gradient_with_leading_dims_and_huge_logits(scale):
    torch.manual_seed(1)
    logits = (torch.randn(3, 5, 11) * scale).requires_grad_()
    targets = torch.randint(0, 11, (3, 5))
    (ours,) = torch.autograd.grad(cross_entropy(logits, targets) * 2.5, logits)
    (theirs,) = torch.autograd.grad(F.cross_entropy(logits.view(-1, 11), targets.view(-1)) * 2.5, logits)
    torch.testing.assert_close(ours, theirs)


def test_cross_entropy_gradcheck_and_bf16_gradient_dtype():
    logits = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 5, 2, 2])
    # the forward casts to float32, so compare the analytic gradient at float32 tolerances
    assert torch.autograd.gradcheck(lambda x: cross_entropy(x, targets).double(), (logits,), eps=1e-3, atol=1e-3)
    bf16 = torch.randn(4, 6, dtype=torch.bfloat16, requires_grad=True)
    cross_entropy(bf16, targets).backward()
    assert bf16.grad.dtype == torch.bfloat16


def test_cross_entropy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"logits of shape \(4, 6\) do not match targets of shape \(5,\)"):
        cross_entropy(torch.randn(4, 6), torch.zeros(5, dtype=torch.long))


def test_perplexity():
    assert perplexity(math.log(10.0)) == pytest.approx(10.0)
    assert perplexity(1e4) == math.inf
    torch.testing.assert_close(perplexity(torch.tensor(2.0)), torch.tensor(math.e**2))
