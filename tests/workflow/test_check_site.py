"""profiles/slurm/check_site.py without a cluster: sinfo's node lines parsed, each rule's request compared with the
nodes of its partition, the message naming the CS336_* variable the profile reads for it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_site", REPO / "profiles" / "slurm" / "check_site.py")
check_site = importlib.util.module_from_spec(spec)
sys.modules["check_site"] = check_site  # dataclasses look their module up there
spec.loader.exec_module(check_site)
Node, Request = check_site.Node, check_site.Request

# `sinfo -h -N -o '%N|%c|%m|%G|%f'` of a small cluster: two CPU nodes, a GPU node with socket affinity and a
# second GRES, a node whose GPUs are untyped.
SINFO = """\
cpu01|8|31000|(null)|(null)
cpu02|4|64000|(null)|(null)
gpu01|32|256000|gpu:h100:4(S:0-1),shard:8|h100,ib
gpu02|16|128000|gpu:2|(null)
"""
CPU_NODES = check_site.parse_nodes(SINFO)[:2]
GPU_NODES = check_site.parse_nodes(SINFO)[2:]


def test_sinfo_node_lines_are_parsed():
    assert check_site.parse_nodes(SINFO + "garbage line\n") == [
        Node("cpu01", 8, 31000, {}, frozenset()),
        Node("cpu02", 4, 64000, {}, frozenset()),
        Node("gpu01", 32, 256000, {"h100": 4}, frozenset({"h100", "ib"})),
        Node("gpu02", 16, 128000, {"": 2}, frozenset()),
    ]


def test_a_node_listed_in_two_partitions_counts_once():
    assert len(check_site.parse_nodes("n1|2|1000|(null)|(null)\nn1|2|1000|(null)|(null)\n")) == 1


@pytest.mark.parametrize("request_, fits", [
    (Request("count_pretokens", cpus=8, mem_mb=31000), True),  # exactly cpu01
    (Request("count_pretokens", cpus=4, mem_mb=64000), True),  # exactly cpu02
    (Request("count_pretokens", cpus=9, mem_mb=1000), False),  # more CPUs than any node
    (Request("count_pretokens", cpus=8, mem_mb=32000), False),  # each amount exists, never on one node
])
def test_a_request_fits_when_one_node_has_all_of_it(request_, fits):
    problem = check_site.request_problem(request_, CPU_NODES, {"cpus": "CS336_DATA_CPUS"})
    assert (problem is None) == fits, problem


def test_too_many_cpus_names_the_rule_the_amounts_and_the_variable():
    problem = check_site.request_problem(Request("count_pretokens", "cpu", cpus=16, mem_mb=8000), CPU_NODES,
                                         {"cpus": "CS336_DATA_CPUS", "mem_mb": "CS336_CPU_MEM_MB"})
    assert problem == (
        "count_pretokens asks 16 CPUs, 8000 MB memory per job, which no node of partition 'cpu' has (at most "
        "8 CPUs, 64000 MB memory per node), so its jobs would pend forever: set CS336_DATA_CPUS to at most 8"
    )


def test_amounts_that_never_meet_on_one_node_name_every_variable():
    problem = check_site.request_problem(Request("count_pretokens", cpus=8, mem_mb=32000), CPU_NODES,
                                         {"cpus": "CS336_DATA_CPUS", "mem_mb": "CS336_CPU_MEM_MB"})
    assert problem.endswith("set CS336_DATA_CPUS to at most 8 and CS336_CPU_MEM_MB to at most 64000")
    assert "the default partition" in problem


def test_gpus_count_only_of_the_model_asked():
    gpu = {"partition": "CS336_GPU_PARTITION", "gpu_model": "CS336_GPU_MODEL", "cpus": "CS336_GPU_CPUS"}
    assert check_site.request_problem(Request("train_lm", "gpu", 8, 64000, 1, "h100"), GPU_NODES, gpu) is None
    assert check_site.request_problem(Request("train_lm", "gpu", 8, 64000, 2, ""), GPU_NODES, gpu) is None
    problem = check_site.request_problem(Request("train_lm", "gpu", 8, 64000, 5, "h100"), GPU_NODES, gpu)
    assert "asks 8 CPUs, 64000 MB memory, 5 h100 GPUs per job" in problem
    assert "at most 32 CPUs, 256000 MB memory, 4 h100 GPUs per node" in problem
    assert "set CS336_GPU_PARTITION to a partition with h100 GPUs or CS336_GPU_MODEL" in problem


def test_a_constraint_limits_the_nodes_considered():
    gpu = {"cpus": "CS336_GPU_CPUS"}
    nodes = GPU_NODES + [Node("gpu03", 8, 1000, {}, frozenset({"a100"}))]
    assert check_site.request_problem(Request("train_lm", cpus=20, constraint="h100&ib"), nodes, gpu) is None
    assert check_site.request_problem(Request("train_lm", cpus=20, constraint="a100|ib"), nodes, gpu) is None
    # gpu01 has 32 CPUs but not the feature: only gpu03's 8 count
    problem = check_site.request_problem(Request("train_lm", cpus=20, constraint="a100"), nodes, gpu)
    assert problem.endswith("set CS336_GPU_CPUS to at most 8")
    problem = check_site.request_problem(Request("train_lm", "gpu", cpus=1, constraint="h100&a100"), nodes,
                                         {"constraint": "CS336_GPU_CONSTRAINT"})
    assert problem == ("train_lm asks for nodes with the features 'h100&a100' (-C), which no node of partition 'gpu' "
                       "has: set CS336_GPU_CONSTRAINT to features its nodes have")


def test_a_rule_without_a_variable_gets_the_snakemake_option():
    problem = check_site.request_problem(Request("train_bpe", cpus=16, mem_mb=1000), CPU_NODES, {})
    assert problem.endswith("set the rule's threads to at most 8 (--set-threads train_bpe=8)")


def test_variables_are_read_from_the_profile_itself():
    raw, _ = check_site.read_profile()
    assert check_site.variables_of(raw, "count_pretokens") == {
        "cpus": "CS336_DATA_CPUS", "mem_mb": "CS336_CPU_MEM_MB", "partition": "CS336_CPU_PARTITION",
        "gpu_model": None, "constraint": None}
    assert check_site.variables_of(raw, "train_lm") == {
        "cpus": "CS336_GPU_CPUS", "mem_mb": "CS336_GPU_MEM_MB", "partition": "CS336_GPU_PARTITION",
        "gpu_model": "CS336_GPU_MODEL", "constraint": "CS336_GPU_CONSTRAINT"}
    assert check_site.variables_of(raw, "generate_samples")["cpus"] == "CS336_GPU_CPUS"  # via cpus_per_task
    assert check_site.variables_of(raw, "train_bpe")["cpus"] is None


def test_profile_requests_follow_the_site_variables(monkeypatch):
    for name in [name for name in os.environ if name.startswith("CS336_")]:  # the profile's defaults
        monkeypatch.delenv(name)
    requests = {r.rule: r for r in check_site.profile_requests(check_site.read_profile()[1])}
    assert requests["count_pretokens"] == Request("count_pretokens", "", 16, 8000)
    assert requests["train_lm"] == Request("train_lm", "", 8, 64000, 1, "h100")
    assert requests[check_site.OTHER_RULES] == Request(check_site.OTHER_RULES, "", 1, 8000)
    monkeypatch.setenv("CS336_DATA_CPUS", "3")
    monkeypatch.setenv("CS336_GPU_CPUS", "2")
    monkeypatch.setenv("CS336_CPU_MEM_MB", "1500")
    monkeypatch.setenv("CS336_GPU_PARTITION", "gpu")
    requests = {r.rule: r for r in check_site.profile_requests(check_site.read_profile()[1])}
    assert requests["tokenize_shard"] == Request("tokenize_shard", "", 3, 1500)
    assert requests["probe_batch_size"] == Request("probe_batch_size", "gpu", 2, 64000, 1, "h100")
    assert requests["sample_grid"] == Request("sample_grid", "gpu", 2, 64000, 1, "h100")


def test_fit_problems_ask_each_partition_once():
    asked = []

    def nodes_of(partition):
        asked.append(partition)
        return CPU_NODES if partition == "cpu" else GPU_NODES

    raw, _ = check_site.read_profile()
    problems = check_site.fit_problems([Request("count_pretokens", "cpu", 16, 1000),
                                        Request("tokenize_shard", "cpu", 2, 1000),
                                        Request("train_lm", "gpu", 8, 1000, 1, "h100")], raw, nodes_of)
    assert asked == ["cpu", "gpu"]
    assert len(problems) == 1 and problems[0].startswith("count_pretokens asks 16 CPUs")
    assert "CS336_DATA_CPUS to at most 8" in problems[0]
