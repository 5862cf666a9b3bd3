"""The report registry and writeup on a hand-made results tree (tests/run_dirs.py): every deliverable has its
heading and answer, sentences follow the numbers, the reference column shows for course data and not for demo
data, figures are drawn, and a deliverable added to the registry appears without other edits."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from cs336lm.reporting import registry, writeup
from cs336lm.reporting.datasets import bits_per_byte, bytes_per_token
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.reference import NOT_COMPARABLE, Reference
from tests.run_dirs import REFERENCE, make_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> ReportInputs:
    """The results tree with every figure drawn, as course-scale data."""
    root = tmp_path_factory.mktemp("results")
    inputs = make_results(root, synthetic=False)
    files = dict(inputs.files)
    for name, figure in registry.all_figures().items():
        figure.plot(inputs, root / "figures" / f"{name}.png")
        files[f"figure/{name}"] = str(root / "figures" / f"{name}.png")
    return dataclasses.replace(inputs, files=files)


@pytest.fixture(scope="module")
def demo(course) -> ReportInputs:
    """The same tree, its corpora marked as the demo's synthetic text."""
    datasets = {d: {**spec, "synthetic": True, "source": "synthetic (demo)"} for d, spec in course.datasets.items()}
    return dataclasses.replace(course, datasets=datasets)


def render(inputs: ReportInputs) -> str:
    return writeup.render(inputs, inputs.results_root)


@pytest.fixture(scope="module")
def course_text(course) -> str:
    return render(course)


def section(text: str, name: str) -> str:
    start = text.index(f" `{name}`: ")
    end = text.find("\n## ", start)
    return text[start:end if end >= 0 else None]


def test_figures_are_pngs(course):
    for name in registry.all_figures():
        assert Path(course.files[f"figure/{name}"]).read_bytes()[:8] == PNG_MAGIC, name


def test_every_deliverable_is_answered_in_handout_order(course_text):
    positions = [course_text.index(writeup.heading(d)) for d in registry.DELIVERABLES]
    assert positions == sorted(positions)
    assert "Not run in this configuration" not in course_text
    assert "n/a" not in course_text.lower()
    for deliverable in registry.DELIVERABLES:
        body = section(course_text, deliverable.name)
        assert f"**Question.** {deliverable.question}" in body
        assert "_Read from: `" in body, deliverable.name
        for figure in deliverable.figures:
            assert f"(figures/{figure.name}.png)" in body, figure.name


