"""cs336lm.experiments.noise: the noise floor from planted seed results (a pooled sample standard deviation worked
by hand), the resolution a difference must exceed, and the noise file."""

from __future__ import annotations

import math

import pytest

from cs336lm.experiments.noise import (
    RESOLVE_SIGMAS,
    NoiseError,
    measure_noise,
    pooled,
    read_noise,
    seed_losses,
    write_noise,
)
from tests.run_dirs import make_run


def test_noise_floor_is_the_pooled_sample_standard_deviation_over_seeds():
    # baseline: mean 2.0, squares 0.01 + 0 + 0.01; nope: mean 3.0, squares 0.0025 + 0.0025; dof 2 + 1 = 3.
    noise = measure_noise("ablations", {"baseline": [1.9, 2.0, 2.1], "nope": [2.95, 3.05]})
    assert noise.sigma == pytest.approx(math.sqrt(0.025 / 3))
    assert noise.resolution == pytest.approx(RESOLVE_SIGMAS * math.sqrt(2) * math.sqrt(0.025 / 3))


def test_runs_that_were_not_stable_are_left_out_and_one_seed_measures_nothing():
    noise = measure_noise("ablations", {"baseline": [2.0, None, math.nan, 2.2]})
    assert noise.losses == {"baseline": [2.0, 2.2]} and noise.sigma == pytest.approx(math.sqrt(0.02))
    unmeasured = measure_noise("ablations", {"baseline": [2.0], "nope": [None, 3.0]})
    assert unmeasured.sigma is None and unmeasured.resolved(5.0) is None
    assert "not measured: unresolved" in unmeasured.judge(5.0)


def test_a_difference_inside_the_noise_is_unresolved():
    noise = measure_noise("ablations", {"baseline": [1.9, 2.0, 2.1]})  # σ = 0.1, resolution 2√2 × 0.1 ≈ 0.283
    assert noise.resolved(0.2) is False and noise.resolved(-0.29) is True
    assert noise.judge(-0.2) == "0.2 nats against a resolution of 0.283 nats: within the noise: unresolved"
    assert noise.judge(0.5).endswith(": resolved")
    assert noise.judge(0.5, unit="bits per byte", scale=0.5) == \
        "0.5 bits per byte against a resolution of 0.141 bits per byte: resolved"


def test_noise_of_several_experiments_pools_their_variants():
    both = pooled([measure_noise("a", {"x": [1.0, 1.2]}), measure_noise("b", {"x": [3.0, 3.4]})])
    assert both.losses == {"a/x": [1.0, 1.2], "b/x": [3.0, 3.4]}
    assert both.sigma == pytest.approx(math.sqrt((0.02 + 0.08) / 2))
    assert pooled([]) is None


def test_noise_file_round_trips_and_a_bad_one_names_itself(tmp_path):
    noise = measure_noise("ablations", {"baseline": [1.9, 2.0, 2.1]})
    write_noise(tmp_path / "n.json", noise)
    assert read_noise(tmp_path / "n.json") == noise
    (tmp_path / "bad.json").write_text('{"noise_version": 1, "sigma": 1}')
    with pytest.raises(NoiseError, match=r"bad.json is not a version-1 noise file .*noise_floor"):
        read_noise(tmp_path / "bad.json")


def test_seed_losses_keep_stable_runs_and_drop_the_rest(tmp_path):
    stable = make_run(tmp_path / "a", final=2.0)
    other = make_run(tmp_path / "b", final=2.25, seed=1)
    unstable = make_run(tmp_path / "c", final=1.5, unstable=True)
    diverged = make_run(tmp_path / "d", diverged=True)
    losses = seed_losses({"baseline": [str(stable), str(other)], "wild": [str(unstable), str(diverged)]})
    assert losses == {"baseline": [2.0, 2.25], "wild": [None, None]}
