"""A hand-made results tree for the report tests: run directories (metrics.jsonl + summary.json) for every
experiment role, the written problems' tables, tokenizers with their benchmark and stats files, token files,
samples and a generation grid, and the manifest (ReportInputs) that points at them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from cs336lm.config import RunConfig
from cs336lm.experiments.selection import CHOICE_RULE, Outcome, Selection, write_selection
from cs336lm.problems.answers import PROBLEMS, solve_problem
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.provenance import COURSE_URLS, COURSE_VOCAB
from cs336lm.tokenization import Tokenizer, train_bpe
from cs336lm.training.summary import (
    Dataset,
    Implementation,
    JobTimes,
    Parameters,
    RunSummary,
    SelectedValue,
    write_summary,
)

REFERENCE = Path(__file__).resolve().parent.parent / "workflow" / "report" / "reference.yaml"
STORY = "Once upon a time there was a little dog named Tom. Tom liked to run in the park with his friend.<|endoftext|>"
WEB = "The city council voted 7-2 on Tuesday to approve the 2024 budget, officials said.<|endoftext|>"


def make_run(path: Path, *, lr: float = 1e-3, batch_size: int = 16, final: float | None = 2.0, diverged: bool = False,
             steps: int = 40, norm: str = "rmsnorm", norm_position: str = "pre", pos_emb: str = "rope",
             ffn: str = "swiglu", budget: float = 0.0, non_embedding: int = 1000, seed: int = 0,
             dataset: str = "tinystories", selected: dict | None = None, vocab_size: int = 300, d_model: int = 512,
             d_ff: int | None = None, token_budget: int = 327_680_000, unstable: bool = False) -> Path:
    """A run directory with a plausible falling (or exploding) loss curve and its summary; its config is the
    course's model and token budget (handout §7.2) unless `d_model`, `d_ff` or `token_budget` say otherwise. An
    unstable run's loss rises above its start at its second line, then falls."""
    path.mkdir(parents=True)
    start = 7.0
    lines = []
    for step in range(1, steps + 1, 5):
        loss = start * (1 + step) if diverged else final + (start - final) * math.exp(-step / 10)
        loss += 1.5 if unstable and step == 6 else 0.0
        line = {"step": step, "tokens": step * batch_size * 8, "elapsed_s": step * 0.1,
                "job_s": 1.0 + step * 0.15, "lr": lr,
                "train_loss": loss if loss < 1e3 else None, "grad_norm": 1.0, "tokens_per_s": 1000.0 * batch_size}
        if step % 10 == 1:
            line["val_loss"] = None if diverged and step > 1 else loss
        lines.append(json.dumps(line))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    config = RunConfig.from_flat({
        "model.vocab_size": vocab_size, "model.norm": norm, "model.norm_position": norm_position,
        "model.pos_emb": pos_emb, "model.ffn": ffn, "model.d_ff": d_ff or (1344 if ffn == "swiglu" else 2048),
        "model.d_model": d_model, "optim.lr_max": lr, "optim.lr_min": min(lr, 1e-4), "train.batch_size": batch_size,
        "train.wall_clock_budget_s": budget, "train.seed": seed, "train.token_budget": token_budget})
    write_summary(path / "summary.json", RunSummary(
        status="diverged" if diverged else "unstable" if unstable else "ok",
        stopped_early="diverged" if diverged else None,
        divergence="the training loss is nan at step 40" if diverged else None,
        instability="the training loss rose to 7.8 (logged value 2), above its first value 7" if unstable else None,
        final_val_loss=None if diverged else final, final_val_tokens=0 if diverged else 4096,
        best_val_loss=None if diverged else final, final_train_loss=None if diverged else final,
        no_learning_loss=5.0, steps=steps, num_iterations=steps, tokens=steps * batch_size * 8,
        wall_time_s=steps * 0.1, eval_time_s=1.0, tokens_per_s=1000.0 * batch_size,
        job=JobTimes(budget_s=budget or None, startup_s=1.0, compile_s=0.0, train_s=steps * 0.1, eval_s=1.0,
                     checkpoint_s=0.0, write_s=0.1, total_s=2.1 + steps * 0.1),
        parameters=Parameters(total=non_embedding + 500, non_embedding=non_embedding), flops_per_token=1e4, mfu=None,
        implementation=Implementation(requested="auto", attention="sdpa", dtype="float32", compile=False,
                                      optimizer="fused"),
        config=config.to_dict(), dataset=Dataset(name=dataset, source="test"),
        selected={k: SelectedValue(**v) for k, v in (selected or {}).items()},
        code={"git_sha": "abc", "git_dirty": False}, versions={}, device="cpu"))
    return path


