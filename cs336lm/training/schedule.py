"""The learning rate over a run (handout §4.4): the course's cosine schedule with linear warm-up over the run's
steps, or, under `train.wall_clock_budget_s`, over the training time the budget leaves, so the run anneals when its
time runs out whatever the device's throughput; the clock of training time (evaluation and checkpoints excluded);
the clock of the whole job; the running step-time estimate; and the job budget that stops training early enough
for the final validation and the outputs to fit inside the budget too.
"""

from __future__ import annotations

import time
from collections import deque

from cs336lm.config import RunConfig
from cs336lm.lm.optim import lr_cosine_schedule

# The time-based schedule runs the course's integer schedule over this many ticks of the whole run.
TICKS = 1_000_000

_now = time.perf_counter  # the clocks' time source (tests drive it by hand)


def now() -> float:
    """A reading of the clocks' time source, e.g. when a job starts."""
    return _now()


class LrSchedule:
    """lr_max·(warm-up, then cosine) down to lr_min at the end of the run; see `progress` for what the end is."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.budget_s = cfg.train.wall_clock_budget_s

    def progress(self, step: int, time_fraction: float) -> float:
        """How far the run is, in [0, 1]: by steps, or under a wall-clock budget by the fraction of its training
        time spent (JobBudget.time_fraction) or by steps, whichever is further (a fast device can exhaust the token
        budget first, and must anneal then too)."""
        by_steps = step / self.cfg.num_iterations
        return min(1.0, max(by_steps, time_fraction)) if self.budget_s else min(1.0, by_steps)

    def lr(self, step: int, time_fraction: float) -> float:
        """The rate for step `step` (1-based) ending at `time_fraction` of the training time the budget allows."""
        o = self.cfg.optim
        if not self.budget_s:  # exactly the course schedule over iterations
            return lr_cosine_schedule(step, o.lr_max, o.lr_min, self.cfg.warmup_iters, self.cfg.num_iterations)
        tick = round(self.progress(step, time_fraction) * TICKS)
        return lr_cosine_schedule(tick, o.lr_max, o.lr_min, round(o.warmup_fraction * TICKS), TICKS)


class StepTimer:
    """A running estimate of one training step's time, updated where the loop synchronizes with the device (each
    metrics line, and each step close to the budget), so it measures work done, not work queued."""

    def __init__(self, recent: int = 5):
        self.seconds_per_step: float | None = None
        self._last: tuple[int, float] | None = None
        self._recent: deque[float] = deque(maxlen=recent)

    def observe(self, step: int, train_time_s: float, cautious: bool = False) -> None:
        """Time per step since the last observation (the first one averages from the start, compilation
        included, so it errs long); a step observed already is ignored. cautious (one step at a time, close to
        the budget) takes the slowest of the last few steps, so one fast step does not hide a slow one."""
        last_step, last_time = self._last or (0, 0.0)
        if step <= last_step:
            return
        latest = (train_time_s - last_time) / (step - last_step)
        if cautious:
            self._recent.append(latest)
            latest = max(self._recent)
        self.seconds_per_step = latest
        self._last = (step, train_time_s)


class TrainingClock:
    """Seconds of training: runs from start() to stop(), but not inside paused() (evaluation, checkpoints);
    starts from the time earlier attempts saved."""

    def __init__(self, seconds: float = 0.0):
        self.seconds, self._since = seconds, None

    def start(self) -> None:
        self._since = _now()

    def stop(self) -> None:
        if self._since is not None:
            self.seconds += _now() - self._since
            self._since = None

    def elapsed(self) -> float:
        return self.seconds + (_now() - self._since if self._since is not None else 0.0)

    def paused(self) -> _Pause:
        return _Pause(self)


class _Pause:
    """`with clock.paused() as p:` stops the clock for the block; p.seconds is how long the block took."""

    def __init__(self, clock: TrainingClock):
        self.clock, self.seconds, self._running = clock, 0.0, False

    def __enter__(self) -> _Pause:
        self._running = self.clock._since is not None
        self.clock.stop()
        self._start = _now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = _now() - self._start
        if self._running:
            self.clock.start()


class JobClock:
    """Seconds of the whole job since it started (`started`: a reading of the same time source, taken as the job's
    process began, so start-up counts), plus what earlier attempts of the run spent up to their last checkpoint."""

    def __init__(self, started: float, earlier_s: float = 0.0):
        self.started, self.earlier_s = started, earlier_s

    def elapsed(self) -> float:
        return self.earlier_s + _now() - self.started


# The final validation and the last writes are estimated from measurements; this much more time is kept for them.
RESERVE_MARGIN = 1.25


class JobBudget:
    """The whole job (start-up, compile, training, periodic and final evaluation, checkpoints, writing the outputs)
    inside `budget_s` seconds of the JobClock. Training must stop while there is still time for what follows it:
    the final validation over `final_eval_tokens` tokens at the evaluation speed measured (the loop measures it
    before its first step), and the finished checkpoint and the outputs (twice the slowest checkpoint so far), with
    a margin.
    """

    def __init__(self, budget_s: float, final_eval_tokens: int):
        self.budget_s, self.final_eval_tokens = budget_s, final_eval_tokens
        self.eval_s_per_token: float | None = None
        self.checkpoint_s = 0.0

    def observe_eval(self, tokens: int, seconds: float) -> None:
        self.eval_s_per_token = seconds / tokens if tokens else self.eval_s_per_token

    def observe_checkpoint(self, seconds: float) -> None:
        self.checkpoint_s = max(self.checkpoint_s, seconds)

    def reserve_s(self) -> float:
        """Seconds to keep for the final validation and the last writes."""
        return RESERVE_MARGIN * (self.final_eval_tokens * (self.eval_s_per_token or 0.0) + 2 * self.checkpoint_s)

    def training_ends(self, job_s: float, next_step_s: float) -> bool:
        """Whether a step started at `job_s` and taking `next_step_s` would leave too little time for the rest."""
        return job_s + next_step_s + self.reserve_s() > self.budget_s

    def time_fraction(self, train_s: float, overhead: float, job_s: float) -> float:
        """How much of the training time the budget allows has been spent: `train_s` of training so far, out of
        that plus what the remaining time leaves for training once the reserve is kept and the periodic
        evaluations and checkpoints take their share (`overhead`: their seconds per second of training so far)."""
        left = max(0.0, self.budget_s - job_s - self.reserve_s()) / (1.0 + overhead)
        return train_s / (train_s + left) if train_s + left > 0 else 1.0
