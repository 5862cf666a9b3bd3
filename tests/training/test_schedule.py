"""cs336lm.training.schedule: the course schedule over steps unchanged, the same shape over a wall-clock budget (lr at
0 %, the end of warm-up, 50 % and 100 % of the training time), whichever budget runs out first, the step-time
estimate, the clocks, and the job budget that keeps time for the final validation and the writes."""

from __future__ import annotations

import pytest

import cs336lm.training.schedule as schedule
from cs336lm.config import RunConfig
from cs336lm.lm.optim import lr_cosine_schedule
from cs336lm.training.schedule import RESERVE_MARGIN, JobBudget, JobClock, LrSchedule, StepTimer, TrainingClock

LR = {"optim.lr_max": 1e-3, "optim.lr_min": 1e-4, "optim.warmup_fraction": 0.1}


def config(**overrides) -> RunConfig:
    return RunConfig.from_flat({**LR, "train.batch_size": 8, "model.context_length": 16,
                                "train.token_budget": 8 * 16 * 1000, **overrides})


def test_without_a_wall_clock_budget_it_is_the_course_schedule_over_steps():
    cfg = config()
    schedule = LrSchedule(cfg)
    for step in (1, 50, 100, 101, 550, 1000):
        assert schedule.lr(step, time_fraction=1.0) == lr_cosine_schedule(step, 1e-3, 1e-4, 100, 1000)


@pytest.mark.parametrize(("fraction", "expected"), [
    (0.0, 0.0),  # the start of the warm-up
    (0.05, 0.5e-3),  # half-way through it
    (0.1, 1e-3),  # its end: the peak
    (0.55, (1e-3 + 1e-4) / 2),  # half-way through the cosine
    (1.0, 1e-4),  # the budget's end: the minimum
    (1.5, 1e-4),  # past it
])
def test_under_a_wall_clock_budget_it_follows_the_fraction_of_training_time(fraction, expected):
    schedule = LrSchedule(config(**{"train.wall_clock_budget_s": 600.0, "train.token_budget": 8 * 16 * 10**6}))
    assert schedule.lr(step=0, time_fraction=fraction) == pytest.approx(expected, abs=1e-12)


def test_whichever_budget_runs_out_first_ends_the_schedule():
    # 1,000 steps allowed by tokens within an hour: a fast device anneals with its last step, not at the hour.
    schedule = LrSchedule(config(**{"train.wall_clock_budget_s": 3600.0}))
    assert schedule.progress(step=1000, time_fraction=60.0 / 3600) == 1.0
    assert schedule.lr(step=1000, time_fraction=60.0 / 3600) == pytest.approx(1e-4)
    assert schedule.progress(step=500, time_fraction=0.75) == 0.75


def test_step_timer_estimates_from_synchronized_observations():
    timer = StepTimer()
    assert timer.seconds_per_step is None, "before any step is timed"
    timer.observe(1, 2.0)  # the first step, compilation included
    assert timer.seconds_per_step == 2.0
    timer.observe(11, 3.0)
    assert timer.seconds_per_step == pytest.approx(0.1)
    timer.observe(11, 99.0)
    assert timer.seconds_per_step == pytest.approx(0.1), "a step observed already is ignored"
    timer.observe(12, 3.1)
    timer.observe(13, 3.5, cautious=True)
    timer.observe(14, 3.6, cautious=True)
    assert timer.seconds_per_step == pytest.approx(0.4), "near the budget, the slowest recent step counts"


def test_training_clock_leaves_out_paused_time_and_continues_earlier_attempts(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(schedule, "_now", lambda: now[0])
    clock = TrainingClock(seconds=50.0)  # an earlier attempt trained 50 s
    clock.start()
    now[0] += 10
    with clock.paused() as evaluation:
        now[0] += 7
    assert evaluation.seconds == 7 and clock.elapsed() == 60
    now[0] += 5
    clock.stop()
    now[0] += 100
    assert clock.elapsed() == 65
    with clock.paused():  # pausing a stopped clock leaves it stopped
        now[0] += 1
    assert clock.elapsed() == 65


def test_job_clock_counts_from_the_job_start_and_continues_earlier_attempts(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(schedule, "_now", lambda: now[0])
    clock = JobClock(started=97.0, earlier_s=40.0)  # started 3 s ago; earlier attempts used 40 s
    assert clock.elapsed() == 43.0
    now[0] += 2
    assert clock.elapsed() == 45.0


def test_job_budget_keeps_time_for_the_final_validation_and_the_writes():
    budget = JobBudget(budget_s=100.0, final_eval_tokens=1000)
    assert budget.reserve_s() == 0.0, "nothing measured yet"
    budget.observe_eval(tokens=500, seconds=1.0)  # 2 ms a token
    budget.observe_checkpoint(1.5)
    budget.observe_checkpoint(0.5)  # the slowest checkpoint counts
    reserve = RESERVE_MARGIN * (1000 * 0.002 + 2 * 1.5)
    assert budget.reserve_s() == pytest.approx(reserve)
    assert not budget.training_ends(job_s=100.0 - reserve - 1.0, next_step_s=0.9)
    assert budget.training_ends(job_s=100.0 - reserve - 1.0, next_step_s=1.1)


def test_job_budget_time_fraction_counts_the_training_time_left():
    budget = JobBudget(budget_s=100.0, final_eval_tokens=0)
    assert budget.time_fraction(train_s=0.0, overhead=0.0, job_s=0.0) == 0.0
    # 30 s trained by 40 s of the job: 60 s left, a quarter of it for evaluations (overhead 1/3): 45 s to train.
    assert budget.time_fraction(train_s=30.0, overhead=1 / 3, job_s=40.0) == pytest.approx(30 / 75)
    assert budget.time_fraction(train_s=30.0, overhead=0.0, job_s=100.0) == 1.0
