#!/usr/bin/env bash
# One call that checks a GPU machine end to end, in ≤ 8 minutes on one H100/H200, no network:
#   1. the GPU-marked tests (a skipped one fails the check: on a GPU nothing may skip);
#   2. the train-step benchmark at course shapes, bf16 + torch.compile, batch 128: tokens/s and MFU against the
#      detected GPU's peak, and the ratio to the same model built from torch built-ins;
#   3. a 2-minute run of the course model through the workflow's train_lm rule (real `python -m snakemake`, a
#      synthetic TinyStories-style corpus, bench/gpu_check.yaml): tokens/s and peak memory;
#   4. the largest batch of that run's configuration that fits (cs336lm.training.batch_probe);
#   5. the leaderboard run's configuration (config.yaml; the modifications its candidates chose in results/, or
#      before that the baseline and all of them): tokens/s and the tokens that trains in its 1.5 hours;
# then one summary line. `--device cpu` runs the same steps on tiny shapes (bench/gpu_check_cpu.yaml) as a smoke test.
#
#   bash bench/gpu_check.sh [--device cuda|cpu] [--out DIR]     # DIR (default gpu-check/, or $GPU_CHECK_OUT)
#
# Everything printed also goes to DIR/gpu_check.log; each step's results are JSON files beside it.
set -Eeuo pipefail

DEVICE=cuda
OUT=${GPU_CHECK_OUT:-gpu-check}
while (($#)); do
    case $1 in
        --device) DEVICE=${2:?--device needs cuda or cpu}; shift 2 ;;
        --out) OUT=${2:?--out needs a directory}; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[[ $DEVICE == cuda || $DEVICE == cpu ]] || { echo "gpu_check: --device must be cuda or cpu, not '$DEVICE'" >&2; exit 2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu_check.log
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
trap 'echo "gpu_check: FAILED at line $LINENO (exit $?); the log is $LOG"' ERR
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}  # this checkout's cs336lm, installed or not
PYTHON=${PYTHON:-python}
START=$SECONDS
phase() { echo; echo "== [$((SECONDS - START))s] $*"; }

if [[ $DEVICE == cuda ]]; then
    CONFIGS=("$REPO/bench/gpu_check.yaml")
    BENCH=(--ours fast --dtype bfloat16 --compile --batch-size 128 --rounds 3 --steps 10 --warmup 3)
    PROBE_CAP=none PROBE_MAX=4096 TRAIN_THREADS=8
    LEADERBOARD=(--warmup 3 --steps 10)
    "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' || {
        echo "gpu_check: torch sees no CUDA device (torch.version.cuda = $("$PYTHON" -c 'import torch; print(torch.version.cuda)')); for a CPU smoke run use --device cpu"
        exit 1
    }
else
    CONFIGS=("$REPO/bench/gpu_check.yaml" "$REPO/bench/gpu_check_cpu.yaml")
    BENCH=(--ours fast --batch-size 8 --rounds 1 --steps 2 --warmup 1 --set model.vocab_size=400
           --set model.context_length=32 --set model.d_model=32 --set model.num_layers=2 --set model.num_heads=2
           --set model.d_ff=96)
    PROBE_CAP=$((2 * 1024 ** 3)) PROBE_MAX=8 TRAIN_THREADS=1
    LEADERBOARD=(--warmup 1 --steps 2 --set model.vocab_size=400 --set model.context_length=32
                 --set model.d_model=32 --set model.num_layers=2 --set model.num_heads=2 --set model.d_ff=96
                 --set train.batch_size=8)
fi
WORK=$OUT/workflow
RUN=results/runs/gpu_check/course
snakemake_run() {
    "$PYTHON" -m snakemake "$@" --snakefile "$REPO/Snakefile" --directory "$WORK" --configfile "${CONFIGS[@]}" \
        --cores "$(nproc)" --set-threads train_lm="$TRAIN_THREADS" --rerun-incomplete --show-failed-logs
}
BACKGROUND=()
trap 'for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT

phase "corpus and tokenizer (in the background, while the tests run)"
mkdir -p "$WORK"
snakemake_run results/tokens/tinystories/train.npy results/tokens/tinystories/valid.npy >"$OUT/prepare.log" 2>&1 &
PREPARE=$!
BACKGROUND+=("$PREPARE")

