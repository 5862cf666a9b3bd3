"""profiles/slurm on a real single-node Slurm cluster with fake H100 GPUs (ci/slurm/start-local-slurm.sh).

The cluster tests need root and apt (Debian) and run only under CI or with CS336_SLURM_TESTS=1 (tests/conftest.py);
they start the cluster once for the module and remove what they started and installed again.
They run the tiny test configuration (tests/data/tiny_config.yaml, cut to one lr sweep of two runs) through
the profile, preempt one training run with `scancel --signal=TERM`, and check from sacct where every job ran; a
request that no node can meet stops the run before anything is submitted (also checked without a cluster, with
stand-in Slurm commands).
The site is supplied as a site would supply it: CS336_* environment variables (README, "Running on a Slurm cluster").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CI_SLURM = REPO / "ci" / "slurm"
PROFILE = REPO / "profiles" / "slurm"
TINY_CONFIG = REPO / "tests" / "data" / "tiny_config.yaml"
SLURM_COMMANDS = {"sacct", "sacctmgr", "salloc", "sattach", "sbatch", "sbcast", "scancel", "scontrol", "scrontab",
                  "sdiag", "sh5util", "sinfo", "sprio", "squeue", "sreport", "srun", "sshare", "sstat", "strigger",
                  "sview"}
# The local cluster's names, given the way a site gives them; CI-sized CPUs (one per job: the local cluster has the
# machine's cores, 2 in CI) and memory; fast status polling.
SITE = {
    "CS336_SLURM_ACCOUNT": "ci",
    "CS336_CPU_PARTITION": "cpu",
    "CS336_GPU_PARTITION": "gpu",
    "CS336_GPU_MODEL": "h100",
    "CS336_GPU_CONSTRAINT": "h100",
    "CS336_DATA_CPUS": "1",
    "CS336_GPU_CPUS": "1",
    "CS336_GPU_MEM_MB": "1500",
    "CS336_CPU_MEM_MB": "1500",
    "CS336_SLURM_INIT_SECONDS": "1",
    "CS336_SLURM_KEEP_LOGS": "true",
}
GPU_RULES = {"train_lm", "generate_samples", "sample_grid"}
PREEMPTED = "long"  # the lr_sweep variant that gets SIGTERM while it trains
# A guard against a hung run, not a pass condition: the whole profile run, preemption and retry included, takes a
# few minutes on an idle machine and may take several times that on a loaded one.
RUN_LIMIT_S = 1800


def path_without_slurm(tmp_path: Path) -> str:
    """A PATH with everything of this machine's except Slurm's client commands."""
    bin_dir = tmp_path / "bin-without-slurm"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = bin_dir / name
            if name not in SLURM_COMMANDS and not target.exists() and not target.is_symlink():
                target.symlink_to(Path(directory) / name)
    return f"{Path(sys.executable).parent}{os.pathsep}{bin_dir}"


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, limit_s: int = 600) -> list[str]:
    """The snakemake command line for the repo's workflow in `workdir`, stopped after `limit_s` (a guard against a
    hang, generous for a loaded machine, never a pass condition); a hung snakemake ignores TERM, so INT."""
    command = ["timeout", "-s", "INT", "-k", "30", str(limit_s), sys.executable, "-m", "snakemake",
               "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--profile", str(PROFILE)]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    return command + list(args)


# ---- without a cluster ---------------------------------------------------------------------------------------

def test_dry_run_without_slurm_submits_nothing(tmp_path):
    """`snakemake -n --profile profiles/slurm` works where no Slurm is installed (course config, full DAG)."""
    env = {**os.environ, "PATH": path_without_slurm(tmp_path)}
    env = {k: v for k, v in env.items() if not k.startswith("CS336_")}
    command = snakemake(tmp_path / "work", "-n", configfile=REPO / "config.yaml")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "This was a dry-run" in out
    assert re.search(r"^train_lm\s+\d+", out, re.M), out[-3000:]
    assert "submitted with SLURM jobid" not in out


def test_check_site_without_sbatch_says_so(tmp_path):
    """No Slurm on PATH: a clear message instead of the plugin's `No such file or directory: 'sacctmgr'`."""
    env = {**os.environ, "PATH": path_without_slurm(tmp_path)}
    done = subprocess.run([sys.executable, str(PROFILE / "check_site.py")], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "sbatch is not on PATH" in done.stderr and "Running on a Slurm cluster" in done.stderr


def fake_slurm(tmp_path: Path) -> tuple[str, Path]:
    """A PATH whose Slurm commands are stand-ins: sinfo describes partitions cpu (default) and gpu of one node with
    4 CPUs, 15000 MB and 2 H100s; the others succeed silently. Each call is appended to the returned log."""
    bin_dir, calls = tmp_path / "fake-slurm", tmp_path / "slurm-calls.log"
    bin_dir.mkdir()
    sinfo = """case "$*" in
  *-N*) echo 'node01|4|15000|gpu:h100:2(S:0)|h100' ;;
  *%G*) echo 'gpu:h100:2(S:0)|h100' ;;
  *) printf 'cpu*\\ngpu\\n' ;;
esac"""
    for name in ("sbatch", "sinfo", "scontrol", "sacctmgr", "squeue", "sacct"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n' + (sinfo if name == "sinfo" else "") + "\n")
        script.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{path_without_slurm(tmp_path)}", calls


def test_requests_that_fit_no_node_stop_the_run_before_submission(tmp_path):
    """A data job asking more CPUs than the cluster's nodes have: the run stops at its start naming the rule, the
    amounts and CS336_DATA_CPUS; nothing reaches sbatch. The same site with the CPUs lowered passes the check."""
    path, calls = fake_slurm(tmp_path)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CS336_")}, "PATH": path,
           "CS336_CPU_PARTITION": "cpu", "CS336_GPU_PARTITION": "gpu", "CS336_GPU_MEM_MB": "15000",
           "CS336_CPU_MEM_MB": "4000"}
    done = subprocess.run(snakemake(tmp_path / "work", configfile=TINY_CONFIG), env=env, capture_output=True,
                          text=True)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert ("count_pretokens asks 16 CPUs, 4000 MB memory per job, which no node of partition 'cpu' has (at most "
            "4 CPUs, 15000 MB memory per node), so its jobs would pend forever: set CS336_DATA_CPUS to at most 4"
            ) in out, out[-3000:]
    assert "train_lm asks 8 CPUs" in out and "set CS336_GPU_CPUS to at most 4" in out, out[-3000:]
    assert not [line for line in calls.read_text().splitlines() if line.startswith("sbatch")]

    check = [sys.executable, str(PROFILE / "check_site.py")]
    by_hand = subprocess.run(check, env=env, capture_output=True, text=True)
    assert by_hand.returncode == 2 and "set CS336_DATA_CPUS to at most 4" in by_hand.stderr, by_hand.stderr
    fitting = {**env, "CS336_DATA_CPUS": "4", "CS336_GPU_CPUS": "4"}
    by_hand = subprocess.run(check, env=fitting, capture_output=True, text=True)
    assert by_hand.returncode == 0, by_hand.stderr


# ---- on a local Slurm cluster --------------------------------------------------------------------------------

def cluster_running() -> bool:
    """Whether start-local-slurm.sh's controller runs now (its pid file names a live slurmctld)."""
    state = Path(os.environ.get("SLURM_LOCAL_STATE_DIR", "/var/spool/slurm-local"))
    try:
        pid = (state / "slurmctld.pid").read_text().strip()
        return Path(f"/proc/{pid}/comm").read_text().strip() == "slurmctld"
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def slurm_cluster():
    """The local cluster for this module, started (Slurm installed with apt if needed) unless it already runs.

    A cluster this fixture started is purged afterwards, packages it installed included: Slurm's clients without a
    controller make every later `snakemake` call on the machine wait ~10 s. Failing to start is a failure, not a
    skip: these tests run only where asked for (CI, or CS336_SLURM_TESTS=1).
    """
    if os.geteuid() != 0:
        pytest.fail("the local Slurm cluster needs root (it installs packages, writes /etc/slurm, starts daemons)")
    if not shutil.which("sbatch") and not shutil.which("apt-get"):
        pytest.fail("no Slurm installed and no apt-get to install it (ci/slurm/start-local-slurm.sh is for Debian)")
    if cluster_running():
        yield
        return
    try:
        started = subprocess.run(["bash", str(CI_SLURM / "start-local-slurm.sh")], capture_output=True, text=True,
                                 timeout=300)
        if started.returncode != 0:
            pytest.fail(f"could not start the local Slurm cluster: {started.stderr.strip()[-1500:]}")
        yield
    except subprocess.TimeoutExpired:
        pytest.fail("could not start the local Slurm cluster: ci/slurm/start-local-slurm.sh timed out after 300 s")
    finally:
        stopped = subprocess.run(["bash", str(CI_SLURM / "stop-local-slurm.sh"), "--purge"], capture_output=True,
                                 text=True, timeout=600)
        assert stopped.returncode == 0, stopped.stderr[-1500:]


@pytest.fixture
def site_env():
    """This machine's environment plus the site settings; jobs inherit it (sbatch --export=ALL), so they import
    cs336lm from this checkout even where it is not installed."""
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **SITE, "PYTHONPATH": pythonpath}


