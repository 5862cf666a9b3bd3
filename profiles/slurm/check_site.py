#!/usr/bin/env python3
"""Check, before anything is submitted, that this machine can run `snakemake --profile profiles/slurm`.

The Slurm executor plugin's own errors for a missing Slurm (``No such file or directory: 'sacctmgr'``),
a wrong account or partition come late and name no setting, and a job that asks more CPUs, memory or GPUs than
any node of its partition has is not refused: it pends forever (``squeue`` reason ``PartitionConfig``). This
check names the CS336_* variable to fix (README, "Running on a Slurm cluster"). The workflow calls it from
``onstart`` (not on dry runs, not inside jobs) with what each of its rules asks (``--requests``); run by hand,
``python profiles/slurm/check_site.py``, it checks what this profile asks under the current environment.
Exit status 0: fine; 2: a site problem. Standard library, plus Snakemake's own PyYAML and yte to read the profile.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DOCS = "README.md, section 'Running on a Slurm cluster'"
PROFILE = Path(__file__).with_name("config.yaml")
OTHER_RULES = "every other rule"  # the profile's default-resources, for rules it does not name


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


# ---- requests that fit ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    """What each job of one rule asks of Slurm on its first attempt."""

    rule: str
    partition: str = ""  # empty: the cluster's default partition
    cpus: int = 1
    mem_mb: int = 0
    gpus: int = 0
    gpu_model: str = ""  # empty: any GPU
    constraint: str = ""


@dataclass(frozen=True)
class Node:
    """One node of a partition, as sinfo describes it."""

    name: str
    cpus: int
    mem_mb: int
    gpus: dict[str, int] = field(default_factory=dict)  # GRES type ('' when untyped) -> count
    features: frozenset[str] = frozenset()


SINFO_NODES = "%N|%c|%m|%G|%f"  # sinfo -N -o: name, CPUs, memory (MB), generic resources, features


def parse_nodes(text: str) -> list[Node]:
    """The nodes of `sinfo -h -N -o '%N|%c|%m|%G|%f'`; GRES like `gpu:h100:4(S:0-1),shard:8`."""
    nodes = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 5 or not fields[1].rstrip("+").isdigit():
            continue
        name, cpus, mem, gres, features = fields
        gpus: dict[str, int] = {}
        for item in re.sub(r"\([^)]*\)", "", gres).split(","):  # (S:0-1) is socket affinity
            kind, *rest = item.split(":")
            if kind == "gpu" and rest and rest[-1].isdigit():
                model = rest[0] if len(rest) == 2 else ""
                gpus[model] = gpus.get(model, 0) + int(rest[-1])
        nodes[name] = Node(name, int(cpus.rstrip("+")), int(mem.rstrip("+") or 0), gpus,
                           frozenset(f for f in features.split(",") if f and f != "(null)"))
    return list(nodes.values())


def has_features(node: Node, constraint: str) -> bool:
    """Whether a node meets `-C`: features joined by & (all) and | (any); fancier syntax is taken as met."""
    if not constraint or re.search(r"[][()*!]", constraint):
        return True
    return any(all(f in node.features for f in term.split("&")) for term in constraint.split("|"))


def capacity(node: Node, request: Request) -> dict[str, int]:
    """What a node offers of each thing a request asks for (GPUs: of the model asked)."""
    gpus = node.gpus.get(request.gpu_model, 0) if request.gpu_model else sum(node.gpus.values())
    return {"cpus": node.cpus, "mem_mb": node.mem_mb, "gpus": gpus}


def asked(request: Request) -> dict[str, int]:
    return {"cpus": request.cpus, "mem_mb": request.mem_mb, "gpus": request.gpus}


def describe(amounts: dict[str, int], request: Request) -> str:
    """'16 CPUs, 8000 MB memory' (and ', 1 h100 GPU' when the request asks for GPUs)."""
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    text = f"{count(amounts['cpus'], 'CPU')}, {amounts['mem_mb']} MB memory"
    return text + (f", {count(amounts['gpus'], (request.gpu_model + ' GPU').strip())}" if request.gpus else "")


def request_problem(request: Request, nodes: list[Node], variables: dict[str, str | None]) -> str | None:
    """Why no node of the partition can run the request (naming the variable to change), or None if one can.

    `variables` maps 'cpus', 'mem_mb', 'partition', 'gpu_model' and 'constraint' to the CS336_* variable that sets
    them for this rule (None where no variable does).
    """
    where = f"partition {request.partition!r}" if request.partition else "the default partition"
    if not nodes:
        return None  # sinfo could not say (an unknown partition is reported by partition_problems)
    candidates = [n for n in nodes if has_features(n, request.constraint)]
    if not candidates:
        return (f"{request.rule} asks for nodes with the features {request.constraint!r} (-C), which no node of "
                f"{where} has: set {variables.get('constraint') or 'the constraint'} to features its nodes have")
    want = asked(request)
    if any(all(capacity(n, request)[k] >= v for k, v in want.items()) for n in candidates):
        return None
    largest = {k: max(capacity(n, request)[k] for n in candidates) for k in want}
    # The amounts no node has are the ones to lower; if each exists but never together, any of them may be.
    short = [k for k, v in want.items() if largest[k] < v] or [k for k, v in want.items() if v]
    fixes = []
    for k in short:
        if k == "gpus":
            gpus = f"{request.gpu_model} GPUs".strip()
            fixes.append(f"{variables.get('partition') or 'the partition'} to a partition with {gpus} "
                         f"or {variables.get('gpu_model') or 'the GPU model'} to a GPU type of {where}")
        elif variables.get(k):
            fixes.append(f"{variables[k]} to at most {largest[k]}")
        elif k == "cpus":
            fixes.append(f"the rule's threads to at most {largest[k]} (--set-threads {request.rule}={largest[k]})")
        else:
            fixes.append(f"the rule's mem_mb to at most {largest[k]} (--set-resources {request.rule}:mem_mb=...)")
    return (f"{request.rule} asks {describe(want, request)} per job, which no node of {where} has "
            f"(at most {describe(largest, request)} per node), so its jobs would pend forever: "
            f"set {' and '.join(fixes)}")


def _variables_in(value) -> dict[str, str]:
    """{setting: CS336_* variable} of one mapping of the profile as written, its `?if` blocks included."""
    found = {}
    for key, item in (value or {}).items():
        if isinstance(item, dict):
            found.update(_variables_in(item))
        elif match := re.search(r"site\(\s*['\"](CS336_\w+)", str(item)):
            found[key] = match[1]
    return found


def variables_of(raw: dict, rule: str) -> dict[str, str | None]:
    """Which CS336_* variable sets each of a rule's requests, read from the profile's own text (raw YAML)."""
    own = _variables_in(raw.get("set-resources", {}).get(rule))
    default = _variables_in(raw.get("default-resources"))
    threads = _variables_in(raw.get("set-threads"))
    return {"cpus": own.get("cpus_per_task") or threads.get(rule),
            "mem_mb": own.get("mem_mb") or default.get("mem_mb"),
            "partition": own.get("slurm_partition") or default.get("slurm_partition"),
            "gpu_model": own.get("gpu_model"), "constraint": own.get("constraint")}


def _evaluate(value):
    """A resource as Snakemake sees it at attempt 1: a string is a Python expression (`8000 * attempt`, `'gpu'`)."""
    if not isinstance(value, str):
        return value
    try:
        return eval(value, {"__builtins__": {}}, {"attempt": 1})  # the profile's own expressions
    except Exception:
        return value


def profile_requests(rendered: dict) -> list[Request]:
    """Each rule's request as the profile (rendered by yte in this environment) makes it."""
    threads = rendered.get("set-threads") or {}
    defaults = rendered.get("default-resources") or {}
    specific = rendered.get("set-resources") or {}

    def request(rule: str) -> Request:
        res = {k: _evaluate(v) for k, v in {**defaults, **specific.get(rule, {})}.items()}
        return Request(rule, partition=res.get("slurm_partition") or "",
                       cpus=int(res.get("cpus_per_task") or threads.get(rule, 1)), mem_mb=int(res.get("mem_mb", 0)),
                       gpus=int(res.get("gpu", 0)), gpu_model=res.get("gpu_model") or "",
                       constraint=res.get("constraint") or "")

    return [request(rule) for rule in sorted(set(threads) | set(specific))] + [request(OTHER_RULES)]