def make_runs(r: Path) -> dict[str, dict[str, Path]]:
    """{experiment: {variant: run dir}}: one lr and one ablation diverged, the baseline repeated with seed 1."""
    tuned = {"optim.lr_max": {"value": 1e-2, "source": "selections/lr_sweep.json"}}
    return {
        "lr_sweep": {"lr_max~0.001": make_run(r / "lr1", lr=1e-3, final=2.5),
                     "lr_max~0.01": make_run(r / "lr2", lr=1e-2, final=2.0),
                     "lr_max~0.03": make_run(r / "lr3", lr=3e-2, final=2.3),
                     "lr_max~1": make_run(r / "lr4", lr=1.0, diverged=True)},
        "batch_size": {"batch_size~4": make_run(r / "b4", lr=1e-2, batch_size=4, steps=160, final=2.2,
                                                selected=tuned),
                       "batch_size~64": make_run(r / "b64", lr=1e-2, batch_size=64, steps=10, final=2.6,
                                                 selected=tuned)},
        "ablations": {"baseline": make_run(r / "base", lr=1e-2, final=2.0, selected=tuned),
                      "baseline_seed1": make_run(r / "base1", lr=1e-2, final=2.02, seed=1, selected=tuned),
                      "no_rmsnorm": make_run(r / "nonorm", lr=1e-2, norm="none", diverged=True, non_embedding=990),
                      "no_rmsnorm_low_lr": make_run(r / "nonorm_low", lr=1e-3, norm="none", final=2.4,
                                                    non_embedding=990),
                      "post_norm": make_run(r / "post", lr=1e-2, norm_position="post", final=2.01),
                      "nope": make_run(r / "nope", lr=1e-2, pos_emb="none", final=2.3, non_embedding=1000),
                      "silu": make_run(r / "silu", lr=1e-2, ffn="silu", final=1.8, non_embedding=1010)},
        "ts_main": {"main": make_run(r / "ts", final=1.9)},
        "owt_main": {"main": make_run(r / "owt", final=3.4, dataset="owt")},
        "leaderboard": {"main": make_run(r / "lb", final=3.3, budget=5400.0, dataset="owt")},
    }


def _tunings(root: Path, runs: dict[str, str]) -> None:
    """The selection files of the tuned batch sizes: batch 4 chose the largest of its rates, batch 64 the middle;
    the rates not chosen trained too, each in its own directory."""
    (root / "selections" / "batch_size").mkdir(parents=True)
    for variant, chosen in (("batch_size~4", 2), ("batch_size~64", 1)):
        rates = [5e-3, 1e-2, 2e-2]
        names = [f"{variant}__lr_max~x{i}" for i in range(len(rates))]
        dirs = [runs[variant] if i == chosen else
                str(make_run(root / "runs" / "batch_size" / names[i], lr=rate, final=2.5,
                             batch_size=int(variant.partition("~")[2]))) for i, rate in enumerate(rates)]
        candidates = tuple(Outcome(names[i], rate, "ok", 2.5 - 0.1 * (i == chosen), dirs[i])
                           for i, rate in enumerate(rates))
        write_selection(root / "selections" / "batch_size" / f"{variant}.json", Selection(
            sweep=f"batch_size/{variant}", experiment="batch_size", key="optim.lr_max", value=rates[chosen],
            variant=candidates[chosen].variant, run_dir=runs[variant], final_val_loss=2.4, rule=CHOICE_RULE,
            why="the lowest", candidates=candidates, edge=None))


