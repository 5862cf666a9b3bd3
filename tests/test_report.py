"""cs336lm.report on hand-written run directories: figures are PNGs and tables have a row per run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cs336lm import report
from tests.run_dirs import make_runs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runs(tmp_path) -> dict[str, dict[str, Path]]:
    return make_runs(tmp_path / "runs")


@pytest.mark.parametrize("plot", ["plot_lr_sweep", "plot_batch_size", "plot_ablation", "plot_main",
                                  "plot_leaderboard"])
def test_plots_write_pngs(runs, tmp_path, plot):
    experiment = {"plot_lr_sweep": "lr_sweep", "plot_batch_size": "batch_size", "plot_ablation": "ablations",
                  "plot_main": "ts_main", "plot_leaderboard": "leaderboard"}[plot]
    out = tmp_path / "figures" / f"{plot}.png"
    getattr(report, plot)(runs[experiment], out)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_runs_table_has_one_row_per_run(runs, tmp_path):
    report.write_runs_table(runs, tmp_path / "runs.csv", tmp_path / "runs.md")
    table = pd.read_csv(tmp_path / "runs.csv")
    assert len(table) == sum(len(v) for v in runs.values())
    assert table.loc[table.variant == "lr_max~1", "status"].item() == "diverged"
    assert "| experiment" in (tmp_path / "runs.md").read_text()