def read_profile() -> tuple[dict, dict]:
    """(the profile as written, the profile rendered with this environment's CS336_* variables)."""
    import yaml
    import yte

    text = PROFILE.read_text()
    return yaml.safe_load(text), yte.process_yaml(text)


def partition_nodes(partition: str) -> list[Node]:
    """The nodes of a partition (empty: the default one); none when sinfo cannot say."""
    if not partition:
        _, names = query("sinfo", "-h", "-o", "%P")
        partition = next((n.rstrip("*") for n in names.split() if n.endswith("*")), "")
    rc, out = query("sinfo", "-h", "-N", "-o", SINFO_NODES, *(["-p", partition] if partition else []))
    return parse_nodes(out) if rc == 0 else []


def fit_problems(requests: list[Request], raw_profile: dict,
                 nodes_of: Callable[[str], list[Node]] = partition_nodes) -> list[str]:
    """One line for each rule whose request no node of its partition can meet."""
    cache: dict[str, list[Node]] = {}
    problems = []
    for request in requests:
        if request.partition not in cache:
            cache[request.partition] = nodes_of(request.partition)
        problem = request_problem(request, cache[request.partition], variables_of(raw_profile, request.rule))
        if problem:
            problems.append(problem)
    return problems


def site_problems(requests: list[Request] | None = None) -> list[str]:
    """Everything wrong with this machine's Slurm setup for the profile, as readable lines.

    `requests`: what the workflow's rules ask; None: what the profile asks.
    """
    if not shutil.which("sbatch"):
        return [
            "Slurm's sbatch is not on PATH: profiles/slurm submits every job with sbatch, so run it on a cluster "
            "login node (a dry run, snakemake -n --profile profiles/slurm, works anywhere; for a local run use "
            "--profile profiles/demo)"
        ]
    rc, out = query("sinfo", "-h", "-o", "%P")
    if rc != 0:
        return [f"sbatch is on PATH but the Slurm controller does not answer (sinfo: {out})"]
    problems = (
        account_problems()
        + partition_problems("CS336_CPU_PARTITION", site("CS336_CPU_PARTITION"))
        + partition_problems("CS336_GPU_PARTITION", site("CS336_GPU_PARTITION"))
        + gpu_problems()
    )
    if problems:  # the requests are compared with the nodes of the right partitions only once those exist
        return problems
    raw, rendered = read_profile()
    return fit_problems(profile_requests(rendered) if requests is None else requests, raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=Path,
                        help="JSON list of the rules' requests (the workflow's onstart writes it); default: the "
                             "profile's own")
    args = parser.parse_args(argv)
    requests = None
    if args.requests is not None:
        requests = [Request(**r) for r in json.loads(args.requests.read_text())]
    problems = site_problems(requests)
    if not problems:
        return 0
    print("profiles/slurm cannot run on this machine:", file=sys.stderr)
    for line in problems:
        print(f"  - {line}", file=sys.stderr)
    print(f"Site settings are the CS336_* environment variables, see {DOCS}.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