def _tokenizer(root: Path, dataset: str, text: str, synthetic: bool) -> dict[str, str]:
    """Train a tiny BPE on `text`, save it with a benchmark and stats file, tokenize a validation split."""
    corpus = root / "corpora" / dataset
    corpus.mkdir(parents=True)
    (corpus / "train.txt").write_text(text * 40)
    (corpus / "valid.txt").write_text(text * 5)
    vocab, merges = train_bpe(corpus / "train.txt", 300, ["<|endoftext|>"])
    tokenizer = Tokenizer(vocab, merges, ["<|endoftext|>"])
    tok_dir = root / "tokenizers" / dataset
    tokenizer.save(tok_dir)
    (tok_dir / "train_stats.json").write_text(json.dumps(  # the format train_bpe writes
        {"num_shards": 2, "unique_pretokens": 1234, "pretokens": 9876, "vocab_size": 300, "merges": 43,
         "seconds": {"counting_total": 3.0, "counting_longest_shard": 1.5, "reading_counts": 0.2, "merging": 4.0,
                     "saving": 0.1},
         "peak_rss_mb": {"counting_largest_shard_job": 120.0, "counting_largest_worker": 80.0, "training": 250.0},
         "longest_token": {"text": " friend", "bytes": 7}, "shards": []}))
    bench = root / "benchmarks" / "train_bpe" / f"{dataset}.tsv"
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                     "4.7\t0:00:04\t243.2\t500\t200\t210\t1\t1\t90\t4.5\n")
    tokens = root / "tokens" / dataset / "valid.npy"
    tokens.parent.mkdir(parents=True)
    np.save(tokens, np.array(tokenizer.encode((corpus / "valid.txt").read_text()), dtype=np.uint16))
    return {f"vocab/{dataset}": str(tok_dir / "vocab.json"), f"merges/{dataset}": str(tok_dir / "merges.txt"),
            f"bpe_stats/{dataset}": str(tok_dir / "train_stats.json"), f"bpe_benchmark/{dataset}": str(bench),
            f"valid_text/{dataset}": str(corpus / "valid.txt"), f"valid_tokens/{dataset}": str(tokens)}