def slurm_test_config(tmp_path: Path) -> Path:
    """tests/data/tiny_config.yaml cut to its default dataset (at most 1.5 MB of synthetic text) and a two-run
    lr sweep; `long` trains for 25 s of wall clock so it can be preempted while it runs; samples from both runs
    exercise generate_samples."""
    if not TINY_CONFIG.exists():
        pytest.fail(f"{TINY_CONFIG.relative_to(REPO)} (the workflow's tiny test configuration) is missing")
    config = yaml.safe_load(TINY_CONFIG.read_text())
    dataset = config.get("defaults", {}).get("dataset") or next(iter(config["data"]))
    config["results_root"] = "results"
    config["data"] = {dataset: config["data"][dataset]}
    for split, cap in (("train", 1_500_000), ("valid", 150_000)):  # BPE and tokenization in seconds
        source = config["data"][dataset][split]
        if "synthetic" in source:
            source["synthetic"]["bytes"] = min(source["synthetic"]["bytes"], cap)
    config["experiments"] = {"lr_sweep": {"variants": {
        "short": {"optim.lr_max": 3.0e-3},
        PREEMPTED: {"optim.lr_max": 1.0e-3, "train.token_budget": 10**9, "train.wall_clock_budget_s": 25.0},
    }}}
    config["report"] = {"lr_sweep": "lr_sweep", "samples": ["lr_sweep"]}
    path = tmp_path / "slurm_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def read_metrics(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip().endswith("}")]


