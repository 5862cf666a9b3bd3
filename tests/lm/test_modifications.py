"""The §7.5 modifications, each forward and backward against torch built-ins or a hand computation: the tied LM
head, QK-norm (both attention backends, and decoding), the ReLU² FFN, logit soft-capping and the z-loss; their
parameter and FLOP accounting; and checkpoints that name a tied/untied mismatch."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from cs336lm.config import ModelConfig
from cs336lm.lm import accounting
from cs336lm.lm.attention import KVCache, MultiHeadSelfAttention, RotaryPositionalEmbedding
from cs336lm.lm.layers import ReLUSquaredFeedForward
from cs336lm.lm.losses import cross_entropy
from cs336lm.lm.model import TransformerLM, count_parameters, softcap
from cs336lm.training.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint

TINY = dict(vocab_size=50, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=64)
EVERY_MODIFICATION = dict(head="tied", qk_norm="rmsnorm", ffn="relu2", logit_softcap=5.0)


def grads(module: torch.nn.Module, *inputs: torch.Tensor) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()] + [t.grad.clone() for t in inputs]


def test_relu2_ffn_matches_functional_composition_forward_and_backward():
    torch.manual_seed(0)
    ffn = ReLUSquaredFeedForward(16, 64)
    assert sorted(ffn.state_dict()) == ["w1.weight", "w2.weight"]
    x = torch.randn(3, 5, 16, requires_grad=True)
    ffn(x).pow(2).sum().backward()
    ours = grads(ffn, x)
    x.grad, w1, w2 = None, ffn.w1.weight.detach().requires_grad_(), ffn.w2.weight.detach().requires_grad_()
    F.linear(F.relu(F.linear(x, w1)) ** 2, w2).pow(2).sum().backward()
    for a, b in zip(ours, [w1.grad, w2.grad, x.grad], strict=True):
        torch.testing.assert_close(a, b)


def test_relu2_by_hand():
    ffn = ReLUSquaredFeedForward(1, 2)
    with torch.no_grad():
        ffn.w1.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        ffn.w2.weight.copy_(torch.tensor([[2.0, 3.0]]))
    x = torch.tensor([[-2.0], [3.0]], requires_grad=True)
    y = ffn(x)  # y = 2·relu(x)² + 3·relu(-x)²: x = -2 gives 3·2² = 12, x = 3 gives 2·3² = 18
    torch.testing.assert_close(y, torch.tensor([[12.0], [18.0]]))
    y.sum().backward()  # dy/dx = 4·relu(x) - 6·relu(-x): -12 at x = -2, 12 at x = 3
    torch.testing.assert_close(x.grad, torch.tensor([[-12.0], [12.0]]))


@pytest.mark.parametrize("backend", ["reference", "sdpa"])
@pytest.mark.parametrize("rope", [True, False])
def test_qk_norm_attention_matches_torch_rms_norm_and_sdpa(backend, rope):
    torch.manual_seed(0)
    d, h, T = 32, 4, 12
    hs = d // h
    table = RotaryPositionalEmbedding(10_000.0, hs, 16) if rope else None
    mha = MultiHeadSelfAttention(d, h, rope=table, backend=backend, qk_norm_eps=1e-5)
    assert sorted(n for n in mha.state_dict() if "norm" in n) == ["k_norm.weight", "q_norm.weight"]
    with torch.no_grad():  # gains other than 1, so a gain applied to the wrong tensor shows
        mha.q_norm.weight.uniform_(0.5, 1.5)
        mha.k_norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, T, d, requires_grad=True)
    mha(x).square().sum().backward()
    ours = grads(mha, x)

    params = {n: p.detach().clone().requires_grad_() for n, p in mha.named_parameters()}
    x.grad = None

    def heads(t):
        return t.view(2, T, h, hs).transpose(1, 2)

    q = F.rms_norm(heads(F.linear(x, params["q_proj.weight"])), (hs,), params["q_norm.weight"], eps=1e-5)
    k = F.rms_norm(heads(F.linear(x, params["k_proj.weight"])), (hs,), params["k_norm.weight"], eps=1e-5)
    if rope:
        q, k = table(q, torch.arange(T)), table(k, torch.arange(T))
    y = F.scaled_dot_product_attention(q, k, heads(F.linear(x, params["v_proj.weight"])), is_causal=True)
    F.linear(y.transpose(1, 2).reshape(2, T, d), params["output_proj.weight"]).square().sum().backward()
    expected = [params[n].grad for n, _ in mha.named_parameters()] + [x.grad]
    for a, b in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backend", ["reference", "sdpa"])
def test_qk_norm_model_decodes_with_a_kv_cache_like_a_full_forward(backend):
    torch.manual_seed(0)
    model = TransformerLM(ModelConfig(**TINY, qk_norm="rmsnorm", attention_backend=backend)).eval()
    ids = torch.randint(0, 50, (2, 10))
    caches = [KVCache() for _ in model.layers]
    stepwise = torch.cat([model(ids[:, :6], kv_caches=caches)] + [model(ids[:, i:i + 1], kv_caches=caches)
                                                                   for i in range(6, 10)], dim=1)
    torch.testing.assert_close(stepwise, model(ids), atol=1e-5, rtol=1e-5)


def test_tied_head_is_the_embedding_matrix_forward_and_backward():
    """The tied model equals an untied one whose embedding holds √d·E and whose head holds E; E's gradient is the
    sum of the head's and √d × the embedding's (the chain rule through both uses)."""
    torch.manual_seed(0)
    tied = TransformerLM(ModelConfig(**TINY, head="tied"))
    assert "lm_head.weight" not in tied.state_dict() and tied.lm_head is None
    untied = TransformerLM(ModelConfig(**TINY))
    E = tied.token_embeddings.weight
    state = {**tied.state_dict(), "token_embeddings.weight": E.detach() * math.sqrt(32),
             "lm_head.weight": E.detach().clone()}
    untied.load_state_dict(state)
    ids = torch.randint(0, 50, (2, 16))
    targets = torch.randint(0, 50, (2, 16))
    cross_entropy(tied(ids), targets).backward()
    cross_entropy(untied(ids), targets).backward()
    torch.testing.assert_close(tied(ids), untied(ids))
    expected = untied.lm_head.weight.grad + math.sqrt(32) * untied.token_embeddings.weight.grad
    torch.testing.assert_close(E.grad, expected)
    for name, p in tied.named_parameters():
        if name != "token_embeddings.weight":
            torch.testing.assert_close(p.grad, untied.get_parameter(name).grad)


def test_tied_matrix_is_initialised_for_both_uses():
    torch.manual_seed(0)
    d = 256
    tied = TransformerLM(ModelConfig(vocab_size=4000, context_length=16, d_model=d, num_layers=1, num_heads=4,
                                     d_ff=64, head="tied"))
    E = tied.token_embeddings.weight.detach()
    # N(0, 1/d) truncated at ±3σ (whose standard deviation is 0.987σ): unit-RMS features give unit-scale logits,
    # and √d·E, what the blocks see, has the untied embedding's N(0, 1) scale.
    assert E.abs().max() <= 3 / math.sqrt(d)
    assert abs(E.std().item() * math.sqrt(d) - 0.987) < 0.02
    features = F.rms_norm(torch.randn(500, d), (d,))
    assert abs((features @ E.T).std().item() - 0.987) < 0.03


def test_softcap_by_hand_forward_and_backward():
    x = torch.tensor([-100.0, -3.0, 0.0, 0.5, 3.0, 100.0], requires_grad=True)
    y = softcap(x, 3.0)
    torch.testing.assert_close(y, 3.0 * torch.tanh(x.detach() / 3.0))
    assert y.abs().max() <= 3.0 and abs(y[3].item() - 0.5) < 0.01  # nearly unchanged well below the cap
    torch.testing.assert_close(y[4], torch.tensor(3.0 * math.tanh(1.0)))
    y.sum().backward()
    torch.testing.assert_close(x.grad, 1 - torch.tanh(x.detach() / 3.0) ** 2)  # d/dx c·tanh(x/c)
    assert softcap(x.detach().bfloat16(), 3.0).dtype == torch.float32


def test_softcapped_model_caps_the_logits_of_the_same_weights():
    torch.manual_seed(0)
    capped = TransformerLM(ModelConfig(**TINY, logit_softcap=0.5))
    plain = TransformerLM(ModelConfig(**TINY))
    plain.load_state_dict(capped.state_dict())  # the cap adds no parameters
    ids = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(capped(ids), 0.5 * torch.tanh(plain(ids) / 0.5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("z", [1e-4, 0.3])
def test_z_loss_matches_torch_cross_entropy_plus_logsumexp_squared(dtype, z):
    torch.manual_seed(0)
    logits = (5 * torch.randn(4, 7, 50)).to(dtype).requires_grad_()
    targets = torch.randint(0, 50, (4, 7))
    ours = cross_entropy(logits, targets, z_loss=z)
    ours.backward()
    grad, logits.grad = logits.grad.clone(), None
    full = logits.float()
    expected = F.cross_entropy(full.flatten(0, 1), targets.flatten()) + z * torch.logsumexp(full, -1).square().mean()
    expected.backward()
    torch.testing.assert_close(ours, expected)
    assert grad.dtype == dtype
    torch.testing.assert_close(grad, logits.grad, **({} if dtype == torch.float32 else dict(atol=1e-3, rtol=1e-2)))


def test_z_loss_by_hand():
    # Two uniform rows of 4 logits 0: logsumexp = ln 4, so the loss is ln 4 + z·(ln 4)².
    logits = torch.zeros(2, 4, requires_grad=True)
    loss = cross_entropy(logits, torch.tensor([0, 3]), z_loss=0.5)
    torch.testing.assert_close(loss, torch.tensor(math.log(4) + 0.5 * math.log(4) ** 2))
    loss.backward()  # (softmax · (1 + 2z·lse) - one_hot) / N with softmax = 1/4, N = 2
    expected = torch.full((2, 4), (1 + math.log(4)) / 4 / 2)
    expected[0, 0] -= 0.5
    expected[1, 3] -= 0.5
    torch.testing.assert_close(logits.grad, expected)
    with pytest.raises(ValueError, match="z_loss = -1.0 must be >= 0"):
        cross_entropy(logits, torch.tensor([0, 3]), z_loss=-1.0)


VARIANTS = [{"head": "tied"}, {"qk_norm": "rmsnorm"}, {"ffn": "relu2", "d_ff": 120}, {"logit_softcap": 30.0},
            {**EVERY_MODIFICATION, "norm": "none"}]


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_counts_and_flops_follow_the_modifications(variant):
    config = ModelConfig(**{**TINY, "attention_backend": "reference", **variant})
    model = TransformerLM(config)
    assert accounting.parameter_counts(config)["total"] == count_parameters(model)["total"]
    with FlopCounterMode(display=False) as counter:
        model(torch.randint(0, 50, (3, 16)))
    assert accounting.forward_flops(config, batch_size=3)["total"] == counter.get_total_flops()


def test_modified_course_model_parameters_by_hand():
    V, d, L, d_ff, hs = 10_000, 512, 4, 2048, 32
    # Tied: one V × d matrix; QK-norm: a query and a key gain of head_dim per layer; ReLU²: two FFN matrices.
    by_hand = V * d + L * (4 * d * d + 2 * d * d_ff + 2 * d + 2 * hs) + d
    config = ModelConfig(head="tied", qk_norm="rmsnorm", ffn="relu2", d_ff=d_ff)
    assert accounting.parameter_counts(config)["total"] == by_hand == 17_707_776
    with torch.device("meta"):
        counts = count_parameters(TransformerLM(config))
    assert counts == {"total": by_hand, "non_embedding": by_hand}  # the tied matrix is the head: it stays in


def test_every_modification_round_trips_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    config = ModelConfig(**TINY, **EVERY_MODIFICATION)
    model = TransformerLM(config)
    save_checkpoint(model, None, 0, tmp_path / "model.pt", config={"model": dataclasses.asdict(config)})
    loaded, loaded_config = load_model(tmp_path / "model.pt")
    assert loaded_config == config
    ids = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(loaded(ids), model(ids), atol=0, rtol=0)
    with pytest.raises(CheckpointError, match="missing keys: lm_head.weight"):
        load_checkpoint(tmp_path / "model.pt", TransformerLM(ModelConfig(**TINY, qk_norm="rmsnorm", ffn="relu2")))
    save_checkpoint(TransformerLM(ModelConfig(**TINY)), None, 0, tmp_path / "untied.pt")
    with pytest.raises(CheckpointError, match="unexpected keys: lm_head.weight"):
        load_checkpoint(tmp_path / "untied.pt", TransformerLM(ModelConfig(**TINY, head="tied")))