def test_sentences_follow_the_numbers(course_text):
    lr = section(course_text, "learning_rate")
    assert "The best rate is 0.01, final validation loss 2." in lr
    assert "between 0.03 (largest stable) and 1 (smallest not stable), a bracket of 33.3×" in lr
    assert "becomes non-finite or exceeds 2 × its first logged value" in lr
    assert "a run that is not diverged is unstable when a logged training loss rose above the first one" in lr
    # The seed-repeated baseline (2.0 and 2.02) measures the noise: σ = 0.0141, resolution 2√2σ = 0.04.
    assert "Noise floor σ = 0.0141 nats" in lr and "here 0.04 nats" in lr
    assert "The nearest rate below, 0.001, ended 0.5 nats higher (0.5 nats against a resolution of 0.04 nats: " \
           "resolved)" in lr
    assert "The best TinyStories model here reaches 1.9: above the handout's target of 1.45" in lr
    log = section(course_text, "experiment_log")
    assert "the whole validation split of `tinystories` (4,096 tokens)" in log
    assert "| 30 / 0.1 min " in log and "| 0.1 / 0.1 min, resumed " in log
    assert "1 of 2 runs (`lr_sweep/lr_max~0.01`) used under half of the time they asked for" in log
    assert "killed (at its time limit, or preempted) or failed: `leaderboard/main`" in log
    batch = section(course_text, "batch_size_experiment")
    assert "The lowest final validation loss came from batch 4 (2.2)" in batch and "16× fewer steps" in batch
    assert "Throughput is not compared: the runs logged too few lines" in batch  # batch 64 logged two lines
    assert "The largest batch ended 0.4 nats above the best (0.4 nats against a resolution of 0.04 nats: " \
           "resolved)" in batch
    assert "Each batch size chose its learning rate from its own small sweep (3 rates" in batch
    assert "| 0.005 (2.5), 0.01 (2.5), **0.02** (2.4) |" in batch  # batch 4's rates, the chosen one in bold
    assert "For batch size 4 the chosen rate is the largest one tried" in batch
    assert "its range was not extended" in batch  # the planted selection has no rounds
    assert "For batch size 64 the chosen rate has tried rates on both sides: an interior optimum" in batch
    assert "selections/batch_size/batch_size~4.json" in batch  # named among the files read
    norm = section(course_text, "layer_norm_ablation")
    assert "`no_rmsnorm` at the baseline's rate diverged at step 40" in norm and "as the handout expects" in norm
    assert "`no_rmsnorm_low_lr` at lr 0.001 (0.1× the baseline's) ended 0.4 nats above" in norm
    assert "`no_rmsnorm` was diverged at the baseline's rate, so the lower rate restores stable training: as the " \
           "handout expects." in norm
    assert "Noise floor σ = 0.0141 nats" in norm
    assert ("0.01 nats against a resolution of 0.04 nats: within the noise: unresolved): no effect these runs can "
            "resolve") in section(course_text, "pre_norm_ablation")
    assert "this contradicts the handout's expectation" in section(course_text, "swiglu_ablation")
    toy = section(course_text, "learning_rate_tuning")
    assert "at lr 1000 the loss diverges" in toy and "the larger the rate the faster the decay" in toy
    assert "**1,640,452,800 trainable parameters**" in section(course_text, "transformer_accounting")
    assert "largest batch that fits in 80 GB is **3**" in section(course_text, "adamwAccounting")
    assert "beating the 5.0 baseline by 1.7" in section(course_text, "leaderboard")


def test_bits_per_byte_compare_across_tokenizers(course, course_text):
    owt = section(course_text, "main_experiment")
    ratio = bytes_per_token(course.files["valid_text/owt"], course.files["valid_tokens/owt"])
    assert ratio == pytest.approx(Path(course.files["valid_text/owt"]).stat().st_size /
                                  len(np.load(course.files["valid_tokens/owt"])))
    assert bits_per_byte(3.4, ratio) == pytest.approx(3.4 / math.log(2) / ratio)
    assert f"| {bits_per_byte(3.4, ratio):.4g} " in owt
    assert "higher per byte" in owt and "bits per byte against a resolution of" in owt


def test_reference_column_for_course_data_not_for_demo_data(course_text, demo):
    demo_text = render(demo)
    for name, value in [("no_pos_emb", "1.654 [student run]"), ("train_bpe_tinystories", "36.58 s [student run]"),
                        ("tokenizer_experiments", "4.248 [student run]"), ("main_experiment", "4.037 [student run]")]:
        assert value in section(course_text, name), name
        assert value not in section(demo_text, name) and NOT_COMPARABLE in section(demo_text, name), name
    assert "demo numbers (synthetic corpus)" in demo_text and "course-scale data" not in demo_text
    assert "course-scale data" in course_text and "demo numbers" not in course_text
    # the written problems do not depend on the data, so their reference stays comparable
    assert "[student run]" in section(demo_text, "learning_rate_tuning")
    assert "beating" not in section(demo_text, "leaderboard") and "does not apply" in section(demo_text, "leaderboard")


def test_missing_runs_and_files_say_not_run(course):
    partial = dataclasses.replace(course, roles={**course.roles, "batch_size": []},
                                  files={k: v for k, v in course.files.items() if k != "problem/unicode1"})
    text = render(partial)
    assert "_Not run in this configuration: it needs runs of `batch_size`._" in section(text, "batch_size_experiment")
    assert "it needs `problem/unicode1`" in section(text, "unicode1")
    assert text.count("_Not run in this configuration") == 2


