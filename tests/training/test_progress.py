"""The end of a run loses nothing: a failure injected at each step of the finish (the final validation, the final
checkpoint, each declared output, each removal of progress files), then Snakemake's cleanup of the declared
outputs and a rerun, gives the metrics, model and summary of an uninterrupted run."""

from __future__ import annotations

import pytest
import torch

import cs336lm.training.progress as P
import cs336lm.training.train as T
from cs336lm.training.checkpoint import read_checkpoint
from cs336lm.training.metrics import read_metrics
from cs336lm.training.train import train
from tests.helpers import TIMING_KEYS, make_corpus, outputs, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

OVERRIDES = {"train.token_budget": 8 * 16 * 60, "train.checkpoint_interval": 20}
RESULT_FIELDS = ("status", "stopped_early", "final_val_loss", "final_val_tokens", "best_val_loss", "final_train_loss",
                 "steps", "tokens", "config")


class Injected(RuntimeError):
    """Stands for a kill between two steps of the finish (each step is atomic, so a kill inside one is the same)."""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    corpus = make_corpus(root / "data")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    summary = train(tiny_config(**OVERRIDES), *corpus, **outputs(root / "run"))
    torch.set_num_threads(threads)
    return corpus, root / "run", summary


def fail_once(monkeypatch, module, name: str, when=lambda *a, **k: True) -> None:
    original = getattr(module, name)

    def failing(*args, **kwargs):
        if when(*args, **kwargs):
            monkeypatch.setattr(module, name, original)
            raise Injected(f"injected failure in {name}")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)


FAULTS = {
    "final checkpoint": (P.Progress, "save", lambda self, cfg, model, opt, state, *a: state.status is not None),
    "final validation": (T, "split_loss", lambda *a: True),
    "model.pt": (P, "write_model", lambda *a: True),
    "metrics.jsonl": (P, "write_metrics", lambda *a: True),
    "summary.json": (P, "write_summary", lambda *a: True),
    "removing the checkpoint": (P, "discard_checkpoint", lambda *a: True),
    "removing the partial metrics": (P, "discard_partial_metrics", lambda *a: True),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failure_anywhere_in_the_finish_loses_nothing(tmp_path, monkeypatch, uninterrupted, fault):
    corpus, reference_run, reference = uninterrupted
    run = tmp_path / "run"
    module, name, when = FAULTS[fault]
    with monkeypatch.context() as m:
        fail_once(m, module, name, when)
        with pytest.raises(Injected):
            train(tiny_config(**OVERRIDES), *corpus, **outputs(run))
    for path in outputs(run).values():  # Snakemake deletes a failed job's declared outputs
        path.unlink(missing_ok=True)

    summary = train(tiny_config(**OVERRIDES), *corpus, **outputs(run))
    assert [getattr(summary, f) for f in RESULT_FIELDS] == [getattr(reference, f) for f in RESULT_FIELDS]
    untimed = [[{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in read_metrics(d / "metrics.jsonl")]
               for d in (run, reference_run)]
    assert untimed[0] == untimed[1]
    got, want = (read_checkpoint(d / "model.pt")["model"] for d in (run, reference_run))
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert not (run / "progress").exists()


def test_a_rerun_of_a_finished_checkpoint_only_writes_the_outputs(tmp_path, monkeypatch, uninterrupted, caplog):
    corpus, _, reference = uninterrupted
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        fail_once(m, P, "write_model")
        with pytest.raises(Injected):
            train(tiny_config(**OVERRIDES), *corpus, **outputs(run))
    work = []
    step, split_loss = T.TrainStep.__call__, T.split_loss
    monkeypatch.setattr(T.TrainStep, "__call__", lambda *a, **k: (work.append("step"), step(*a, **k))[1])
    monkeypatch.setattr(T, "split_loss", lambda *a: (work.append("validation"), split_loss(*a))[1])
    caplog.set_level("INFO")
    summary = train(tiny_config(**OVERRIDES), *corpus, **outputs(run))
    assert work == [] and "training had ended (ok)" in caplog.text
    assert summary.wall_time_s > 0 and summary.final_val_loss == reference.final_val_loss
