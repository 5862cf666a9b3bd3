#!/usr/bin/env python3
"""Check, before anything is submitted, that this machine can run `snakemake --profile profiles/slurm`.

The Slurm executor plugin's own errors for a missing Slurm (``No such file or directory: 'sacctmgr'``),
a wrong account or partition come late and name no setting. This check names the CS336_* variable to fix
(README, "Running on a Slurm cluster"). Stdlib only; the workflow calls it from ``onstart`` (not on dry runs,
not inside jobs);
run it by hand with ``python profiles/slurm/check_site.py``. Exit status 0: fine; 2: a site problem.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys

DOCS = "README.md, section 'Running on a Slurm cluster'"


def site(name: str, default: str = "") -> str:
    """A CS336_* site setting; empty or unset gives the default (same rule as profiles/slurm/config.yaml)."""
    return os.environ.get(name, "").strip() or default


def query(*cmd: str) -> tuple[int, str]:
    """Run a Slurm client command; (exit status, stdout+stderr). Never raises."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 1, str(err)
    return done.returncode, (done.stdout + done.stderr).strip()


def partition_problems(var: str, partition: str) -> list[str]:
    """Problems with one partition setting (empty: the cluster's default partition)."""
    if not partition:
        return []
    rc, out = query("scontrol", "show", "partition", partition)
    if rc != 0:
        _, names = query("sinfo", "-h", "-o", "%P")
        known = ", ".join(sorted({n.rstrip("*") for n in names.split()})) or "?"
        return [f"{var}={partition!r}: no such partition on this cluster (partitions: {known}). {out}"]
    return []


def gpu_problems() -> list[str]:
    """The GPU partition must offer the GPU model (GRES type) and, if set, the node feature."""
    partition, model = site("CS336_GPU_PARTITION"), site("CS336_GPU_MODEL", "h100")
    constraint = site("CS336_GPU_CONSTRAINT")
    args = ["sinfo", "-h", "-o", "%G|%f"] + (["-p", partition] if partition else [])
    rc, out = query(*args)
    if rc != 0 or not out:
        return []  # partition errors are reported by partition_problems
    gres = {g for line in out.splitlines() for g in line.split("|")[0].split(",")}
    features = {f for line in out.splitlines() for f in line.split("|")[1].split(",")}
    where = f"partition {partition!r}" if partition else "the default partition (CS336_GPU_PARTITION is unset)"
    problems = []
    if not any(g.startswith(f"gpu:{model}:") or g.startswith(f"gpu:{model}(") for g in gres):
        problems.append(
            f"CS336_GPU_MODEL={model!r}: {where} has no GPUs of that type (its GRES: {', '.join(sorted(gres))}); "
            "set CS336_GPU_PARTITION to the GPU partition and CS336_GPU_MODEL to the GRES type of its H100s"
        )
    if constraint and not any(f in features for f in constraint.replace("|", "&").split("&")):
        problems.append(
            f"CS336_GPU_CONSTRAINT={constraint!r}: no node of {where} has that feature "
            f"(features: {', '.join(sorted(features))})"
        )
    return problems


def account_problems() -> list[str]:
    """The account must be one of the user's associations (only checkable with accounting)."""
    account = site("CS336_SLURM_ACCOUNT")
    if not account or not shutil.which("sacctmgr"):
        return []
    rc, out = query("sacctmgr", "-n", "-P", "show", "assoc", f"user={getpass.getuser()}", "format=account")
    accounts = {a.strip().lower() for a in out.splitlines() if a.strip()} if rc == 0 else set()
    if accounts and account.lower() not in accounts:
        return [f"CS336_SLURM_ACCOUNT={account!r} is not one of your Slurm accounts ({', '.join(sorted(accounts))})"]
    return []


def site_problems() -> list[str]:
    """Everything wrong with this machine's Slurm setup for the profile, as readable lines."""
    if not shutil.which("sbatch"):
        return [
            "Slurm's sbatch is not on PATH: profiles/slurm submits every job with sbatch, so run it on a cluster "
            "login node (a dry run, snakemake -n --profile profiles/slurm, works anywhere; for a local run use "
            "--profile profiles/demo)"
        ]
    rc, out = query("sinfo", "-h", "-o", "%P")
    if rc != 0:
        return [f"sbatch is on PATH but the Slurm controller does not answer (sinfo: {out})"]
    return (
        account_problems()
        + partition_problems("CS336_CPU_PARTITION", site("CS336_CPU_PARTITION"))
        + partition_problems("CS336_GPU_PARTITION", site("CS336_GPU_PARTITION"))
        + gpu_problems()
    )


def main() -> int:
    problems = site_problems()
    if not problems:
        return 0
    print("profiles/slurm cannot run on this machine:", file=sys.stderr)
    for line in problems:
        print(f"  - {line}", file=sys.stderr)
    print(f"Site settings are the CS336_* environment variables, see {DOCS}.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
