"""Handout §2: Unicode (`unicode1`, `unicode2`), BPE training on TinyStories and OpenWebText (`train_bpe_*`) and
the tokenizer experiments (`tokenizer_experiments`), answered from problems/*.csv, the train_bpe benchmark and
stats files, the tokenizers and tables/tokenizer_stats.csv."""

from __future__ import annotations

import ast

import pandas as pd

from cs336lm.reporting.datasets import (
    describe_token,
    longest_tokens,
    read_benchmark,
    read_json,
    read_vocab,
)
from cs336lm.reporting.document import MISSING, Section, count, duration, num, percent, size, times
from cs336lm.reporting.inputs import ReportInputs

PILE_BYTES = 825e9  # the Pile, for tokenizer_experiments (c)
UINT16_IDS = 2**16


def unicode1(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/unicode1")
    table = pd.read_csv(path, keep_default_na=False)
    value = dict(zip(table["expression"], table["value (repr)"], strict=True))
    text = ast.literal_eval(value['"this is a test" + chr(0) + "string"'])
    s.table(table)
    s.bullets([
        f"(a) `chr(0)` returns `{value['chr(0)']}`, U+0000, the NULL control character.",
        f"(b) Its `__repr__()` is the visible escape sequence `{ast.literal_eval(value['repr(chr(0))'])}`, while "
        "`print` writes the character itself, which a terminal shows as nothing.",
        f"(c) In text it is an ordinary, invisible character: the string above has {len(text)} characters "
        f"({len(text) - 1} visible), and printing it shows `{text.replace(chr(0), '')}` with the NUL unseen "
        "between 'test' and 'string'.",
    ])
    s.read_from(path)


def unicode2(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("problem/unicode2")
    table = pd.read_csv(path)
    lengths = table[table.part == "(a)"]
    rows = []
    for r in lengths.itertuples():
        chars = int(r.characters)
        rows.append({"text": r.input, "characters": count(chars), **{
            label: f"{count(int(getattr(r, f'{c}_bytes')))} ({int(getattr(r, f'{c}_bytes')) / chars:.2f}/char, "
                   f"{percent(int(getattr(r, f'{c}_zero_bytes')) / max(int(getattr(r, f'{c}_bytes')), 1))} zeros)"
            for c, label in (("utf8", "UTF-8 bytes"), ("utf16", "UTF-16 bytes"), ("utf32", "UTF-32 bytes"))}})
    s.say("(a) Encoded size of the handout's example and of the first 64 KiB of each validation corpus:")
    s.table(rows)
    corpus = lengths.iloc[-1]
    shortest = int(corpus.utf8_bytes) <= min(int(corpus.utf16_bytes), int(corpus.utf32_bytes))
    s.say(f"On `{corpus.input}` text UTF-8 takes {int(corpus.utf8_bytes) / int(corpus.characters):.2f} bytes per "
          f"character against {int(corpus.utf16_bytes) / int(corpus.characters):.2f} (UTF-16) and "
          f"{int(corpus.utf32_bytes) / int(corpus.characters):.2f} (UTF-32), and "
          f"{percent(int(corpus.utf32_zero_bytes) / int(corpus.utf32_bytes))} of UTF-32's bytes are zeros. So on "
          "this text a byte-level tokenizer trained on UTF-8 sees "
          + ("the shortest sequences (one byte for each ASCII character)" if shortest else
             "longer sequences than UTF-16 here (three bytes for many non-Latin characters)")
          + ", spends no merges or context on the zero bytes that UTF-16 and UTF-32 pad with, and learns from the "
          "encoding its data already comes in (§2.2: "
          "\"UTF-8 being the dominant encoding for the Internet (more than 98% of all webpages)\").")
    wrong, bad = table[table.part == "(b)"], table[table.part == "(c)"]
    s.say("(b) The handout's `decode_utf8_bytes_to_str_wrong` decodes each byte on its own:")
    s.bullets(f"`{r.input}`: {r.result}" for r in wrong.itertuples())
    s.say("It is wrong because UTF-8 writes every non-ASCII character as 2–4 bytes that only decode together (a "
          "lead byte such as `0xC3` announces a two-byte sequence, so decoding it alone fails), so decoding byte by "
          "byte works only when every character is one byte, i.e. on ASCII.")
    s.say("(c) Two-byte sequences that do not decode to any Unicode character:")
    s.bullets(f"`{r.input}`: {r.result}" for r in bad.itertuples())
    s.say("`0xC0` can only begin an overlong encoding, which UTF-8 forbids; `0x80` is a continuation byte and "
          "cannot start a character; `0xE3` announces three bytes and gets two.")
    s.read_from(path)


def train_bpe(dataset: str, compare_with: str | None = None):
    """The writer of `train_bpe_<dataset>`: time, memory, longest token, where the time went; `compare_with`
    names the other tokenizer to contrast it with (handout (b) of train_bpe_expts_owt)."""

    def write(s: Section, inputs: ReportInputs) -> None:
        s.data_note([dataset])
        vocab = read_vocab(inputs.file(f"vocab/{dataset}"), inputs.file(f"merges/{dataset}"),
                           inputs.special_tokens(dataset))
        stats_path = inputs.file(f"bpe_stats/{dataset}")
        stats = read_json(stats_path) if stats_path else {}
        longest = longest_tokens(vocab)[0]
        bench_path = None if stats else inputs.file(f"bpe_benchmark/{dataset}")
        seconds, memory = _costs(stats, bench_path)
        ref = s.reference
        s.table([
            {"quantity": "vocabulary size (without special tokens)", "ours": count(len(vocab)),
             "reference": MISSING},
            {"quantity": "training time", "ours": seconds, "reference": ref.cell(f"bpe_time_s/{dataset}",
                                                                                 lambda v: f"{v:g} s")},
            {"quantity": "peak memory (resident)", "ours": memory,
             "reference": ref.cell(f"bpe_peak_memory_bytes/{dataset}", size)},
            {"quantity": "longest token", "ours": f"{longest.decode('utf-8', errors='replace')!r} ({len(longest)} "
             "bytes)", "reference": ref.cell(f"bpe_longest_token/{dataset}")},
            {"quantity": "handout budget", "ours": MISSING, "reference": ref.cell(f"bpe_budget/{dataset}")},
        ])
        s.say(f"The longest token, {longest.decode('utf-8', errors='replace')!r}, is {describe_token(longest)}.")
        _vocabulary_reached(s, inputs, dataset, len(vocab) + len(inputs.special_tokens(dataset)))
        _where_the_time_went(s, stats)
        s.read_from(stats_path or bench_path, inputs.file(f"vocab/{dataset}"))
        if compare_with:
            _compare_tokenizers(s, inputs, dataset, compare_with, vocab)

    return write


def _vocabulary_reached(s: Section, inputs: ReportInputs, dataset: str, reached: int) -> None:
    """The vocabulary asked for against the one BPE reached, and the vocabulary the models on this data use."""
    wanted = inputs.datasets.get(dataset, {}).get("vocab_size")
    models = sorted({sm.run_config.model.vocab_size for sm in inputs.all_summaries().values()
                     if sm.dataset.name == dataset})
    text = (f"Vocabulary: {count(wanted)} requested, {count(reached)} reached (special tokens included)"
            if wanted else f"Vocabulary: {count(reached)} tokens (special tokens included)")
    if wanted and reached < wanted:
        text += (f": BPE ran out of merges {count(wanted - reached)} short of the request, since no pair of "
                 "tokens is left to merge in this corpus")
    text += "."
    if models:
        text += (f" The models trained on `{dataset}` have model.vocab_size = {', '.join(map(count, models))}"
                 + (": the tokenizer's size, taken from its vocab.json." if models == [reached] else
                    f", not the tokenizer's {count(reached)}: ids above it are never trained."))
    s.say(text)


def _costs(stats: dict, bench_path) -> tuple[str, str]:
    """Training time and peak memory in words: from train_stats.json (every phase, the pre-token counting jobs
    included) when the run wrote one, otherwise from the train_bpe job's Snakemake benchmark file."""
    if not stats:
        bench = read_benchmark(bench_path)
        return f"{duration(bench.seconds)} (the train_bpe job)", size(bench.max_rss_bytes)
    phases = stats["seconds"]
    after_counting = phases["reading_counts"] + phases["merging"] + phases["saving"]
    wall = phases["counting_longest_shard"] + after_counting
    total = phases["counting_total"] + after_counting
    shards = stats.get("num_shards", 1)
    time = f"{duration(wall)}" + (f" with its {shards} counting jobs in parallel ({duration(total)} of job time)"
                                  if shards > 1 else "")
    rss = stats["peak_rss_mb"]
    memory = (f"{size(max(rss.values()) * 1e6)} (counting job {size(rss['counting_largest_shard_job'] * 1e6)}, "
              f"its largest worker {size(rss['counting_largest_worker'] * 1e6)}, merging "
              f"{size(rss['training'] * 1e6)})")
    return time, memory


def _where_the_time_went(s: Section, stats: dict) -> None:
    if not stats:
        s.say("_No phase timings: this configuration's train_bpe does not write train_stats.json._")
        return
    phases = {"pre-token counting": stats["seconds"]["counting_total"],
              "reading the counts": stats["seconds"]["reading_counts"], "merging": stats["seconds"]["merging"],
              "saving": stats["seconds"]["saving"]}
    total = sum(phases.values())
    worst = max(phases, key=phases.get)
    s.say("Where the time went (phase timings of the real run, train_stats.json): " + ", ".join(
        f"{name} {duration(sec)} ({percent(sec / total)})" for name, sec in phases.items())
        + f". The largest share is {worst}, over {count(stats['pretokens'])} pre-tokens "
        f"({count(stats['unique_pretokens'])} unique)" + (
            ": pre-tokenizing the text with the GPT-2 regex dominates, and it is what the parallel counting jobs "
            "split" if worst == "pre-token counting" else
            ": the merge loop dominates, since each of the merges updates the pair counts of the words it touches"
            if worst == "merging" else "") + ".")


def _compare_tokenizers(s: Section, inputs: ReportInputs, dataset: str, other: str, vocab: dict) -> None:
    if inputs.file(f"vocab/{other}") is None:
        return
    other_vocab = read_vocab(inputs.file(f"vocab/{other}"), inputs.file(f"merges/{other}"),
                             inputs.special_tokens(other))
    ours, theirs = set(vocab.values()), set(other_vocab.values())
    shared = ours & theirs
    only = sorted(ours - theirs, key=lambda t: (-len(t), t))[:5]
    s.say(f"Compared with the `{other}` tokenizer ({count(len(other_vocab))} tokens): {count(len(shared))} tokens "
          f"are in both ({percent(len(shared) / len(theirs))} of `{other}`'s vocabulary). The longest tokens only "
          f"`{dataset}` has are " + ", ".join(f"`{t.decode('utf-8', errors='replace')!r}`" for t in only)
          + ". In contrast, over the tokens only one of the two has: "
          + "; ".join(f"of the {count(len(tokens))} only in `{name}`, {token_kinds(tokens)}"
                      for name, tokens in ((dataset, ours - theirs), (other, theirs - ours)) if tokens) + ".")
    stats = inputs.file("tokenizer_stats")
    if stats is not None:
        table = pd.read_csv(stats)
        cross = table[(table.tokenizer == other) & (table.corpus == dataset)]
        own = table[(table.tokenizer == dataset) & (table.corpus == dataset)]
        if len(cross) and len(own):
            s.say(f"On `{dataset}` text the `{other}` tokenizer compresses to {num(cross.bytes_per_token.iloc[0], 3)} "
                  f"bytes per token against {num(own.bytes_per_token.iloc[0], 3)} for `{dataset}`'s own "
                  "(see tokenizer_experiments).")
        s.read_from(stats)
    _memory_note(s, inputs, dataset, other, len(vocab), len(other_vocab))


def _memory_note(s: Section, inputs: ReportInputs, dataset: str, other: str, size_ours: int, size_theirs: int) -> None:
    """When the merge phase's peak memory does not tell the two vocabularies apart, say that the measurement does
    not resolve the vocabulary's cost, rather than letting equal numbers read as equal costs."""
    paths = inputs.file(f"bpe_stats/{dataset}"), inputs.file(f"bpe_stats/{other}")
    if None in paths:
        return
    ours, theirs = (read_json(p)["peak_rss_mb"]["training"] for p in paths)
    if size_ours != size_theirs and abs(ours - theirs) <= 0.05 * max(ours, theirs):
        s.say(f"The merge phase peaked at {size(ours * 1e6)} for `{dataset}` ({count(size_ours)} tokens) and "
              f"{size(theirs * 1e6)} for `{other}` ({count(size_theirs)}): equal within 5% although the "
              f"vocabularies differ {times(max(size_ours, size_theirs) / min(size_ours, size_theirs))}. The peak is "
              "the process's resident memory, interpreter and libraries included, so at this corpus size it does "
              "not resolve what the vocabulary itself costs.")


def token_kinds(tokens: set[bytes]) -> str:
    """The shares of `tokens` that hold a digit, begin with a capital letter, or are not ASCII, in words."""
    texts = [t.decode("utf-8", errors="replace").strip() for t in tokens]
    shares = {"hold a digit": sum(any(c.isdigit() for c in t) for t in texts),
              "begin with a capital letter": sum(t[:1].isupper() for t in texts),
              "are not ASCII": sum(not t.isascii() for t in texts)}
    return ", ".join(f"{percent(n / len(texts))} {kind}" for kind, n in shares.items())


def tokenizer_experiments(s: Section, inputs: ReportInputs) -> None:
    path = inputs.file("tokenizer_stats")
    table = pd.read_csv(path, keep_default_na=False)
    datasets = sorted(set(table.tokenizer) | set(table.corpus))
    s.data_note(datasets)
    ref = s.reference
    compression = table.drop_duplicates(["tokenizer", "corpus"])
    rows = [{"tokenizer": r.tokenizer, "on corpus": r.corpus, "documents": count(r.documents),
             "bytes per token": num(r.bytes_per_token, 4),
             "reference": ref.cell(f"bytes_per_token/{r.tokenizer}/{r.corpus}", lambda v: f"{v:.4g}")}
            for r in compression.itertuples()]
    s.say("(a), (b) Compression ratio (bytes per token) on documents sampled at random from each corpus:")
    s.table(rows)
    own = {r.tokenizer: r.bytes_per_token for r in compression.itertuples() if r.tokenizer == r.corpus}
    s.say("(a) " + _sentence("; ".join(f"the `{name}` tokenizer compresses its own corpus to {num(ratio, 3)} bytes "
                                       "per token" for name, ratio in own.items())) if own else
          "(a) No tokenizer was measured on its own corpus.")
    for r in compression.itertuples():
        if r.tokenizer != r.corpus and r.corpus in own:
            s.say("(b) " + cross_compression(r.tokenizer, r.corpus, r.bytes_per_token, own[r.corpus],
                                    _vocab_size(inputs, r.tokenizer), _vocab_size(inputs, r.corpus)))
    _throughput(s, table)
    largest = max(_vocab_size(inputs, d) or inputs.datasets.get(d, {}).get("vocab_size", 0) for d in datasets)
    smallest = ", the smallest unsigned integer type that holds them all (uint8 stops at 255)" if largest > 256 else ""
    fits = (f"every id fits in uint16{smallest}, at two bytes per id, half of int32's, which matters for arrays of "
            "billions of token ids that training memory-maps") if largest <= UINT16_IDS else \
        "uint16 cannot hold every id of this vocabulary: ids at or above 65,536 need a wider type"
    s.say(f"(d) The largest vocabulary here has {count(largest)} entries, so its ids run from 0 to "
          f"{count(largest - 1)}, {'within' if largest <= UINT16_IDS else 'beyond'} uint16's 0 to 65,535: {fits}.")
    s.read_from(path)


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def _vocab_size(inputs: ReportInputs, dataset: str) -> int | None:
    path = inputs.file(f"vocab/{dataset}")
    return len(read_json(path)) if path else None


def cross_compression(tokenizer: str, corpus: str, foreign: float, own: float, foreign_vocab: int | None,
                      own_vocab: int | None) -> str:
    """(b): a tokenizer on another corpus's text against that corpus's own tokenizer, in bytes per token; the
    direction and its size come from the two numbers."""
    extra = own / foreign - 1  # tokens the foreign tokenizer needs for the same text, relative to the own one
    text = (f"The `{tokenizer}` tokenizer gets {num(foreign, 3)} bytes per token on `{corpus}` text against "
            f"{num(own, 3)} for `{corpus}`'s own tokenizer")
    sizes = (f" (vocabularies of {count(foreign_vocab)} and {count(own_vocab)} entries)"
             if foreign_vocab and own_vocab else "")
    if abs(extra) < 0.01:
        return text + f": the same compression within 1%{sizes}."
    if extra > 0:
        return (text + f": {percent(extra)} more tokens for the same text{sizes}. Words its vocabulary never "
                "merged fall apart into shorter pieces.")
    return (text + f": {percent(-extra)} fewer tokens for the same text, so it compresses `{corpus}` better than "
            f"the tokenizer trained on it{sizes}.")


def _throughput(s: Section, table: pd.DataFrame) -> None:
    """(c): encoding throughput of both encoder paths on the same text, and the Pile estimate from those rates."""
    paths = (("default", "mb_per_s"), ("from-scratch Python", "mb_per_s_python"))
    rows = []
    for r in table.itertuples():
        measured = (f"{size(r.throughput_bytes)}, the whole validation split" if r.throughput_text == "whole file"
                    else f"{size(r.throughput_bytes)} slice of the validation split")
        for label, column in paths:
            rate = getattr(r, column) * 1e6
            rows.append({"tokenizer": r.tokenizer, "on corpus": r.corpus, "measured on": measured,
                         "encoder": f"{r.encoder} (default)" if column == "mb_per_s" else label,
                         "throughput": f"{size(rate)}/s", "825 GB Pile, one process": duration(PILE_BYTES / rate),
                         "reference": s.reference.cell(f"encode_bytes_per_s/{r.corpus}", lambda v: f"{size(v)}/s")
                         if r.tokenizer == r.corpus and column == "mb_per_s" else MISSING})
    s.say("(c) Encoding throughput in one process, each encoder on the same contiguous text: at least 1 MB of the "
          "corpus' validation split, or the whole split where it is smaller (the \"measured on\" column says "
          "which):")
    s.table(rows)
    s.say("`Tokenizer.encode` hands long texts to tiktoken's Rust core built from our own merges (\"tiktoken core\") "
          "when a check shows that it reproduces them exactly, and runs the from-scratch Python encoder otherwise; "
          "the second row of each pair is that from-scratch encoder, timed on the same text.")
    small = table[table.throughput_bytes < 1e6]
    if len(small):
        s.say(f"The validation split of {', '.join(f'`{c}`' for c in sorted(set(small.corpus)))} holds less than "
              "1 MB, so its rates come from the whole split and are less precise than a 1 MB measurement.")
    for label, column in paths:
        fast, slow = table[column].max() * 1e6, table[column].min() * 1e6
        span = duration(PILE_BYTES / fast) if duration(PILE_BYTES / fast) == duration(PILE_BYTES / slow) else \
            f"{duration(PILE_BYTES / fast)} to {duration(PILE_BYTES / slow)} (the fastest and slowest rate above)"
        s.say(f"From these rates, the {label} encoder would take {span} for the 825 GB Pile in one process; "
              "tokenize_corpus splits a corpus over its worker processes, which divides this by about the worker "
              "count.")