def test_edge_comes_from_the_selection_file(course, tmp_path):
    selection = tmp_path / "lr_sweep.json"
    selection.write_text(json.dumps({
        "experiment": "lr_sweep", "key": "optim.lr_max", "value": 0.01, "variant": "lr_max~0.01",
        "final_val_loss": 2.0, "rule": "lowest final validation loss among runs that did not diverge",
        "why": "lr_max~0.01 ended lowest.", "candidates": [],
        "edge": {"largest_stable": 0.01, "smallest_not_stable": 0.02, "factor": 2.0, "target_factor": 2.0}}))
    text = render(dataclasses.replace(course, files={**course.files, "selection/lr_sweep": str(selection)}))
    lr = section(text, "learning_rate")
    assert "The choice rule: lowest final validation loss among runs that did not diverge." in lr
    assert "between 0.01 (largest stable) and 0.02 (smallest not stable), a bracket of 2× (target ≤ 2×)" in lr
    assert "The best rate is the largest stable one" in lr


def test_a_deliverable_added_to_the_registry_appears_without_other_edits(course, tmp_path, monkeypatch):
    def plot(inputs, out_path):
        registry.figures.toy_sgd(inputs, out_path)

    def write(s, inputs):
        s.say(f"The extra answer reads {len(inputs.runs('lr_sweep'))} sweep runs.")

    extra = registry.Deliverable("extra_problem", "9.9", "An extra problem", "Does the registry drive the report?",
                                 write, roles=("lr_sweep",),
                                 figures=(registry.Figure("extra_figure", plot, "An extra caption.",
                                                          files=("problem/learning_rate_tuning",)),))
    monkeypatch.setattr(registry, "DELIVERABLES", [*registry.DELIVERABLES, extra])
    assert registry.all_figures()["extra_figure"] is extra.figures[0]  # what the workflow's plot rule draws
    figure = tmp_path / "extra_figure.png"
    registry.all_figures()["extra_figure"].plot(course, figure)
    inputs = dataclasses.replace(course, files={**course.files, "figure/extra_figure": str(figure)})
    text = render(inputs)
    body = section(text, "extra_problem")
    assert "## 9.9 `extra_problem`: An extra problem" in text and "The extra answer reads 4 sweep runs." in body
    assert "*Figure `extra_figure`: An extra caption.*" in body
    assert "| 9.9 | `extra_problem`" in text


def test_reference_cells():
    course, demo = Reference(REFERENCE, demo=False), Reference(REFERENCE, demo=True)
    assert course.cell("bpe_time_s/owt", lambda v: f"{v:g} s") == "836.67 s [student run]"
    assert demo.cell("bpe_time_s/owt") == NOT_COMPARABLE
    assert course.cell("no_such_quantity") == "—"
    assert "student run" in course.sources_note() and "not comparable" in demo.sources_note()


def test_a_lower_rate_with_nothing_to_stabilise_is_not_called_the_expected_result(tmp_path):
    from cs336lm.experiments.noise import measure_noise
    from cs336lm.reporting.runs import read_run
    from cs336lm.reporting.sections.ablations import _lower_rate_verdict
    from tests.run_dirs import make_run

    base, at_base, low = (read_run(make_run(tmp_path / name, lr=lr, final=final, norm=norm))
                          for name, lr, final, norm in (("base", 1e-2, 1.8, "rmsnorm"), ("nonorm", 1e-2, 1.5, "none"),
                                                        ("low", 2.5e-3, 2.7, "none")))
    noise = measure_noise("ablations", {"baseline": [1.8, 1.82]})  # resolution 0.04 nats
    text = _lower_rate_verdict("no_rmsnorm_low_lr", low, "no_rmsnorm", at_base, base, 0.25, noise)
    assert ("ended 0.9 nats above the baseline (0.9 nats against a resolution of 0.04 nats: resolved). `no_rmsnorm` "
            "already trained stably at the baseline's rate") in text
    assert "no instability for the lower rate to fix; it ended 1.2 nats above that run (1.2 nats" in text
    assert "as the handout expects" not in text


