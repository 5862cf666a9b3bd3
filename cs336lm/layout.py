"""Where every file of a workflow's results lives, under its `results_root`: the one place a path is spelled.

The workflow's rules name their outputs with these methods, given Snakemake wildcards as arguments
(`Layout(root).vocab("{dataset}")` is a rule's output pattern, `.vocab("owt")` one file), and the report reads
the same paths back. Paths are strings, as Snakemake takes them.
"""

from __future__ import annotations

SPLITS = ("train", "valid")
# Beside the selection files (`<sweep>.json`), an experiment's noise floor and its combination of modifications.
NOISE_SUFFIX, COMBINATION_SUFFIX = ".noise.json", ".combination.json"


class Layout:
    """The results tree under `root`."""

    def __init__(self, root: str):
        self.root = str(root).rstrip("/")

    def _under(self, *parts: object) -> str:
        return "/".join((self.root, *map(str, parts)))

    # ---- corpora, tokenizers and token files -----------------------------------------------------------------

    def corpus_text(self, dataset: str, split: str, synthetic: bool = False) -> str:
        """A corpus split's text: downloaded, or written by the synthesizer."""
        return self._under("synthetic" if synthetic else "downloads", dataset, f"{split}.txt")

    def tokenizer_dir(self, dataset: str) -> str:
        return self._under("tokenizers", dataset)

    def vocab(self, dataset: str) -> str:
        return f"{self.tokenizer_dir(dataset)}/vocab.json"

    def merges(self, dataset: str) -> str:
        return f"{self.tokenizer_dir(dataset)}/merges.txt"

    def bpe_stats(self, dataset: str) -> str:
        """What training the tokenizer measured (time, memory, longest token)."""
        return f"{self.tokenizer_dir(dataset)}/train_stats.json"

    def pretoken_counts(self, dataset: str, shard: object) -> str:
        return f"{self.tokenizer_dir(dataset)}/pretokens/{shard}.json"

    def tokens(self, dataset: str, split: str) -> str:
        return self._under("tokens", dataset, f"{split}.npy")

    def token_shard(self, dataset: str, split: str, shard: object) -> str:
        return self._under("tokens", dataset, f"{split}.shards", f"{shard}.npy")

    # ---- runs, sweeps and probes -----------------------------------------------------------------------------

    def run_dir(self, experiment: str, variant: str) -> str:
        """Where a run trains under its own name (names trained once share the first one's directory)."""
        return self._under("runs", experiment, variant)

    # A run directory's files: the trained model, its metrics lines and summary, what the workflow asked of the
    # scheduler, and the progress folder a run resumes from (the last two undeclared, so Snakemake keeps them).
    @staticmethod
    def model(run_dir: str) -> str:
        return f"{run_dir}/model.pt"

    @staticmethod
    def metrics(run_dir: str) -> str:
        return f"{run_dir}/metrics.jsonl"

    @staticmethod
    def summary(run_dir: str) -> str:
        return f"{run_dir}/summary.json"

    @staticmethod
    def request(run_dir: str) -> str:
        return f"{run_dir}/request.json"

    @staticmethod
    def progress(run_dir: str) -> str:
        return f"{run_dir}/progress"

    def sweep_plan(self, experiment: str, round: object) -> str:
        """An edge search's plan after `round` rounds."""
        return self._under("sweeps", experiment, f"round{round}.json")

    def selections(self) -> str:
        """The folder of every selection file."""
        return self._under("selections")

    def selection(self, sweep: str) -> str:
        """The selection file of a sweep: an experiment (`lr_sweep`), or a tuned variant
        (`batch_size/batch_size~64`)."""
        return self._under("selections", f"{sweep}.json")

    def noise(self, experiment: str) -> str:
        """The noise floor of an experiment that repeats variants with other seeds (cs336lm.experiments.noise)."""
        return self._under("selections", f"{experiment}{NOISE_SUFFIX}")

    def combination(self, experiment: str) -> str:
        """The modifications of a candidates experiment that helped beyond its noise floor, merged
        (cs336lm.experiments.combination)."""
        return self._under("selections", f"{experiment}{COMBINATION_SUFFIX}")

    def probe(self, experiment: str) -> str:
        """The largest batch size that fits, for an experiment whose grid ends in `max`."""
        return self._under("probes", f"{experiment}.json")

    # ---- what the report shows ---------------------------------------------------------------------------------

    def problem(self, name: str) -> str:
        return self._under("problems", f"{name}.csv")

    def samples(self, experiment: str, variant: str) -> str:
        return self._under("samples", experiment, f"{variant}.md")

    def sample_scores(self, experiment: str, variant: str) -> str:
        return self._under("samples", experiment, f"{variant}.json")

    def generation_grid(self) -> str:
        return self._under("samples", "generation_grid.csv")

    def table(self, name: str, suffix: str = "csv") -> str:
        """A table of the report (`runs`, `tokenizer_stats`)."""
        return self._under("tables", f"{name}.{suffix}")

    def figure(self, name: str) -> str:
        return self._under("figures", f"{name}.png")

    def report(self) -> str:
        return self._under("report.md")

    # ---- every job's log and benchmark -------------------------------------------------------------------------

    def log(self, rule: str, job: str) -> str:
        """A job's log: `job` names it among its rule's jobs (`{dataset}_{split}`, `all`)."""
        return self._under("logs", rule, f"{job}.log")

    def benchmark(self, rule: str, job: str) -> str:
        """A job's time and memory as Snakemake measures them (the report reads train_bpe's)."""
        return self._under("benchmarks", rule, f"{job}.tsv")
