"""Training metrics as JSON Lines with fixed flat keys (handout §5.3 experiment logging).

Plots read only the JSONL file; Weights & Biases mirrors it when a project is given and `wandb` is installed
(offline by default, so runs on nodes without network still work; `wandb sync` uploads them later).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from cs336lm.atomic import atomic_write_text

log = logging.getLogger(__name__)

# elapsed_s: training time; job_s: the whole job's time (start-up, evaluation, checkpoints included). Plus val_loss
# on evaluations.
KEYS = ("step", "tokens", "elapsed_s", "job_s", "lr", "train_loss", "grad_norm", "tokens_per_s")


class MetricsLogger:
    """Appends one JSON object per call and flushes it, so a killed run loses at most the line being written."""

    def __init__(self, path: str | Path, *, wandb_project: str | None = None, run_name: str | None = None,
                 config: dict[str, Any] | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 -- held open for the run's lifetime
        self._wandb = _start_wandb(wandb_project, run_name, config) if wandb_project else None

    def log(self, record: dict[str, Any]) -> None:
        missing = [k for k in KEYS if k not in record]
        if missing:
            raise ValueError(f"metrics record lacks keys {missing}: {record}")
        self._file.write(json.dumps({k: _finite_or_none(v) for k, v in record.items()}) + "\n")
        self._file.flush()
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if k != "step"}, step=record["step"])

    def close(self) -> None:
        self._file.close()
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (the process died mid-write) is dropped."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return records


def truncate_metrics(path: str | Path, max_step: int) -> None:
    """Keep only records up to `max_step` (the resumed checkpoint), so a resumed run continues the curve exactly."""
    path = Path(path)
    if not path.exists():
        return
    kept = [r for r in read_metrics(path) if r["step"] <= max_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _finite_or_none(value: Any) -> Any:
    # JSON has no NaN/Infinity; a diverged step is recorded as null rather than as invalid JSON.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _start_wandb(project: str, run_name: str | None, config: dict[str, Any] | None):
    try:
        import wandb
    except ImportError:
        log.warning("wandb project %r requested but wandb is not installed; logging to JSONL only", project)
        return None
    mode = os.environ.get("WANDB_MODE", "offline")
    return wandb.init(project=project, name=run_name, config=config, mode=mode)
