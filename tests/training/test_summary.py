"""cs336lm.training.summary: a RunSummary survives write and read unchanged, and a malformed file, a file from another
version, a missing or unknown field and a value of the wrong type each fail naming the file and the field."""

from __future__ import annotations

import json
import math

import pytest

from cs336lm.experiments.selection import Outcome
from cs336lm.training.summary import SUMMARY_VERSION, SummaryError, finished, read_summary, write_summary
from tests.run_dirs import make_run


@pytest.fixture
def summary_file(tmp_path):
    return make_run(tmp_path / "run", lr=3e-3) / "summary.json"


def edited(path, change) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def test_round_trip_keeps_every_field(summary_file, tmp_path):
    summary = read_summary(summary_file)
    write_summary(tmp_path / "again.json", summary)
    assert read_summary(tmp_path / "again.json") == summary
    assert summary.config["optim"]["lr_max"] == 3e-3 and summary.parameters.non_embedding == 1000
    assert summary.implementation.attention == "sdpa" and summary.summary_version == SUMMARY_VERSION
    assert json.loads((tmp_path / "again.json").read_text())["dataset"] == {"name": "tinystories",
                                                                         "source": "test"}


def test_non_finite_numbers_are_written_as_null(summary_file, tmp_path):
    import dataclasses

    summary = dataclasses.replace(read_summary(summary_file), final_train_loss=math.nan, mfu=math.inf)
    write_summary(tmp_path / "s.json", summary)
    raw = json.loads((tmp_path / "s.json").read_text())
    assert raw["final_train_loss"] is None and raw["mfu"] is None


@pytest.mark.parametrize(("change", "message"), [
    (lambda raw: raw.pop("summary_version"), "has no summary_version, but this code reads summary_version 2"),
    (lambda raw: raw.update(summary_version=0), "has summary_version 0"),
    (lambda raw: raw.pop("final_val_tokens"), "missing final_val_tokens"),
    (lambda raw: raw.update(loss=1.0), "unknown loss"),
    (lambda raw: raw.update(steps="40"), "steps = '40' must be int, not str"),
    (lambda raw: raw.update(steps=True), "steps = True must be int, not bool"),
    (lambda raw: raw["parameters"].pop("total"), "missing parameters.total"),
    (lambda raw: raw.update(selected={"optim.lr_max": {"value": 1e-3}}), r"missing selected\.optim\.lr_max\.source"),
    (lambda raw: raw.update(implementation=[]), "implementation must be an object, not list"),
])
def test_a_bad_field_is_named_with_the_file(summary_file, change, message):
    edited(summary_file, change)
    with pytest.raises(SummaryError, match=rf"summary\.json.*{message}"):
        read_summary(summary_file)


def test_integers_are_read_as_floats_where_floats_are_expected(summary_file):
    edited(summary_file, lambda raw: raw.update(final_val_loss=2))
    assert read_summary(summary_file).final_val_loss == 2.0


def test_a_missing_or_malformed_file_says_what_to_do(tmp_path):
    with pytest.raises(SummaryError, match="does not exist: the run has not finished"):
        read_summary(tmp_path / "absent.json")
    (tmp_path / "torn.json").write_text('{"status": "ok", ')
    with pytest.raises(SummaryError, match=r"torn\.json is not a readable JSON file.*rerun the run"):
        read_summary(tmp_path / "torn.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(SummaryError, match=r"list\.json holds a list, not a run summary"):
        read_summary(tmp_path / "list.json")


def test_the_config_reads_typed(summary_file):
    summary = read_summary(summary_file)
    assert summary.run_config.optim.lr_max == 3e-3 == summary.config_value("optim.lr_max")
    assert summary.run_config.to_dict() == summary.config


def test_a_config_the_run_config_refuses_is_named_with_the_file(summary_file):
    edited(summary_file, lambda raw: raw["config"]["optim"].update(lr_min=1.0))
    with pytest.raises(SummaryError, match=r"summary\.json: config: optim\.lr_min = 1\.0 is above optim\.lr_max"):
        read_summary(summary_file)


@pytest.mark.parametrize(("status", "loss", "expected"), [
    ("ok", 2.0, True), ("diverged", 2.0, False), ("ok", None, False), ("ok", math.nan, False), ("ok", math.inf, False),
])
def test_finished_means_ok_with_a_finite_final_loss(summary_file, status, loss, expected):
    import dataclasses

    summary = dataclasses.replace(read_summary(summary_file), status=status, final_val_loss=loss)
    assert summary.finished is expected and finished(summary) is expected
    assert Outcome("v", 1e-3, status, loss, "").stable is expected, "a sweep's outcome uses the same predicate"


def _as_version_1(raw):
    raw.pop("instability")
    raw["summary_version"] = 1


def test_a_version_1_summary_is_judged_again_from_the_metrics_beside_it(summary_file):
    edited(summary_file, _as_version_1)
    assert read_summary(summary_file).status == "ok", "make_run's falling curve is stable"
    metrics = summary_file.parent / "metrics.jsonl"
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    lines[3]["train_loss"] = lines[0]["train_loss"] + 1.0  # rose above its start: the old rule called it ok
    metrics.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = read_summary(summary_file)
    assert summary.status == "unstable" and "above its first value" in summary.instability
    metrics.unlink()
    with pytest.raises(SummaryError, match="summary_version 1, which did not judge instability, and no metrics"):
        read_summary(summary_file)