def test_the_report_locates_the_edge_as_the_sweep_does(tmp_path):
    # A rate too small to beat token frequencies counts as diverged; it must not become the "edge" of stability.
    from cs336lm.reporting.runs import read_run, stability_edge
    from tests.run_dirs import make_run

    runs = {f"lr{lr:g}": read_run(make_run(tmp_path / f"lr{lr:g}", lr=lr, final=final, diverged=final is None))
            for lr, final in ((1e-5, None), (1e-3, 2.5), (1e-2, 2.0), (1.0, None))}
    assert stability_edge(runs) == (1e-2, 1.0)
    del runs["lr1"]
    assert stability_edge(runs) == (1e-2, None)


def test_throughput_is_compared_only_when_repeated_measurements_separate():
    from cs336lm.reporting.sections.training import _throughput_note

    size = {"a": 4, "b": 64}
    apart = _throughput_note({"a": [90.0, 100.0, 110.0, 100.0], "b": [190.0, 200.0, 210.0, 200.0]}, size, "a", "b")
    assert apart.startswith("Throughput rose from a median of 100 tokens/s at batch 4 to 200 at batch 64 (2×")
    overlapping = _throughput_note({"a": [90.0, 150.0, 110.0, 100.0], "b": [100.0, 200.0, 210.0, 120.0]}, size,
                                   "a", "b")
    assert "the ranges overlap, so the change is not resolved" in overlapping
    assert "not compared" in _throughput_note({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]}, size, "a", "b")


def test_the_workflow_noise_file_sets_the_floor_and_a_gap_inside_it_is_unresolved(course, tmp_path):
    from cs336lm.experiments.noise import measure_noise, write_noise

    write_noise(tmp_path / "ablations.noise.json", measure_noise("ablations", {"baseline": [1.8, 2.0, 2.2]}))
    text = render(dataclasses.replace(course, files={**course.files,
                                                     "noise/ablations": str(tmp_path / "ablations.noise.json")}))
    batch = section(text, "batch_size_experiment")
    assert "Noise floor σ = 0.2 nats, from `ablations/baseline` × 3" in batch
    assert "The largest batch ended 0.4 nats above the best (0.4 nats against a resolution of 0.566 nats: within " \
           "the noise: unresolved)" in batch


def test_the_lr_figure_and_table_name_each_of_the_three_outcomes(tmp_path):
    from cs336lm.reporting import figures
    from cs336lm.reporting.runs import stability_edge
    from tests.run_dirs import make_run

    runs = {"lr_max~0.01": make_run(tmp_path / "a", lr=1e-2, final=2.0),
            "lr_max~0.1": make_run(tmp_path / "b", lr=0.1, final=1.9, unstable=True),  # lowest loss, but unstable
            "lr_max~1": make_run(tmp_path / "c", lr=1.0, diverged=True)}
    inputs = ReportInputs(str(tmp_path), experiments={"lr_sweep": {k: str(v) for k, v in runs.items()}},
                          roles={"lr_sweep": ["lr_sweep"]})
    figures.lr_edge(inputs, tmp_path / "edge.png")
    assert (tmp_path / "edge.png").read_bytes()[:4] == b"\x89PNG"
    assert stability_edge(inputs.summaries("lr_sweep")) == (1e-2, 0.1), "the unstable rate bounds the edge"
    text = render(inputs)
    lr = section(text, "learning_rate")
    assert "| 0.1      | unstable  | 1.9 (unstable)" in lr and "The best rate is 0.01" in lr
