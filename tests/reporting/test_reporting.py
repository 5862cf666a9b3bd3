"""The report registry and writeup on a hand-made results tree (tests/run_dirs.py): every deliverable has its
heading and answer, sentences follow the numbers, the reference column shows for course data and not for demo
data, figures are drawn, and a deliverable added to the registry appears without other edits."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from cs336lm.problems.answers import solve_problem
from cs336lm.reporting import registry, writeup
from cs336lm.reporting.datasets import bits_per_byte, bytes_per_token, describe_token
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.reference import NOT_COMPARABLE, Reference
from cs336lm.reporting.sections.tokenizers import token_kinds
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
    # The winner's loss is 2.0 (tests/run_dirs.py), printed to 4 significant digits: "2", then the full stop.
    assert re.search(r"The best rate is 0\.01, final validation loss 2\.(\s|$)", lr), lr
    assert "between 0.03 (largest stable) and 1 (smallest not stable), a bracket of 33.3×" in lr
    assert "becomes non-finite or exceeds 2 × its first logged value" in lr
    assert ("a run that is not diverged is unstable when a logged training loss rose more than 2% above the first "
            "one") in lr
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
    assert "`no_rmsnorm` at the baseline's rate diverged at step 40" in norm and "as we expected" in norm
    assert "The handout: \"It is often said that layer normalization is important for the stability of " \
           "Transformer training\" (§7.3); it predicts no result. Our expectation:" in norm
    assert "`no_rmsnorm_low_lr` at lr 0.001 (0.1× the baseline's) ended 0.4 nats above" in norm
    assert "`no_rmsnorm` was diverged at the baseline's rate, so the lower rate restores stable training." in norm
    assert "handout expects" not in norm and "handout's expectation" not in norm
    assert "Noise floor σ = 0.0141 nats" in norm
    assert ("0.01 nats against a resolution of 0.04 nats: within the noise: unresolved): no effect these runs can "
            "resolve") in section(course_text, "pre_norm_ablation")
    assert "against our expectation, possibly because" in section(course_text, "swiglu_ablation")
    toy = section(course_text, "learning_rate_tuning")
    assert "at lr 10 it decays faster than at lr 1, to 3.53 after 10 iterations" in toy
    assert "at lr 1000 it diverges, growing from 26.27 to 2.44e+18" in toy and "reference" not in toy.lower()
    accounting = section(course_text, "transformer_accounting")
    assert "**2,127,057,600 trainable parameters**" in accounting and "**8.51 GB**" in accounting
    assert "In total **4.513 TFLOP**" in accounting and "(c) The feed-forward needs the most FLOPs, 66.9%" in accounting
    assert "take less are attention scores QKᵀ (5.5% → 3.6%)" in accounting
    assert "149.5 TFLOP, 33.1× the 4.513 TFLOP at 1,024" in accounting
    adamw = section(course_text, "adamwAccounting")
    assert "memory ≈ **15.52 GB · batch_size + 26.17 GB** (a = 15,517,753,344 and b = 26,168,601,600 bytes), so " \
           "the largest batch within 80 GB (80·10⁹ bytes) is **3** (3 if 80 GB is read as 80 GiB)" in adamw
    assert "is **3**" in adamw and "**5,115 days** (14.0 years) on one A100" in adamw
    assert "H100" not in adamw and "495" not in adamw
    leaderboard = section(course_text, "leaderboard")  # the run ends at 3.3: 1.7 below the baseline, no more digits
    assert re.search(r"reaches 3\.3 on .* beating the 5\.0 baseline by 1\.7(?![\d.]*\d)", leaderboard), leaderboard


def test_written_answers_take_the_form_the_handout_asks(course_text):
    unicode1 = section(course_text, "unicode1")
    assert "(b) Its `__repr__()` is the visible escape sequence `'\\x00'`, while `print`" in unicode1
    unicode2 = section(course_text, "unicode2")
    assert "(more than 98% of all webpages)" in unicode2 and "256 base tokens" not in unicode2
    assert "It is wrong because UTF-8 writes every non-ASCII character as 2–4 bytes" in unicode2
    # the fixture's longest tokenizer entry is a word piece without a leading space
    assert "'friend', is a piece of a word (letters without a leading space); it makes sense" in \
        section(course_text, "train_bpe_tinystories")
    experiments = section(course_text, "tokenizer_experiments")
    assert "(a) The `tinystories` tokenizer compresses its own corpus to 4 bytes per token; the `owt` tokenizer " \
           "compresses its own corpus to 4.5 bytes per token." in experiments
    assert "(b) The `owt` tokenizer gets 3.5 bytes per token on `tinystories` text" in experiments
    assert "(b) The `tinystories` tokenizer gets 3 bytes per token on `owt` text against 4.5" in experiments
    assert "its ids run from 0 to 299, within uint16's 0 to 65,535" in experiments
    assert "uint8 stops at 255" in experiments
    adamw = section(course_text, "adamwAccounting")
    assert "P = 2·V·d + L·(12·d² + 2·d) + d: parameters **4·P**, gradients **4·P**, AdamW's optimizer state " \
           "(m and v) **8·P**, activations **4·[L·(16·B·T·d + 2·B·h·T²) + B·T·d + 2·B·T·V]**, and the peak total " \
           "**16·P + 4·[L·(16·B·T·d + 2·B·h·T²) + B·T·d + 2·B·T·V]**." in adamw
    assert "at lr 100 it decays faster than at lr 1 (the fastest of all), to 2.35e-23" in \
        section(course_text, "learning_rate_tuning")


def test_unicode2_claims_the_shortest_encoding_only_where_measured(course, course_text, tmp_path):
    # Japanese text: UTF-8 spends 3 bytes on each kana, UTF-16 two, so UTF-8 is not the shortest here
    sample = tmp_path / "japanese.txt"
    sample.write_text("こんにちは、世界。" * 20, encoding="utf-8")
    solve_problem("unicode2", {"japanese": sample}, tmp_path / "unicode2.csv")
    inputs = dataclasses.replace(course, files={**course.files, "problem/unicode2": str(tmp_path / "unicode2.csv")})
    deliverable = next(d for d in registry.DELIVERABLES if d.name == "unicode2")
    text = writeup.render_section(deliverable, inputs, Reference(REFERENCE), tmp_path)
    assert "On `japanese` text UTF-8 takes 3.00 bytes per character against 2.00 (UTF-16)" in text
    assert "longer sequences than UTF-16 here" in text and "the shortest sequences" not in text
    assert "the shortest sequences (one byte for each ASCII character)" in section(course_text, "unicode2")


def test_tokens_one_vocabulary_lacks_are_described_by_kind(course_text):
    # by hand: a number, a name, an accented word and a plain word: a quarter each
    assert token_kinds({b" 2024", b" Tom", "\u00e9t\u00e9".encode(), b" dog"}) == \
        "25.0% hold a digit, 25.0% begin with a capital letter, 25.0% are not ASCII"
    owt = section(course_text, "train_bpe_expts_owt")
    assert "In contrast, over the tokens only one of the two has: of the 40 only in `owt`, " in owt
    assert "; of the 40 only in `tinystories`, " in owt


def test_longest_token_says_whether_it_makes_sense():
    assert describe_token(b" accomplishment").startswith("a whole word with its leading space; it makes sense")
    assert "not a word; it makes sense for BPE" in describe_token("ÃÂÃÂ".encode())
    assert describe_token(b"\xc3").startswith("not valid UTF-8 on its own")
    assert "; it makes sense for BPE" in describe_token(b"    ")


def test_bits_per_byte_compare_across_tokenizers(course, course_text):
    owt = section(course_text, "main_experiment")
    ratio = bytes_per_token(course.files["valid_text/owt"], course.files["valid_tokens/owt"])
    assert ratio == pytest.approx(Path(course.files["valid_text/owt"]).stat().st_size /
                                  len(np.load(course.files["valid_tokens/owt"])))
    assert bits_per_byte(3.4, ratio) == pytest.approx(3.4 / math.log(2) / ratio)
    assert f"| {bits_per_byte(3.4, ratio):.4g} " in owt
    assert "OpenWebText is harder for this model" in owt or "do not say which text is harder" in owt
    assert "bits per byte against" in owt


def test_reference_column_for_course_data_not_for_demo_data(course_text, demo):
    demo_text = render(demo)
    for name, value in [("no_pos_emb", "1.654 [student run]"), ("train_bpe_tinystories", "36.58 s [student run]"),
                        ("tokenizer_experiments", "4.248 [student run]"), ("main_experiment", "4.037 [student run]")]:
        assert value in section(course_text, name), name
        assert value not in section(demo_text, name) and NOT_COMPARABLE in section(demo_text, name), name
    assert "demo numbers (synthetic corpus)" in demo_text and "the course's tinystories corpus" not in demo_text
    assert "`tinystories`: the course's tinystories corpus, downloaded from the course's URLs, 4.36 kB of " \
           "training text; no sha256 in the config" in course_text and "demo numbers" not in course_text
    assert "Every corpus is the course's" in course_text
    assert "All 20 trained runs have the course's model" in course_text
    assert "runs at the course's scale" in section(course_text, "learning_rate")
    demo_leaderboard = section(demo_text, "leaderboard")
    assert "beating" not in demo_leaderboard and "applies: the run shows" in demo_leaderboard


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
    course, demo = Reference(REFERENCE), Reference(REFERENCE, not_comparable="`owt` is the demo's synthetic text")
    assert course.cell("bpe_time_s/owt", lambda v: f"{v:g} s") == "836.67 s [student run]"
    assert demo.cell("bpe_time_s/owt") == NOT_COMPARABLE
    assert course.cell("no_such_quantity") == "—"
    assert "student run" in course.sources_note()
    assert "not comparable with ours: `owt` is the demo's synthetic text" in demo.sources_note()


def test_the_handouts_targets_come_from_one_place():
    import yaml

    from cs336lm.reporting import targets

    course = Reference(REFERENCE)
    assert course.cell("leaderboard_baseline", lambda v: f"{v:g}") == "5 [handout]"
    assert course.cell("leaderboard_best", lambda v: f"{v:.4g}") == "3.012 [leaderboard]"
    assert course.cell("bpe_budget/owt") == "≤ 12 h and ≤ 100 GB RAM, no GPU [handout]"
    assert "[handout] the assignment handout" in course.describe_sources()
    written = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    assert not set(written["values"]) & set(targets.VALUES) and not set(written["sources"]) & set(targets.SOURCES)
    assert {v["source"] for v in written["values"].values()} <= set(written["sources"]), "the YAML is other setups'"


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
    assert "handout" not in text


def test_the_report_locates_the_edge_as_the_sweep_does(tmp_path):
    # A rate too small to beat token frequencies counts as diverged; it must not become the "edge" of stability.
    from cs336lm.reporting.runs import read_run, stability_edge
    from tests.run_dirs import make_run

    runs = {f"lr{lr:g}": read_run(make_run(tmp_path / f"lr{lr:g}", lr=lr, final=final, diverged=final is None))
            for lr, final in ((1e-5, None), (1e-3, 2.5), (1e-2, 2.0), (1.0, None))}
    assert stability_edge(runs) == (1e-2, 1.0)
    del runs["lr1"]
    assert stability_edge(runs) == (1e-2, None)


def test_generate_judges_the_samples_against_corpus_text(course, course_text, tmp_path):
    generate = section(course_text, "generate")
    assert "are **incoherent**: 100% of their word pairs never occur in the reference text, against 0% for " \
           "held-out corpus text of the same length" in generate  # the fixture's word salad
    assert "its own samples cost 4 nats per token against 1.9 on validation text" in generate
    assert "| 0.5           | 0.9     |" in generate and "66.7%" in generate  # the grid's unseen word pairs
    scores = json.loads(Path(course.files["sample_scores/ts_main/main"]).read_text())
    story = Path(course.files["valid_text/tinystories"]).read_text().split("<|endoftext|>")[0]
    scores["samples"][0] |= {"completion": story, "loss": 1.2}
    planted = tmp_path / "main.json"
    planted.write_text(json.dumps(scores))
    text = render(dataclasses.replace(course, files={**course.files, "sample_scores/ts_main/main": str(planted)}))
    generate = section(text, "generate")
    assert "incoherent**" not in generate and "are as coherent locally as held-out `tinystories` text" in generate
    assert "the model finds them more likely than real text (sampling at temperature 0.8, top-p 0.9" in generate


def test_the_experiment_log_lists_every_trained_run_once(course, course_text):
    from cs336lm.reporting.runs import runs_table

    trained = {str(p.parent) for p in Path(course.results_root).rglob("summary.json")}
    table = runs_table(course.experiments, course.selections())
    assert sorted(table.run_dir) == sorted(trained)  # every directory, none twice
    log = section(course_text, "experiment_log")
    assert f"one row per trained run directory ({len(trained)} runs" in log
    rows = {cells[0]: cells[1:3] for line in log.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    assert rows["batch_size/batch_size~4__lr_max~x0"] == ["—", "candidate of `batch_size/batch_size~4`: lost"]
    assert rows["batch_size/batch_size~4__lr_max~x2"] == [  # the winner, once, with the name it is shown as
        "batch_size/batch_size~4", "candidate of `batch_size/batch_size~4`: chosen"]
    assert "`selections/batch_size/batch_size~4.json` compared 3 runs of optim.lr_max (0.005, 0.01, 0.02) and " \
           "chose 0.02" in log


def test_a_shared_run_is_one_row_naming_every_name(tmp_path):
    from cs336lm.reporting.runs import logged_runs
    from tests.run_dirs import make_run

    best = str(make_run(tmp_path / "runs" / "lr_sweep" / "lr_max~0.01"))
    other = str(make_run(tmp_path / "runs" / "lr_sweep" / "lr_max~0.1"))
    entries = logged_runs({"lr_sweep": {"lr_max~0.01": best, "lr_max~0.1": other},
                           "ablations": {"baseline": best}, "ts_main": {"main": best}})
    assert [(e.experiment, e.variant, e.shown_as) for e in entries] == [
        ("lr_sweep", "lr_max~0.01", ("ablations/baseline", "ts_main/main")), ("lr_sweep", "lr_max~0.1", ())]


def test_an_ablation_that_did_not_run_says_not_run(course):
    experiments = {**course.experiments, "ablations": {k: v for k, v in course.experiments["ablations"].items()
                                                       if k != "nope"}}
    text = render(dataclasses.replace(course, experiments=experiments))
    assert "| 7.3 | `no_pos_emb`             | not run: needs an ablation run with model.pos_emb = none |" in text
    assert "_Not run in this configuration: it needs an ablation run with model.pos_emb = none._" in \
        section(text, "no_pos_emb")
    assert "| 7.3 | `swiglu_ablation`        | yes" in text


@pytest.mark.parametrize(("foreign", "own", "words"), [(3.0, 4.5, "50.0% more tokens"), (4.6, 4.5, "2.2% fewer tokens"),
                                                       (4.52, 4.5, "the same compression within 1%")])
def test_cross_compression_follows_the_sign_of_the_numbers(foreign, own, words):
    from cs336lm.reporting.sections.tokenizers import cross_compression

    # A smaller vocabulary (300) that compresses the other corpus better must not be said to need more tokens.
    text = cross_compression("tinystories", "owt", foreign, own, 300, 3000)
    assert words in text and "(vocabularies of 300 and 3,000 entries)" in text
    assert ("fall apart" in text) == (foreign < own * 0.99)
    assert ("-" not in text.split("owt`'s own tokenizer")[1].split("%")[0])  # no negative "more"


def test_vocabulary_requested_and_reached(course):
    datasets = {**course.datasets, "owt": {**course.datasets["owt"], "vocab_size": 500}}
    text = section(render(dataclasses.replace(course, datasets=datasets)), "train_bpe_expts_owt")
    assert "Vocabulary: 500 requested, 300 reached (special tokens included): BPE ran out of merges 200 short" in text
    assert "model.vocab_size = 300: the tokenizer's size" in text


def test_equal_peak_memory_for_different_vocabularies_is_not_read_as_equal_cost(course, tmp_path):
    from cs336lm.reporting.document import Section
    from cs336lm.reporting.sections.tokenizers import _memory_note

    s = Section(course, Reference(REFERENCE), tmp_path, {})
    _memory_note(s, course, "owt", "tinystories", 3000, 300)  # both stats files read 250 MB for the merge phase
    assert "equal within 5% although the vocabularies differ 10×" in s.lines[0] and "does not resolve" in s.lines[0]
    s.lines.clear()
    _memory_note(s, course, "owt", "tinystories", 300, 300)
    assert not s.lines


def test_the_users_data_is_named_as_theirs_and_not_compared_with_course_numbers(tmp_path):
    inputs = make_results(tmp_path, synthetic=False, course=False)
    text = render(inputs)
    top = text[:text.index("**Reference numbers.**")]
    assert "Not the course's data: `tinystories` is the user's data, not the course's" in top
    assert "- `tinystories`: the user's data from file:///data/tinystories_train.txt, 4.36 kB of training text" in top
    assert "course's" not in top.split("Not the course's data")[0]
    bpe = section(text, "train_bpe_tinystories")
    assert "36.58 s [student run]" not in bpe and NOT_COMPARABLE in bpe
    assert "not comparable with ours: `tinystories` is the user's data, not the course's" in bpe


def test_a_reduced_run_on_course_data_is_not_compared_with_course_numbers(course, tmp_path):
    from tests.run_dirs import make_run

    small = str(make_run(tmp_path / "small", lr=1e-2, final=2.0, d_model=64, d_ff=176, token_budget=300_000))
    experiments = {**course.experiments, "ablations": {**course.experiments["ablations"], "baseline": small}}
    text = render(dataclasses.replace(course, experiments=experiments))
    nope = section(text, "no_pos_emb")
    assert "runs at a **reduced scale** (d_model 64 (course 512), d_ff 176 (course 1344), 300,000 tokens (course " \
           "327,680,000))" in nope
    assert "1.654 [student run]" not in nope and NOT_COMPARABLE in nope
    assert "runs at the course's scale" in section(text, "learning_rate")  # the sweep itself is course-scale
    assert "1 of 20 trained runs are at a reduced scale" in text  # the small baseline replaced the course one


def test_learning_rate_sentences_follow_the_runs(course, tmp_path):
    from tests.run_dirs import make_run

    # lr 0.3 ends at 5.5, above the unigram entropy (5.0) every tree run records: not a run that learned.
    flat = str(make_run(tmp_path / "flat", lr=0.3, final=5.5))
    experiments = {**course.experiments, "lr_sweep": {**course.experiments["lr_sweep"], "lr_max~0.3": flat}}
    lr = section(render(dataclasses.replace(course, experiments=experiments)), "learning_rate")
    assert "| stable, but its validation loss is not below the unigram entropy 5 |" in lr
    assert "lr 0.3 ended at validation loss 5.5, not below its unigram entropy 5" in lr
    assert "lr 0.01 ended at validation loss" not in lr, "a run below its unigram entropy is not flagged"
    # the tree logs evaluations at steps 1, 11, 21, 31 of 40: the one nearest half is at 52.5%, and says so
    assert "| 2.612 (at 52.5%) " in lr and "At 52.5% of training, the loss was lowest at lr 0.01" in lr
    assert "half of training" not in lr.replace("near half of training", "")


def test_mfu_is_not_called_recorded_when_null(course_text):
    log = section(course_text, "experiment_log")
    assert "No run recorded an MFU (`mfu` is null in summary.json): the peak FLOP/s of cpu is not known" in log
    assert "| MFU " not in log


def test_main_experiment_answers_every_part_from_the_numbers(course, course_text, tmp_path):
    from tests.run_dirs import make_run

    owt = section(course_text, "main_experiment")
    assert "both runs train the same architecture for the same 40 iterations" in owt
    assert "```text\nThe city council said the city council" in owt  # the OWT model's own sample
    assert "61.5% of their 4-grams repeat, against 0.0% in web text itself, so they loop" in owt
    assert "Why its output is worse than the TinyStories model's" in owt
    assert "0.0% of their word 4-grams occur in web text, against " in owt  # the tree's OWT sample is not web text
    assert "less of the OpenWebText model's output is made of phrases its corpus uses" in owt
    # Plant the opposite: an OpenWebText model that beats TinyStories, trained for more iterations.
    better = str(make_run(tmp_path / "owt", final=1.0, dataset="owt", steps=80))
    flipped = section(render(dataclasses.replace(course, experiments={**course.experiments,
                                                                      "owt_main": {"main": better}})),
                      "main_experiment")
    assert "OpenWebText is easier for this model" in flipped and "harder" not in flipped
    assert "the context helps at least as much on the web text" in flipped
    assert "by loss, the OpenWebText model is not the worse one" in flipped and "Why its output is worse" not in flipped
    assert "`owt_main` trained 80 iterations, `ts_main` 40" in flipped


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


def test_leaderboard_shows_the_candidates_the_choice_and_the_whole_jobs_time(course, tmp_path):
    from cs336lm.experiments.combination import choose_combination, write_combination
    from cs336lm.experiments.noise import measure_noise

    losses = {"baseline": [4.00, 4.02], "tied_head": [3.90, 3.92], "qk_norm": [3.97, 3.99]}
    combination = choose_combination(measure_noise("leaderboard_candidates", losses), losses["baseline"],
                                     {v: losses[v] for v in ("tied_head", "qk_norm")},
                                     {"tied_head": {"model.head": "tied"}, "qk_norm": {"model.qk_norm": "rmsnorm"}})
    write_combination(tmp_path / "c.json", combination)
    inputs = dataclasses.replace(course, files={**course.files, "combination/leaderboard": str(tmp_path / "c.json")})
    text = section(render(inputs), "leaderboard")
    # σ = 0.01414 (every pair of seeds 0.02 apart), resolution 2 × √2 × σ = 0.04: tied_head's +0.10 helped, qk_norm's
    # +0.03 did not.
    assert "the noise floor σ = 0.0141, resolution 0.0400" in text
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    assert ["tied_head", "model.head: tied", "3.91", "3.9, 3.92", "+0.1000 ± 0.0400", "yes"] in cells
    assert ["qk_norm", "model.qk_norm: rmsnorm", "3.98", "3.97, 3.99", "+0.0300 ± 0.0400", "no"] in cells
    assert "combined tied_head (+0.1000 nats, resolved above 0.0400)" in text
    assert "Where the job's time went" in text and "whole job" in text
    assert "3.0117 [leaderboard]" in text  # the best published loss beside ours


def test_selections_are_read_without_the_noise_and_combination_files_beside_them(course, tmp_path):
    import shutil

    from cs336lm.reporting.runs import read_selections

    selections = Path(course.results_root) / "selections"
    copy = tmp_path / "selections"
    shutil.copytree(selections, copy)
    expected = [s.sweep for s in read_selections(copy)]
    (copy / "ablations.noise.json").write_text("{}")
    (copy / "leaderboard_candidates.combination.json").write_text("{}")
    assert [s.sweep for s in read_selections(copy)] == expected and expected
