"""Sharded BPE and tokenization equal the single-job path byte for byte: shard bounds, summed pre-token counts,
the trained tokenizer's files and the joined token file, for 2 and 5 shards, a shard boundary right next to a
special token, a shard with no special token, multi-byte UTF-8 at the edges; the same files across runs and
worker counts; and the workflow's scatter/gather on the tiny config in a real Snakemake run."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from cs336lm.corpora.synthetic import write_stories
from cs336lm.tokenization import Tokenizer, chunks, count_pretokens, pretokenize, tokenize_file, train_bpe
from cs336lm.tokenization.bpe_jobs import count_shard, train_from_counts
from cs336lm.tokenization.chunks import shard_bounds
from cs336lm.tokenization.gpt2_format import save_gpt2_files
from cs336lm.tokenization.pretokenize import read_counts
from cs336lm.tokenization.token_files import concatenate_token_files, tokenize_shard

EOT = "<|endoftext|>"


def _sharded_equals_single(text_path: Path, tmp_path: Path, num_shards: int, vocab_size: int = 300) -> list[int]:
    """Run both paths on `text_path`; assert identical counts, tokenizer files and token file; return the bounds."""
    size = text_path.stat().st_size
    bounds = shard_bounds(text_path, num_shards, [EOT])
    assert len(bounds) == num_shards + 1 and bounds[0] == 0 and bounds[-1] == size and bounds == sorted(bounds)
    data = text_path.read_bytes()
    for b in bounds:
        data[:b].decode("utf-8")  # never inside a character
    counts_paths = [tmp_path / f"counts{k}.json" for k in range(num_shards)]
    for k, path in enumerate(counts_paths):
        count_shard(text_path, k, num_shards, [EOT], path, num_workers=1)
    whole = count_pretokens(text_path, [EOT], num_workers=1)
    assert sum((read_counts(p)[0] for p in counts_paths), start=type(whole)()) == whole

    sharded_dir, single_dir = tmp_path / "sharded", tmp_path / "single"
    stats = train_from_counts(counts_paths, vocab_size, [EOT], sharded_dir, sharded_dir / "train_stats.json")
    vocab, merges = train_bpe(text_path, vocab_size, [EOT], num_workers=2)
    save_gpt2_files(vocab, merges, single_dir)
    for name in ("vocab.json", "merges.txt"):
        assert (sharded_dir / name).read_bytes() == (single_dir / name).read_bytes()
    assert stats["num_shards"] == num_shards and stats["unique_pretokens"] == len(whole)

    tokenizer = Tokenizer.from_files(single_dir / "vocab.json", single_dir / "merges.txt", [EOT])
    parts = [tmp_path / f"tokens{k}.npy" for k in range(num_shards)]
    for k, part in enumerate(parts):
        tokenize_shard(text_path, tokenizer, k, num_shards, part, num_workers=1)
    concatenate_token_files(parts, tmp_path / "joined.npy")
    tokenize_file(text_path, tokenizer, tmp_path / "whole.npy", num_workers=2)
    assert (tmp_path / "joined.npy").read_bytes() == (tmp_path / "whole.npy").read_bytes()
    return bounds


@pytest.mark.parametrize("num_shards", [2, 5])
def test_sharded_equals_single_job_on_the_synthetic_corpus(tmp_path, num_shards):
    text = tmp_path / "stories.txt"
    write_stories(text, 200_000, seed=3)
    bounds = _sharded_equals_single(text, tmp_path, num_shards)
    data = text.read_bytes()
    assert all(data[b:].startswith(EOT.encode()) for b in bounds[1:-1])  # cuts at document boundaries


def test_shard_boundary_right_next_to_a_special_token(tmp_path):
    # The 2-shard target (the middle byte) is exactly where a special token starts (two in a row, so it is also
    # where the one before would end if it were cut there): the cut falls on it, and the second shard starts there.
    suffix = EOT + EOT + "\nThe end, said Tom. " * 400
    half = len(suffix.encode())
    prefix = ("Once upon a time there was a dog named Spot. " * 400)[: half - 1] + "."
    path = tmp_path / "t.txt"
    path.write_text(prefix + suffix, encoding="utf-8")
    assert path.stat().st_size // 2 == half
    bounds = _sharded_equals_single(path, tmp_path, 2)
    assert bounds[1] == half


def test_a_shard_with_no_special_token(tmp_path):
    # One long document in the middle: its shards hold no special token and are cut at line breaks.
    lines = "".join(f"Line {i}: the cat sat on the mat, café ☕ déjà vu.\n" for i in range(3000))
    path = tmp_path / "t.txt"
    path.write_text("intro" + EOT + lines + EOT + "outro", encoding="utf-8")
    bounds = _sharded_equals_single(path, tmp_path, 5)
    data = path.read_bytes()
    inner = [data[a:b] for a, b in zip(bounds[1:-2], bounds[2:-1], strict=True)]
    assert inner and all(EOT.encode() not in chunk for chunk in inner)


def test_multibyte_characters_at_every_shard_edge(tmp_path):
    # Documents of only multi-byte characters, separated by specials and line breaks, so every candidate cut
    # sits beside a 2-, 3- or 4-byte character.
    rng = random.Random(0)
    alphabet = "éßø€☕漢字🙂🎉ж"
    docs = ["\n".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30))) + "." for _ in range(5))
            for _ in range(300)]
    path = tmp_path / "t.txt"
    path.write_text(EOT.join(docs), encoding="utf-8")
    _sharded_equals_single(path, tmp_path, 5)


def test_more_shards_than_cuts_gives_empty_shards_and_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setattr(pretokenize, "SERIAL_BELOW_BYTES", 0)
    path = tmp_path / "t.txt"
    path.write_text(f"tiny text{EOT}and more", encoding="utf-8")
    bounds = _sharded_equals_single(path, tmp_path, 5, vocab_size=260)
    assert len(set(bounds)) < len(bounds)


def test_same_files_across_runs_and_worker_counts(tmp_path, monkeypatch):
    # Determinism: two runs, 1 vs 2 workers (tiny chunks, so the 2-worker runs really split the work) give
    # byte-identical tokenizer files and token files.
    monkeypatch.setattr(pretokenize, "SERIAL_BELOW_BYTES", 0)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 20_000)
    text = tmp_path / "web.txt"
    write_stories(text, 150_000, seed=5, style="web")
    files = []
    for run, workers in enumerate([1, 2, 2]):
        out = tmp_path / f"run{run}"
        vocab, merges = train_bpe(text, 400, [EOT], num_workers=workers)
        save_gpt2_files(vocab, merges, out)
        tok = Tokenizer.from_files(out / "vocab.json", out / "merges.txt", [EOT])
        tokenize_file(text, tok, out / "tokens.npy", num_workers=workers)
        files.append([(out / name).read_bytes() for name in ("vocab.json", "merges.txt", "tokens.npy")])
    assert files[0] == files[1] == files[2]


def test_shard_index_is_checked(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match="shard 3 is outside 0..2"):
        count_shard(path, 3, 3, [EOT], tmp_path / "c.json")
    with pytest.raises(ValueError, match="not a cs336lm pre-token counts file"):
        (tmp_path / "bad.json").write_text('{"a": 1}')
        read_counts(tmp_path / "bad.json")


# ---- the workflow's scatter/gather --------------------------------------------------------------------------

@pytest.mark.slow
def test_workflow_scatter_gather_equals_one_shard(tmp_path):
    from tests.helpers import TINY_CONFIG, output, planned_jobs, snakemake

    targets = ["results-tiny/tokenizers/tinystories/vocab.json", "results-tiny/tokenizers/tinystories/merges.txt",
               "results-tiny/tokens/tinystories/train.npy", "results-tiny/tokens/tinystories/valid.npy"]
    results = {}
    for shards in (1, 3):
        work = tmp_path / f"shards{shards}"
        work.mkdir()
        config = yaml.safe_load(TINY_CONFIG.read_text())
        config["data"]["tinystories"]["shards"] = shards
        configfile = work / "config.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
        dry = snakemake(work, "-n", *targets, configfile=configfile)
        assert dry.returncode == 0, output(dry)
        jobs = [rule for rule, _ in planned_jobs(dry)]
        assert jobs.count("count_pretokens") == shards and jobs.count("tokenize_shard") == 2 * shards
        run = snakemake(work, *targets, configfile=configfile)
        assert run.returncode == 0, output(run)
        results[shards] = {t: (work / t).read_bytes() for t in targets}
        stats = (work / "results-tiny/tokenizers/tinystories/train_stats.json").read_text()
        assert f'"num_shards": {shards}' in stats
        leftovers = list((work / "results-tiny").rglob("*.shards/*.npy")) + list(
            (work / "results-tiny").rglob("pretokens/*.json"))
        assert not leftovers, leftovers  # shard files are temporary
    assert results[1] == results[3]
