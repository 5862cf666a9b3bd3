"""Each fast path (cs336lm.training.implementation) against the from-scratch reference: SDPA attention,
torch.compile, bf16 autocast, foreach and fused AdamW; checkpoints move between paths because parameter names are
the same."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cs336lm.lm.losses import cross_entropy
from cs336lm.lm.model import TransformerLM
from cs336lm.training.checkpoint import load_checkpoint, save_checkpoint
from cs336lm.training.metrics import read_metrics
from cs336lm.training.step import TrainStep
from cs336lm.training.train import train
from tests.helpers import CPU, assert_grads_close, batch, make_corpus, needs_cuda, outputs, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

def twin_models(variant: dict | None = None, **fast: object) -> tuple[TransformerLM, TransformerLM]:
    """A reference model and a model with the `fast` overrides holding the same weights."""
    variant = variant or {}
    torch.manual_seed(0)
    reference = TransformerLM(tiny_config(**variant).model)
    fast_model = TransformerLM(tiny_config(**variant, **fast).model)
    fast_model.load_state_dict(reference.state_dict())  # strict: the parameter names are the same
    return reference, fast_model


def loss_and_grads(model, x, y, forward=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = cross_entropy((model if forward is None else forward)(x), y)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("variant", [{}, {"model.pos_emb": "none"}, {"model.norm_position": "post"}])
def test_sdpa_attention_matches_reference(variant):
    reference, fast = twin_models(variant, **{"model.attention_backend": "sdpa"})
    x, y = batch(tiny_config())
    torch.testing.assert_close(fast(x), reference(x), atol=1e-5, rtol=1e-5)
    loss_ref, grads_ref = loss_and_grads(reference, x, y)
    loss_fast, grads_fast = loss_and_grads(fast, x, y)
    torch.testing.assert_close(loss_fast, loss_ref, atol=1e-6, rtol=1e-6)
    assert_grads_close(grads_fast, grads_ref, atol=1e-5, rtol=1e-4)


def test_checkpoint_of_the_fast_path_loads_into_the_reference_path(tmp_path):
    cfg_fast = tiny_config(**{"model.attention_backend": "sdpa", "optim.implementation": "foreach"})
    torch.manual_seed(0)
    fast = TransformerLM(cfg_fast.model)
    step = TrainStep(fast, cfg_fast, CPU)
    step(*batch(cfg_fast), lr=1e-3)
    save_checkpoint(torch.compile(fast), step.optimizer, 1, tmp_path / "ckpt.pt", config=cfg_fast.to_dict())
    cfg_ref = tiny_config()
    reference = TransformerLM(cfg_ref.model)
    assert load_checkpoint(tmp_path / "ckpt.pt", reference, TrainStep(reference, cfg_ref, CPU).optimizer) == 1
    x, _ = batch(cfg_ref, seed=1)
    torch.testing.assert_close(reference(x), fast(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("implementation", "atol"), [("foreach", 1e-7), ("fused", 1e-6)])
def test_adamw_implementations_match_the_reference(implementation, atol):
    runs = {}
    for impl in ("reference", implementation):
        # torch adds eps after the bias correction, Algorithm 1 before it: a tiny eps makes the two agree.
        cfg = tiny_config(**{"optim.implementation": impl, "optim.eps": 1e-12})
        torch.manual_seed(0)
        model = TransformerLM(cfg.model)
        step = TrainStep(model, cfg, CPU)
        losses = [step(*batch(cfg, seed=i), lr=1e-3)[0] for i in range(5)]
        runs[impl] = (torch.stack(losses), dict(model.named_parameters()))
    torch.testing.assert_close(runs[implementation][0], runs["reference"][0], atol=atol, rtol=1e-5)
    assert_grads_close(runs[implementation][1], runs["reference"][1], atol=atol, rtol=0)


@pytest.mark.parametrize(("saved", "loaded"), [("reference", "fused"), ("fused", "foreach")])
def test_adamw_state_moves_between_implementations(tmp_path, saved, loaded):
    """A checkpoint's moments and step count carry over: the next step equals continuing on the saved path."""
    cfgs = {impl: tiny_config(**{"optim.implementation": impl, "optim.eps": 1e-12}) for impl in (saved, loaded)}
    torch.manual_seed(0)
    model = TransformerLM(cfgs[saved].model)
    step = TrainStep(model, cfgs[saved], CPU)
    for i in range(3):
        step(*batch(cfgs[saved], seed=i), lr=1e-3)
    save_checkpoint(model, step.optimizer, 3, tmp_path / "ckpt.pt")
    other = TransformerLM(cfgs[loaded].model)
    other_step = TrainStep(other, cfgs[loaded], CPU)
    assert load_checkpoint(tmp_path / "ckpt.pt", other, other_step.optimizer) == 3
    assert other_step.optimizer.param_groups[0].get("fused", None) == (True if loaded == "fused" else None)
    step(*batch(cfgs[saved], seed=3), lr=1e-3)
    other_step(*batch(cfgs[loaded], seed=3), lr=1e-3)
    assert_grads_close(dict(other.named_parameters()), dict(model.named_parameters()), atol=1e-6, rtol=0)