def squeue_jobs() -> list[tuple[str, str, str]]:
    """(job id, comment, state) of the queue; the plugin puts rule_<rule>_wildcards_<values> in the comment."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T"], capture_output=True, text=True).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.count("|") == 2]


def sacct_jobs(job_ids: list[str], timeout_s: float = 60) -> dict[str, dict[str, str]]:
    """{job id: sacct fields} once every job is recorded in a final state (slurmdbd lags the controller)."""
    fields = ["jobid", "partition", "account", "state", "exitcode", "alloctres"]
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", ",".join(fields), "-j", ",".join(job_ids)],
                             capture_output=True, text=True).stdout
        rows = {r["jobid"]: r for r in (dict(zip(fields, line.split("|"), strict=False)) for line in out.splitlines())}
        final = all(j in rows and rows[j]["state"].split()[0] not in {"PENDING", "RUNNING", "COMPLETING"}
                    for j in job_ids)
        if final or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def submitted_jobs(log: str) -> list[tuple[str, str, str]]:
    """(rule, wildcards dir, Slurm job id) of every submission, in order, from snakemake's output."""
    jobs = []
    for job_id, path in re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+?)\)", log):
        parts = Path(path).parts
        i = max(k for k, part in enumerate(parts) if part.startswith("rule_"))
        jobs.append((parts[i].removeprefix("rule_"), "/".join(parts[i + 1:-1]), job_id))
    return jobs


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slurm
@pytest.mark.slow
def test_site_errors_name_the_setting(slurm_cluster, site_env, tmp_path):
    """Wrong account, partition or GPU model: the message names the CS336_* variable; nothing is submitted."""
    check = [sys.executable, str(PROFILE / "check_site.py")]
    assert subprocess.run(check, env=site_env, capture_output=True, text=True).returncode == 0
    for var, value, expected in [("CS336_SLURM_ACCOUNT", "nosuch", "is not one of your Slurm accounts"),
                                 ("CS336_GPU_PARTITION", "nosuch", "no such partition"),
                                 ("CS336_GPU_MODEL", "a100", "has no GPUs of that type")]:
        done = subprocess.run(check, env={**site_env, var: value}, capture_output=True, text=True)
        assert done.returncode == 2, (var, done.stderr)
        assert f"{var}='{value}'" in done.stderr and expected in done.stderr, done.stderr

    # The same check runs before the first submission of a real run (the workflow's onstart).
    before = len(squeue_jobs())
    done = subprocess.run(snakemake(tmp_path, configfile=slurm_test_config(tmp_path)),
                          env={**site_env, "CS336_CPU_PARTITION": "nosuch"}, capture_output=True, text=True)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "CS336_CPU_PARTITION='nosuch'" in out and "Running on a Slurm cluster" in out, out[-3000:]
    assert "submitted with SLURM jobid" not in out and len(squeue_jobs()) == before


