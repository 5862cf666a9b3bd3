"""Every deliverable of the handout, in handout order, as one registry entry: its question, the runs and files it
reads, its figures (plot function and caption) and its section writer. The workflow derives the plot jobs, the
report's inputs and the HTML captions from this list, and the writeup walks it, so adding a deliverable means
adding an entry here and its writer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cs336lm.reporting import figures
from cs336lm.reporting.document import Section
from cs336lm.reporting.inputs import ReportInputs
from cs336lm.reporting.sections import ablations, generation, owt, tokenizers, training, written
from cs336lm.reporting.targets import LEADERBOARD_BASELINE, LEADERBOARD_H100_HOURS

Plot = Callable[[ReportInputs, Path], None]
Writer = Callable[[Section, ReportInputs], None]


@dataclass(frozen=True)
class Figure:
    """A figure `figures/<name>.png`: drawn by `plot` from the runs of `roles` (only the ablation baseline and the
    runs whose config has `only` = (dotted key, value), when given), the manifest files `files` it needs and those
    of `optional` it reads when the configuration makes them (`{dataset}` in a key stands for every dataset)."""

    name: str
    plot: Plot
    caption: str
    roles: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    only: tuple[str, str] | None = None


@dataclass(frozen=True)
class Deliverable:
    """One handout problem: `name` as the handout spells it, its section number, title and question in one line,
    the runs (`roles`) and manifest files (`files`) it cannot be answered without, its figures and its writer."""

    name: str
    section: str
    title: str
    question: str
    write: Writer
    roles: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    needs: Callable[[ReportInputs], list[str]] | None = None  # anything else it cannot be answered without

    def missing(self, inputs: ReportInputs) -> list[str]:
        """What this configuration lacks to answer it: roles without runs, files it does not make, and what
        `needs` finds missing (e.g. an ablation without its variant)."""
        lacking = [f"runs of `{r}`" for r in self.roles if not inputs.has(r)] + \
            [f"`{f}`" for f in self.files if inputs.file(f) is None]
        return lacking or (self.needs(inputs) if self.needs else [])


def _ablation(name: str, title: str, question: str, spec: ablations.Ablation, caption: str) -> Deliverable:
    return Deliverable(name, "7.3", title, question, ablations.ablation(spec), roles=("ablations",),
                       needs=ablations.variant_needed(spec),
                       figures=(Figure(name, figures.ablation(spec.key, spec.value), caption, roles=("ablations",),
                                       only=(spec.key, spec.value)),))


DELIVERABLES: list[Deliverable] = [
    Deliverable("unicode1", "2.1", "Understanding Unicode",
                "What is chr(0), how does its repr differ from its printed form, and what does it do inside text?",
                tokenizers.unicode1, files=("problem/unicode1",)),
    Deliverable("unicode2", "2.2", "Unicode encodings",
                "Why train on UTF-8 bytes rather than UTF-16/32, why is the per-byte decoder wrong, and which "
                "two-byte sequence decodes to nothing?", tokenizers.unicode2, files=("problem/unicode2",)),
    Deliverable("train_bpe_tinystories", "2.5", "BPE training on TinyStories",
                "Train a byte-level BPE tokenizer (vocabulary 10,000) on TinyStories: how long and how much memory, "
                "what is the longest token and does it make sense, and where does the time go?",
                tokenizers.train_bpe("tinystories"),
                files=("bpe_benchmark/tinystories", "vocab/tinystories", "merges/tinystories")),
    Deliverable("train_bpe_expts_owt", "2.5", "BPE training on OpenWebText",
                "Train a byte-level BPE tokenizer (vocabulary 32,000) on OpenWebText: longest token, does it make "
                "sense, and how does it compare with the TinyStories tokenizer?",
                tokenizers.train_bpe("owt", compare_with="tinystories"),
                files=("bpe_benchmark/owt", "vocab/owt", "merges/owt")),
    Deliverable("tokenizer_experiments", "2.7", "Tokenizer experiments",
                "(a) Compression of each tokenizer on its own corpus, (b) the TinyStories tokenizer on OpenWebText, "
                "(c) throughput and the time to tokenize the 825 GB Pile, (d) why store ids as uint16?",
                tokenizers.tokenizer_experiments, files=("tokenizer_stats",)),
    Deliverable("transformer_accounting", "3.6", "Transformer LM resource accounting",
                "(a) Trainable parameters of our model in GPT-2 XL's configuration (d_ff 6,400) and the float32 "
                "memory to load it, (b) the matrix multiplies of a forward pass and their FLOPs, (c) which parts need "
                "the most FLOPs, (d) the FLOP shares for GPT-2 small, medium and large, (e) GPT-2 XL at a context "
                "of 16,384?",
                written.transformer_accounting, files=("problem/transformer_accounting",)),
    Deliverable("learning_rate_tuning", "4.2", "Tuning the learning rate (toy SGD)",
                "Run the handout's SGD example at learning rates 1e1, 1e2 and 1e3 for 10 training iterations: does "
                "the loss decay faster, slower, or diverge?", written.learning_rate_tuning,
                files=("problem/learning_rate_tuning",),
                figures=(Figure("toy_sgd", figures.toy_sgd, "Toy SGD problem: loss before each step at each "
                                "learning rate (log scale), from problems/learning_rate_tuning.csv.",
                                files=("problem/learning_rate_tuning",)),)),
    Deliverable("adamwAccounting", "4.3", "Resource accounting for training with AdamW",
                "(a) Peak float32 memory of AdamW training by component (d_ff = 4 × d_model), (b) a · batch_size + b "
                "for GPT-2 XL and the largest batch in 80 GB, (c) the FLOPs of one AdamW step, (d) the days to train "
                "GPT-2 XL for 400K steps of batch 1,024 on one A100 (19.5 TFLOP/s float32) at 50% MFU.",
                written.adamw_accounting, files=("problem/adamw_accounting",)),
    Deliverable("experiment_log", "7.1", "Experiment log",
                "Track every experiment: losses against gradient steps and wall-clock time, and a log of what was "
                "run.", training.experiment_log),
    Deliverable("learning_rate", "7.2", "Tuning the learning rate",
                "Sweep the learning rate (search strategy, at least one divergent run) and relate the best rate to "
                "the edge of stability.", training.learning_rate, roles=("lr_sweep",),
                figures=(Figure("lr_sweep", figures.lr_sweep, "Learning-rate sweep: validation and training loss "
                                "against steps and wall clock, one line per rate; dashed lines ending in a cross "
                                "diverged.", roles=("lr_sweep",)),
                         Figure("lr_edge", figures.lr_edge, "Final validation loss against the learning rate (log "
                                "x): finished rates as dots, the best as a star, diverged rates as crosses, and the "
                                "edge of stability shaded.", roles=("lr_sweep",), optional=("selection/lr_sweep",)))),
    Deliverable("batch_size_experiment", "7.2", "Batch size variations",
                "Vary the batch size from 1 up to the memory limit at equal tokens (re-tuning the learning rate as "
                "needed): how does it change training?", training.batch_size_experiment, roles=("batch_size",),
                figures=(Figure("batch_size", figures.batch_size, "Batch sizes at an equal token budget: validation "
                                "loss against tokens and wall clock, and training throughput per batch size.",
                                roles=("batch_size",)),)),
    Deliverable("generate", "7.2", "Generate text",
                "Generate at least 256 tokens (or until the first <|endoftext|>) from the trained model: how fluent "
                "is it, and which (at least two) factors make the output better or worse?", generation.generate,
                roles=("samples",),
                figures=(Figure("generation_grid", figures.generation_grid, "Sample quality over temperature × "
                                "top-p: distinct-2, repeated 4-grams and sample length, from "
                                "samples/generation_grid.csv.", files=("generation_grid",)),)),
    _ablation("layer_norm_ablation", "Remove RMSNorm",
              "Remove every RMSNorm: what happens at the previous optimal learning rate, and does a lower rate "
              "restore stability?", ablations.LAYER_NORM,
              "Without RMSNorm against the baseline: training and validation loss against steps."),
    _ablation("pre_norm_ablation", "Pre-norm vs post-norm",
              "Move the norms after each sublayer (post-norm): how does it compare with pre-norm?", ablations.PRE_NORM,
              "Post-norm against the pre-norm baseline: training and validation loss against steps."),
    _ablation("no_pos_emb", "NoPE vs RoPE",
              "Remove the position embeddings (NoPE): how does it compare with RoPE?", ablations.NO_POS_EMB,
              "NoPE against the RoPE baseline: training and validation loss against steps."),
    _ablation("swiglu_ablation", "SwiGLU vs SiLU",
              "Replace SwiGLU by a SiLU feed-forward with about as many parameters: how do they compare?",
              ablations.SWIGLU, "SiLU feed-forward against the SwiGLU baseline: training and validation loss "
              "against steps."),
    Deliverable("main_experiment", "7.4", "Experiment on OpenWebText",
                "Train the same model architecture on OpenWebText for the same iterations as TinyStories: its "
                "learning curve, the difference in losses from TinyStories and how to read them, and its generated "
                "text: how fluent is it, and why is it worse with the same model and compute?",
                owt.main_experiment, roles=("main",),
                figures=(Figure("main_experiment", figures.main_runs, "Main runs: validation loss against tokens, in "
                                "nats per token of each run's tokenizer and in bits per byte of text.",
                                roles=("main",), files=("valid_text/{dataset}", "valid_tokens/{dataset}")),)),
    Deliverable("leaderboard", "7.5", "Leaderboard",
                f"Within {LEADERBOARD_H100_HOURS:g} H100-hours on OpenWebText, beat the {LEADERBOARD_BASELINE:.1f} "
                "validation-loss baseline: final loss, curve "
                "against wall clock, and what was changed.", owt.leaderboard, roles=("leaderboard",),
                figures=(Figure("leaderboard", figures.leaderboard, "Leaderboard run: validation loss against wall "
                                "clock, with the wall-clock budget marked.", roles=("leaderboard",)),)),
]


def all_figures() -> dict[str, Figure]:
    """{figure name: Figure} of every deliverable."""
    return {f.name: f for d in DELIVERABLES for f in d.figures}
