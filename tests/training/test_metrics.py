"""cs336lm.training.metrics: fixed-key JSONL lines flushed as they are logged, NaN as null, torn lines and truncation
for resumes, and the optional wandb mirror (faked here; wandb itself is not a test dependency)."""

from __future__ import annotations

import json
import logging
import sys
import types

import pytest

from cs336lm.training.metrics import KEYS, MetricsLogger, read_metrics, truncate_metrics


def record(step: int, **extra) -> dict:
    return {"step": step, "tokens": 128 * step, "elapsed_s": 0.1 * step, "job_s": 1.0 + 0.1 * step, "lr": 1e-3,
            "train_loss": 3.0, "grad_norm": 1.0, "tokens_per_s": 1e4, **extra}


def test_lines_are_flushed_as_logged_and_nan_is_null(tmp_path):
    path = tmp_path / "m.jsonl"
    logger = MetricsLogger(path)
    logger.log(record(1))
    assert json.loads(path.read_text()) == record(1), "readable before close: a kill -9 loses nothing logged"
    logger.log(record(2, train_loss=float("nan"), val_loss=2.5))
    logger.close()
    lines = read_metrics(path)
    assert lines[1]["train_loss"] is None and lines[1]["val_loss"] == 2.5
    assert set(lines[0]) == set(KEYS)


def test_missing_keys_are_rejected(tmp_path):
    with MetricsLogger(tmp_path / "m.jsonl") as logger, pytest.raises(ValueError, match="grad_norm"):
        logger.log({k: v for k, v in record(1).items() if k != "grad_norm"})


def test_torn_last_line_is_dropped_and_truncation_keeps_earlier_steps(tmp_path):
    path = tmp_path / "m.jsonl"
    with MetricsLogger(path) as logger:
        for step in (1, 10, 20, 30):
            logger.log(record(step))
    with open(path, "a") as f:
        f.write('{"step": 40, "tok')  # the process died mid-write
    assert [r["step"] for r in read_metrics(path)] == [1, 10, 20, 30]
    truncate_metrics(path, 20)
    assert [r["step"] for r in read_metrics(path)] == [1, 10, 20]
    with MetricsLogger(path) as logger:  # a resumed run appends
        logger.log(record(30))
    assert [r["step"] for r in read_metrics(path)] == [1, 10, 20, 30]


def test_wandb_mirrors_the_lines_when_requested(tmp_path, monkeypatch):
    calls = []
    run = types.SimpleNamespace(log=lambda data, step: calls.append((step, data)), finish=lambda: calls.append("end"))
    fake = types.SimpleNamespace(init=lambda **kw: calls.append(kw) or run)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with MetricsLogger(tmp_path / "m.jsonl", wandb_project="cs336", run_name="lr~0.001", config={"a": 1}) as logger:
        logger.log(record(10, val_loss=2.0))
    assert calls[0] == {"project": "cs336", "name": "lr~0.001", "config": {"a": 1}, "mode": "offline"}
    assert calls[1][0] == 10 and calls[1][1]["val_loss"] == 2.0 and "step" not in calls[1][1]
    assert calls[2] == "end"


def test_wandb_requested_but_absent_logs_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with caplog.at_level(logging.WARNING), MetricsLogger(tmp_path / "m.jsonl", wandb_project="cs336") as logger:
        logger.log(record(1))
    assert "wandb is not installed" in caplog.text
    assert len(read_metrics(tmp_path / "m.jsonl")) == 1