@pytest.mark.slurm
@pytest.mark.slow
def test_a_request_no_node_has_names_its_variable(slurm_cluster, site_env, tmp_path):
    """Data jobs asking one CPU more than the local node has would never start: check_site.py and the start of a
    run say so, naming the rule and CS336_DATA_CPUS, and nothing is submitted."""
    sinfo = subprocess.run(["sinfo", "-h", "-N", "-p", "cpu", "-o", "%c"], capture_output=True, text=True, check=True)
    cpus = max(int(n.rstrip("+")) for n in sinfo.stdout.split())
    env = {**site_env, "CS336_DATA_CPUS": str(cpus + 1)}
    asks = f"count_pretokens asks {cpus + 1} CPUs, {SITE['CS336_CPU_MEM_MB']} MB memory per job"
    fix = f"set CS336_DATA_CPUS to at most {cpus}"
    done = subprocess.run([sys.executable, str(PROFILE / "check_site.py")], env=env, capture_output=True, text=True)
    assert done.returncode == 2 and asks in done.stderr and fix in done.stderr, done.stderr

    before = len(squeue_jobs())
    done = subprocess.run(snakemake(tmp_path, configfile=slurm_test_config(tmp_path)), env=env, capture_output=True,
                          text=True)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert asks in out and fix in out and "tokenize_shard asks" in out, out[-3000:]
    assert "submitted with SLURM jobid" not in out and len(squeue_jobs()) == before