def make_results(root: Path, *, synthetic: bool = True, course: bool = True) -> ReportInputs:
    """A whole results tree under `root` and its manifest; `synthetic` marks the corpora as the demo's, otherwise
    they are the course's (downloaded from its URLs, its vocabulary requested) or, with `course=False`, the
    user's."""
    experiments = {e: {v: str(d) for v, d in variants.items()} for e, variants in make_runs(root / "runs").items()}
    _tunings(root, experiments["batch_size"])
    for run, requested, resumed in (("lr_sweep/lr_max~0.01", 30, False), ("leaderboard/main", 0.1, True)):
        experiment, variant = run.split("/")  # two runs trained by the workflow, which writes request.json
        (Path(experiments[experiment][variant]) / "request.json").write_text(
            json.dumps({"requested_minutes": requested, "resumed": resumed}))
    files = {**_tokenizer(root, "tinystories", STORY, synthetic), **_tokenizer(root, "owt", WEB, synthetic)}
    problems = root / "problems"
    problems.mkdir()
    for name in PROBLEMS:
        solve_problem(name, {"tinystories": files["valid_text/tinystories"]}, problems / f"{name}.csv")
        files[f"problem/{name}"] = str(problems / f"{name}.csv")
    tables = root / "tables"
    tables.mkdir()
    pd.DataFrame([{"tokenizer": t, "corpus": c, "documents": 3, "bytes": 100, "tokens": 25, "bytes_per_token": bpt,
                   "encoder": "tiktoken core", "throughput_bytes": 1_000_123 if c == "owt" else 40_000,
                   "throughput_text": "slice" if c == "owt" else "whole file",
                   "mb_per_s": 2.0, "pile_825gb_hours": 825e9 / 2e6 / 3600,
                   "mb_per_s_python": 0.5, "pile_825gb_hours_python": 825e9 / 0.5e6 / 3600,
                   "longest_token": " together", "longest_token_bytes": 9}  # the columns tokenizer_stats writes
                  for t, c, bpt in [("tinystories", "tinystories", 4.0), ("owt", "tinystories", 3.5),
                                    ("tinystories", "owt", 3.0), ("owt", "owt", 4.5)]]).to_csv(
        tables / "tokenizer_stats.csv", index=False)
    files["tokenizer_stats"] = str(tables / "tokenizer_stats.csv")
    samples = root / "samples" / "ts_main" / "main.md"
    samples.parent.mkdir(parents=True)
    samples.write_text("# Samples\n\n## Sample 1\n\n**Prompt:** 'Once upon a time'\n\n```text\nOnce upon a time "
                       "there was a little dog named Tom. Tom liked to run in the park.\n```\n")
    files["samples/ts_main/main"] = str(samples)
    # word salad from the story's own words: most of its word pairs never occur in the corpus
    salad = " park Tom dog the friend run little his was Once with named liked upon in a there time to"
    samples.with_suffix(".json").write_text(json.dumps({
        "model": experiments["ts_main"]["main"] + "/model.pt", "temperature": 0.8, "top_p": 0.9, "max_new_tokens": 256,
        "seed": 0, "samples": [{"prompt": "Once upon a time", "completion": salad, "new_tokens": 20,
                                "stopped_at_eos": False, "loss": 4.0}]}))
    files["sample_scores/ts_main/main"] = str(samples.with_suffix(".json"))
    owt_samples = root / "samples" / "owt_main" / "main.md"  # as cs336lm.problems.samples.write_samples writes
    owt_samples.parent.mkdir(parents=True)
    owt_samples.write_text("# Samples\n\n## Sample 1\n\n**Prompt:** 'The city'\n\n```text\nThe city council said the "
                           "city council said the city council said the city council said.\n```\n")
    files["samples/owt_main/main"] = str(owt_samples)
    grid = pd.DataFrame([{"model": experiments["ts_main"]["main"] + "/model.pt", "temperature": t, "top_p": p,
                          "prompt": "Once upon a time", "seed": s, "new_tokens": 20 + s, "stopped_at_eos": s == 0,
                          "distinct_1": 0.5 + t / 4, "distinct_2": 0.6 + t / 4 - (1 - p) / 10,
                          "repetition_4": 0.3 - t / 10, "unknown_tokens": int(t > 0.5 and s == 1),
                          "sample_loss": 1.5 + t,
                          "completion": f" there was a dog {t} {p} {s}."}
                         for t in (0.5, 1.0) for p in (0.9, 1.0) for s in (0, 1)])
    grid.to_csv(root / "samples" / "generation_grid.csv", index=False)
    files["generation_grid"] = str(root / "samples" / "generation_grid.csv")
    def facts(dataset: str) -> dict:
        """The dataset facts the workflow's manifest gives: the demo's text, the course's URLs, or the user's."""
        urls = (dict.fromkeys(("train", "valid")) if synthetic else COURSE_URLS[dataset] if course else
                {"train": f"file:///data/{dataset}_train.txt", "valid": f"file:///data/{dataset}_valid.txt"})
        return {"source": "synthetic (tinystories style, 1,000 bytes, seed 0)" if synthetic else urls["train"],
                "synthetic": synthetic, "vocab_size": COURSE_VOCAB[dataset] if course and not synthetic else 300,
                "urls": urls, "sha256": dict.fromkeys(urls),
                "train_text": str(root / "corpora" / dataset / "train.txt")}

    return ReportInputs(
        results_root=str(root), experiments=experiments,
        roles={"lr_sweep": ["lr_sweep"], "batch_size": ["batch_size"], "ablations": ["ablations"],
               "main": ["ts_main", "owt_main"], "leaderboard": ["leaderboard"], "samples": ["ts_main"]},
        baseline="baseline",
        datasets={"tinystories": facts("tinystories"), "owt": facts("owt")},
        experiment_datasets={"lr_sweep": "tinystories", "batch_size": "tinystories", "ablations": "tinystories",
                             "ts_main": "tinystories", "owt_main": "owt", "leaderboard": "owt"},
        files=files, reference=str(REFERENCE))
