"""Shared pytest configuration: the course fixtures, torch on one thread, opt-in Slurm tests, GPU tests, and CI that
cannot pass by skipping.

Under CI (`CI=true`, which CI runners set) every skip and every expected failure (xfail) is a failure, except a GPU
test on a machine without CUDA: a test that does not run, or runs without counting, proves nothing.
Outside CI the Slurm tests run only with CS336_SLURM_TESTS=1: they install Slurm, MariaDB and munge as root.
CS336_FIXTURES points at the course's test data (default: ../shared/fixtures beside the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("CS336_FIXTURES") or REPO_ROOT.parent / "shared" / "fixtures")
IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")
SLURM_OPTED_IN = os.environ.get("CS336_SLURM_TESTS") == "1"


@pytest.fixture
def one_thread():
    """torch on one thread for the test: bitwise-equal runs (the resume tests) need the same matmul blocking, and
    one thread spares the shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, Path]:
    """A tiny tokenized train/valid pair (tests.helpers.make_corpus)."""
    from tests.helpers import make_corpus

    return make_corpus(tmp_path / "data")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"course fixtures not found at {FIXTURES}: put them in ../shared/fixtures beside the repository "
                    "or point CS336_FIXTURES at them")
    return FIXTURES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not (IN_CI or SLURM_OPTED_IN):
        opt_in = pytest.mark.skip(reason="Slurm tests are opt-in outside CI (they install Slurm, MariaDB and munge "
                                         "as root): set CS336_SLURM_TESTS=1 to run them")
        for item in items:
            if item.get_closest_marker("slurm"):
                item.add_marker(opt_in)
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items:
        import torch

        if not torch.cuda.is_available():
            for item in gpu_items:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def _strict(report: pytest.CollectReport | pytest.TestReport, is_gpu: bool) -> None:
    """Under CI, turn a skip or an expected failure of anything but a GPU test into a failure, reason kept."""
    if IN_CI and report.skipped and not is_gpu:
        if hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = f"xfail under CI=true, where only GPU tests may skip: {report.wasxfail}"
            del report.wasxfail  # otherwise reported as an expected failure still
            return
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where only GPU tests may skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    _strict(outcome.get_result(), is_gpu=item.get_closest_marker("gpu") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    outcome = yield
    _strict(outcome.get_result(), is_gpu=False)  # a whole module skipped at import
