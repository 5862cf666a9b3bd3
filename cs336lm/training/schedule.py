"""The learning rate over a run (handout §4.4): the course's cosine schedule with linear warm-up
over the run's steps, or, under `train.wall_clock_budget_s`, over its training time, so the run anneals when its
time runs out whatever the device's throughput; the clock of training time (evaluation and checkpoints excluded);
and the running step-time estimate that stops a run before a step that would cross its budget.
"""

from __future__ import annotations

import time
from collections import deque

from cs336lm.config import RunConfig
from cs336lm.lm.optim import lr_cosine_schedule

# The time-based schedule runs the course's integer schedule over this many ticks of the whole run.
TICKS = 1_000_000

_now = time.perf_counter  # the training clock's time source (tests drive it by hand)


class LrSchedule:
    """lr_max·(warm-up, then cosine) down to lr_min at the end of the run; see `progress` for what the end is."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.budget_s = cfg.train.wall_clock_budget_s

    def progress(self, step: int, train_time_s: float) -> float:
        """How far the run is, in [0, 1]: by steps, or under a wall-clock budget by training time or by steps,
        whichever is further (a fast device can exhaust the token budget first, and must anneal then too)."""
        by_steps = step / self.cfg.num_iterations
        return min(1.0, max(by_steps, train_time_s / self.budget_s)) if self.budget_s else min(1.0, by_steps)

    def lr(self, step: int, train_time_s: float) -> float:
        """The rate for step `step` (1-based) ending at `train_time_s` seconds of training."""
        o = self.cfg.optim
        if not self.budget_s:  # exactly the course schedule over iterations
            return lr_cosine_schedule(step, o.lr_max, o.lr_min, self.cfg.warmup_iters, self.cfg.num_iterations)
        tick = round(self.progress(step, train_time_s) * TICKS)
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

    def next_step_ends(self, train_time_s: float) -> float:
        """When a step started now should end (now itself before the first estimate)."""
        return train_time_s + (self.seconds_per_step or 0.0)


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