@pytest.mark.slurm
@pytest.mark.slow
def test_profile_places_jobs_and_survives_preemption(slurm_cluster, site_env, tmp_path):
    """The tiny workflow through profiles/slurm: GPU rules on one H100 in the gpu partition, CPU rules without
    GPUs, every output made; a SIGTERM'd training job checkpoints, is retried and continues its metrics."""
    configfile = slurm_test_config(tmp_path)
    work = tmp_path / "work"
    log_path = tmp_path / "snakemake.log"
    run_dir = work / "results" / "runs" / "lr_sweep" / PREEMPTED
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(snakemake(work, configfile=configfile, limit_s=RUN_LIMIT_S), env=site_env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        # Preempt the long run once its progress metrics show it has trained (the engine logs every 10 steps).
        preempted_job, preempted_at = None, 0
        while process.poll() is None and preempted_job is None:
            steps = [m["step"] for m in read_metrics(run_dir / "progress" / "metrics.jsonl")]
            if steps and steps[-1] >= 20:
                for job_id, comment, state in squeue_jobs():
                    if comment.startswith("rule_train_lm_") and comment.endswith(PREEMPTED) and state == "RUNNING":
                        subprocess.run(["scancel", "--signal=TERM", job_id], check=True)
                        preempted_job, preempted_at = job_id, steps[-1]
            time.sleep(0.5)
        process.wait(timeout=RUN_LIMIT_S + 60)
    finally:
        stop(process)
    log = log_path.read_text()
    assert process.returncode == 0, log[-5000:]
    assert preempted_job is not None, "the long training run finished before it could be preempted"

    # Every output of the tiny workflow exists.
    results = work / "results"
    for name in ("report.md", "tables/runs.csv", "tables/tokenizer_stats.md", "figures/lr_sweep.png",
                 "samples/lr_sweep/short.md", f"samples/lr_sweep/{PREEMPTED}.md"):
        assert (results / name).is_file(), name
    for variant in ("short", PREEMPTED):
        for name in ("model.pt", "metrics.jsonl", "summary.json"):
            assert (results / "runs" / "lr_sweep" / variant / name).is_file(), (variant, name)

    # Placement, from Slurm's accounting.
    jobs = submitted_jobs(log)
    rows = sacct_jobs([job_id for _, _, job_id in jobs])
    assert {rule for rule, _, _ in jobs} >= GPU_RULES | {"train_bpe", "tokenize_corpus"}, jobs
    local = {"solve_problem", "plot_figure", "make_tables", "write_report"} & {rule for rule, _, _ in jobs}
    assert not local, f"local rules were submitted to Slurm: {local}"
    for rule, wildcards, job_id in jobs:
        row = rows[job_id]
        assert row["account"] == "ci", row
        if rule in GPU_RULES:
            assert row["partition"] == "gpu", (rule, wildcards, row)
            assert "gres/gpu:h100=1" in row["alloctres"] and "gres/gpu=1" in row["alloctres"], (rule, row)
        else:
            assert row["partition"] == "cpu", (rule, wildcards, row)
            assert "gres/gpu" not in row["alloctres"], (rule, row)

    # Preemption: the SIGTERM'd job failed after its checkpoint, its retry completed and resumed from it.
    long_jobs = [job_id for rule, wildcards, job_id in jobs if rule == "train_lm" and wildcards.endswith(PREEMPTED)]
    assert long_jobs[0] == preempted_job and len(long_jobs) == 2, long_jobs
    assert rows[long_jobs[0]]["state"] == "FAILED", rows[long_jobs[0]]
    assert rows[long_jobs[1]]["state"] == "COMPLETED", rows[long_jobs[1]]
    train_log = (results / "logs" / "train_lm" / "lr_sweep" / f"{PREEMPTED}.log").read_text()
    resumed = re.search(r"resumed from \S+ at step (\d+)", train_log)
    assert resumed, train_log[-3000:]
    resumed_at = int(resumed.group(1))
    assert resumed_at >= preempted_at > 0
    steps = [m["step"] for m in read_metrics(run_dir / "metrics.jsonl")]
    assert steps == sorted(set(steps)), "metrics steps repeat: the run restarted instead of continuing"
    assert steps[0] < preempted_at and steps[-1] > resumed_at, (steps[:3], steps[-3:], resumed_at)

    # Completed runs are never recomputed: the same command again has nothing to do.
    again = subprocess.run(snakemake(work, "-n", configfile=configfile), env=site_env, capture_output=True,
                           text=True)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]