def test_bf16_autocast_is_close_to_float32():
    cfg32, cfg16 = tiny_config(), tiny_config(**{"train.dtype": "bfloat16"})
    torch.manual_seed(0)
    model = TransformerLM(cfg32.model)
    x, y = batch(cfg32)
    loss32, grads32 = loss_and_grads(model, x, y, forward=None)
    step16 = TrainStep(model, cfg16, CPU)
    model.zero_grad()
    loss16 = step16.loss(x, y)
    loss16.backward()
    assert loss16.dtype == torch.float32, "the loss is computed in float32 from bf16 logits"
    torch.testing.assert_close(loss16.detach(), loss32, atol=0, rtol=1e-2)
    for name, p in model.named_parameters():
        cos = F.cosine_similarity(p.grad.flatten(), grads32[name].flatten(), dim=0)
        assert cos > 0.99, f"{name}: bf16 gradient cosine similarity {cos:.4f}"


def test_model_compiles_to_one_graph_matching_eager():
    # aot_eager traces forward and backward as inductor would, without its C++ build (about a minute on CPU).
    torch.manual_seed(0)
    model = TransformerLM(tiny_config(**{"model.attention_backend": "sdpa"}).model)
    x, y = batch(tiny_config())
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    loss_c, grads_c = loss_and_grads(model, x, y, forward=compiled)
    loss_e, grads_e = loss_and_grads(model, x, y)
    torch.testing.assert_close(loss_c, loss_e, atol=1e-6, rtol=1e-6)
    assert_grads_close(grads_c, grads_e, atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_inductor_compiled_train_step_matches_eager():
    losses = {}
    for compiled in (False, True):
        cfg = tiny_config(**{"train.compile": compiled, "model.attention_backend": "sdpa"})
        torch.manual_seed(0)
        step = TrainStep(TransformerLM(cfg.model), cfg, CPU)
        losses[compiled] = torch.stack([step(*batch(cfg, seed=i), lr=1e-3)[0] for i in range(3)])
    torch.testing.assert_close(losses[True], losses[False], atol=1e-5, rtol=1e-5)


def test_training_with_every_cpu_fast_path_learns(tmp_path):
    cfg = tiny_config(**{"model.attention_backend": "sdpa", "optim.implementation": "fused",
                         "train.dtype": "bfloat16"})
    summary = train(cfg, *make_corpus(tmp_path / "data"), **outputs(tmp_path / "run"))
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert summary.status == "ok" and records[-1]["val_loss"] < 1.7


@pytest.mark.gpu
@needs_cuda
def test_cuda_fast_paths_match_the_reference():
    cuda = torch.device("cuda")
    fast_cfg = tiny_config(**{"model.attention_backend": "sdpa", "train.dtype": "bfloat16", "train.compile": True,
                              "optim.implementation": "fused", "train.device": "cuda"})
    reference, fast = (m.to(cuda) for m in twin_models(**{"model.attention_backend": "sdpa"}))
    ref_step, fast_step = TrainStep(reference, tiny_config(), cuda), TrainStep(fast, fast_cfg, cuda)
    for i in range(5):
        x, y = batch(fast_cfg, seed=i, device=cuda)
        loss_ref, _ = ref_step(x, y, lr=1e-3)
        loss_fast, _ = fast_step(x, y, lr=1e-3)
        torch.testing.assert_close(loss_fast, loss_ref, atol=0, rtol=2e-2)