phase "GPU-marked tests"
mapfile -t GPU_TEST_FILES < <(grep -rlE 'pytest\.mark\.gpu' "$REPO/tests" | sort)
((${#GPU_TEST_FILES[@]})) || { echo "gpu_check: no test file under $REPO/tests has a pytest.mark.gpu test"; exit 1; }
(cd "$REPO" && "$PYTHON" -m pytest -m gpu -q -rs -p no:cacheprovider --junitxml "$OUT/gpu_tests.xml" \
    "${GPU_TEST_FILES[@]}")
"$PYTHON" - "$OUT/gpu_tests.xml" "$DEVICE" <<'EOF'
import sys, xml.etree.ElementTree as ET
suite = ET.parse(sys.argv[1]).getroot().iter("testsuite").__next__()
tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
if sys.argv[2] == "cuda" and (skipped or not tests):
    sys.exit(f"gpu_check: {skipped} of {tests} GPU tests skipped on a GPU machine (reasons above)")
EOF

phase "train-step benchmark: ours vs torch built-ins"
"$PYTHON" "$REPO/bench/bench_train_step.py" --device "$DEVICE" "${BENCH[@]}" --json "$OUT/bench.json"

phase "2-minute training run through train_lm"
wait "$PREPARE" || { cat "$OUT/prepare.log"; echo "gpu_check: preparing the corpus failed"; exit 1; }
if [[ $DEVICE == cuda ]] && command -v nvidia-smi >/dev/null; then
    GPU_INDEX=${CUDA_VISIBLE_DEVICES:-0}
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 -i "${GPU_INDEX%%,*}" \
        >"$OUT/gpu_memory_mib.csv" &
    BACKGROUND+=("$!")
fi
snakemake_run "$RUN/summary.json"
tail -n 3 "$WORK/results/logs/train_lm/gpu_check/course.log"

phase "largest batch that fits (batch probe, the run's configuration)"
"$PYTHON" - "$WORK/$RUN/summary.json" "$PROBE_CAP" "$PROBE_MAX" "$OUT/probe.json" <<'EOF'
import json, sys
from cs336lm.training.batch_probe import largest_batch_size
from cs336lm.config import RunConfig
from cs336lm.training.summary import read_summary

summary, cap, max_batch_size, out = sys.argv[1:]
cfg = RunConfig.from_dict(read_summary(summary).config)
result = largest_batch_size(cfg, memory_cap_bytes=None if cap == "none" else int(cap),
                            max_batch_size=int(max_batch_size))
for t in result.trials:
    peak = f"{t.peak_bytes / 2**30:.2f} GiB" if t.peak_bytes else "n/a"
    print(f"  batch {t.batch_size:>5}: {'fits' if t.fits else 'does not fit'} (peak {peak}){' - ' + t.error if t.error else ''}")
print(f"  largest batch: {result.batch_size}")
open(out, "w").write(json.dumps(result.to_dict(), indent=2) + "\n")
EOF

phase "the leaderboard configuration: tokens/s, and tokens within its wall-clock budget"
"$PYTHON" "$REPO/bench/bench_leaderboard.py" --device "$DEVICE" --configfile "$REPO/config.yaml" \
    --machine "$REPO/profiles/slurm/machine.yaml" --results "$REPO/results" "${LEADERBOARD[@]}" \
    --json "$OUT/leaderboard.json"

phase "summary"
"$PYTHON" - "$OUT" "$WORK" "$RUN" "$((SECONDS - START))" <<'EOF'
import csv, json, sys, xml.etree.ElementTree as ET
from pathlib import Path
from cs336lm.training.summary import read_summary

out, work, run, seconds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
suite = next(ET.parse(out / "gpu_tests.xml").getroot().iter("testsuite"))
skipped = int(suite.get("skipped"))
passed = int(suite.get("tests")) - skipped - int(suite.get("failures")) - int(suite.get("errors"))
bench = json.loads((out / "bench.json").read_text())
summary = read_summary(work / run / "summary.json")
probe = json.loads((out / "probe.json").read_text())
host = next(csv.DictReader(open(work / "results/benchmarks/train_lm/gpu_check/course.tsv"), delimiter="\t"))
gpu_memory = out / "gpu_memory_mib.csv"
samples = [int(n) for n in gpu_memory.read_text().split() if n.isdigit()] if gpu_memory.exists() else []
memory = f"peak GPU memory {max(samples) / 1024:.1f} GiB, " if samples else ""
mfu = lambda v: f", MFU {v:.1%}" if v else ""
ours, ratio = bench["ours"], bench["ratio (tokens/s)"]["median"]
board = json.loads((out / "leaderboard.json").read_text())["runs"][0]
print(f"gpu_check OK on {bench['device']} in {seconds // 60}m{seconds % 60:02d}s | GPU tests {passed} passed"
      f"{f', {skipped} skipped' if skipped else ''} | "
      f"train step {bench['dtype']}{' + compile' if bench['compile'] else ''} batch {bench['batch_size']}: "
      f"{ours['tokens/s']:,.0f} tok/s{mfu(ours['mfu'])}, {ratio:.2f}x built-ins | "
      f"train_lm {summary.wall_time_s:.0f}s: {summary.tokens_per_s:,.0f} tok/s{mfu(summary.mfu)}, "
      f"{memory}host RSS {float(host['max_rss']) / 1024:.1f} GiB | largest batch {probe['batch_size']} | "
      f"leaderboard ({board['configuration']}): {board['tokens/s']:,.0f} tok/s, "
      f"{board['tokens_in_budget'] / 1e9:.3g}B tokens in {board['budget_s'] / 3600:g} h")
EOF
