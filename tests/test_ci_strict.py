"""tests/conftest.py's rules, run on a small test module in a pytest subprocess: under CI=true a skip or an xfail fails
(only GPU tests may skip), the Slurm tests are opt-in outside CI, and CS336_FIXTURES moves the course fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

pytestmark = pytest.mark.slow  # real pytest subprocesses

CONFTEST = Path(__file__).with_name("conftest.py")
MODULE = '''
import pytest

def test_passes():
    pass

def test_skips():
    pytest.skip("a resource is missing")

@pytest.mark.skipif(True, reason="a condition")
def test_skipif():
    pass

def test_needs_fixtures(fixtures_dir):
    assert fixtures_dir.is_dir()

@pytest.mark.gpu
def test_gpu():
    import torch
    assert torch.cuda.is_available()

@pytest.mark.slurm
def test_slurm():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False

def test_xfail_call():
    pytest.xfail("known at run time")
'''
SKIPPED_MODULE = 'import pytest\npytest.importorskip("no_such_module_for_this_test")\n\ndef test_never():\n    pass\n'


def run_pytest(tmp_path: Path, module: str = MODULE, **env: str) -> dict[str, str]:
    """{test name: outcome} of the module under tests/conftest.py, with `env` on top of a CI-free environment.

    Outcomes come from the JUnit XML: passed, failed, error (a failure outside the test call), skipped, xfail.
    """
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_module.py").write_text(module)
    if module == MODULE:
        (tmp_path / "test_skipped_module.py").write_text(SKIPPED_MODULE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: CUDA\n    slurm: Slurm\n")
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "CS336_SLURM_TESTS", "CS336_FIXTURES")}
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--continue-on-collection-errors",
                    f"--junitxml={junit}", str(tmp_path)], cwd=tmp_path, env={**base, **env}, capture_output=True,
                   timeout=300)
    outcomes = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        child = next(iter(case), None)
        kind = "passed" if child is None or child.tag in ("system-out", "system-err") else child.tag
        if kind == "skipped" and child.get("type") == "pytest.xfail":
            kind = "xfail"
        outcomes[case.get("name")] = kind
    return outcomes


def test_outside_ci_skips_stay_skips_and_slurm_is_opt_in(tmp_path):
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    assert run_pytest(tmp_path, CS336_FIXTURES=str(fixtures)) == {
        "test_passes": "passed", "test_skips": "skipped", "test_skipif": "skipped", "test_needs_fixtures": "passed",
        "test_gpu": gpu_outcome(), "test_slurm": "skipped", "test_expected_failure": "xfail",
        "test_xfail_call": "xfail", "test_skipped_module": "skipped"}


def test_slurm_opt_in_runs_the_slurm_tests(tmp_path):
    slurm_only = "import pytest\n\n@pytest.mark.slurm\ndef test_slurm():\n    pass\n"
    assert run_pytest(tmp_path, slurm_only, CS336_SLURM_TESTS="1") == {"test_slurm": "passed"}


def test_under_ci_every_skip_and_xfail_but_a_gpu_tests_fails(tmp_path):
    assert run_pytest(tmp_path, CI="true", CS336_FIXTURES=str(tmp_path / "missing")) == {
        "test_passes": "passed", "test_skips": "failure", "test_skipif": "error", "test_needs_fixtures": "error",
        "test_gpu": gpu_outcome(), "test_slurm": "passed", "test_expected_failure": "failure",
        "test_xfail_call": "failure", "test_skipped_module": "error"}


def gpu_outcome() -> str:
    import torch

    return "passed" if torch.cuda.is_available() else "skipped"

