"""cs336lm.experiments.selection: the choice rule (lowest final loss among stable runs, ties to the smaller value),
the optimum's and the edge's brackets, the search's next values round by round, and the selection/plan files."""

from __future__ import annotations

import math

import pytest

from cs336lm.experiments import selection as sel
from cs336lm.experiments.selection import (
    Edge,
    EdgeSearch,
    Outcome,
    SelectionError,
    choose_best,
    locate_edge,
    locate_optimum,
    plan_next,
)


def outcome(value: float, status: str = "ok", loss: float | None = 2.0) -> Outcome:
    return Outcome(f"lr_max~{value:g}", value, status, None if status == "diverged" else loss, f"runs/{value:g}")


def test_best_is_the_lowest_final_loss_among_stable_runs():
    runs = [outcome(1e-3, loss=2.5), outcome(3e-3, loss=2.1), outcome(1e-2, "diverged"), outcome(3e-2, "diverged")]
    selection = choose_best("lr_sweep", "lr_sweep", "optim.lr_max", runs)
    assert (selection.value, selection.variant, selection.final_val_loss) == (3e-3, "lr_max~0.003", 2.1)
    assert selection.rule == sel.CHOICE_RULE
    assert "0.003" in selection.why and "2 diverged (0.01, 0.03)" in selection.why and "next: 0.001" in selection.why
    assert "of the 2 stable runs" in selection.why
    assert [c.value for c in selection.candidates] == [1e-3, 3e-3, 1e-2, 3e-2]


def test_a_tie_goes_to_the_smaller_value():
    runs = [outcome(3e-3, loss=2.0), outcome(1e-3, loss=2.0), outcome(1e-2, loss=2.2)]
    assert choose_best("s", "s", "optim.lr_max", runs).value == 1e-3


def test_a_diverged_run_never_wins_even_with_a_finite_loss():
    runs = [outcome(1e-3, loss=3.0), Outcome("lr_max~0.1", 0.1, "diverged", 1.0, "runs/0.1"),
            Outcome("lr_max~0.2", 0.2, "out_of_memory", None, "runs/0.2")]
    assert choose_best("s", "s", "optim.lr_max", runs).value == 1e-3


def test_nothing_stable_is_an_error_naming_the_sweep():
    with pytest.raises(SelectionError,
                       match=r"no run of lr_sweep trained stably .*lr_max~0.1: diverged.*experiments.lr_sweep"):
        choose_best("lr_sweep", "lr_sweep", "optim.lr_max", [outcome(0.1, "diverged")])


def test_edge_is_the_top_of_the_stable_range():
    # A rate too small to learn counts as diverged; it must not hide the edge above the stable ones.
    runs = [outcome(1e-4, "diverged"), outcome(1e-3), outcome(1e-2), outcome(0.1, "diverged"), outcome(1, "diverged")]
    assert locate_edge(runs, 2.0) == Edge(1e-2, 1e-1, pytest.approx(10.0), 2.0)
    assert locate_edge([outcome(1e-3)], 2.0) == Edge(1e-3, None, None, 2.0)
    assert locate_edge([outcome(1e-3, "diverged")], 2.0) == Edge(None, 1e-3, None, 2.0)


def world(opt: float, edge: float):
    """A toy sweep: the final loss is a parabola in log10(lr) around `opt`; rates >= edge diverge."""
    def train(value: float) -> Outcome:
        if value >= edge:
            return outcome(value, "diverged")
        return outcome(value, loss=2.0 + (math.log10(value / opt)) ** 2)
    return train


def run_search(grid: list[float], train, search: EdgeSearch) -> tuple[list, list]:
    """Drive plan_next round by round against a toy world; the plans and the runs, in order."""
    runs = [train(v) for v in grid]
    plans = []
    while True:
        plan = plan_next("lr_sweep", len(plans), runs, search, extra_runs=len(runs) - len(grid))
        plans.append(plan)
        if not plan.next:
            return plans, runs
        runs += [train(v) for v in plan.next]


def test_a_best_at_the_top_of_the_range_extends_it_upward():
    runs = [outcome(1e-3, loss=2.5), outcome(1e-2, loss=2.1)]
    plan = plan_next("lr_sweep", 0, runs, EdgeSearch(step=3.0), extra_runs=0)
    assert plan.next == (0.03,) and plan.purposes == ("optimum+edge",), "one run serves both brackets"
    assert "is the largest value tried: extending up to 0.03" in plan.reason


def test_a_best_at_the_bottom_of_the_range_extends_it_downward():
    runs = [outcome(1e-3, loss=2.0), outcome(1e-2, loss=2.1), outcome(1e-1, "diverged")]
    plan = plan_next("lr_sweep", 0, runs, EdgeSearch(step=3.0, factor=20.0), extra_runs=0)
    assert plan.next == (0.000333,) and plan.purposes == ("optimum",)
    assert "is the smallest value tried: extending down to 0.000333" in plan.reason


def test_a_bracket_wider_than_the_factor_is_refined_on_its_wider_side():
    runs = [outcome(1e-3, loss=2.5), outcome(3e-3, loss=2.0), outcome(3e-2, loss=2.2), outcome(0.1, "diverged")]
    plan = plan_next("lr_sweep", 0, runs, EdgeSearch(factor=4.0, optimum_factor=2.0), extra_runs=0)
    assert plan.next == (0.00949,) and plan.purposes == ("optimum",)  # sqrt(0.003 * 0.03): the 10× side
    assert "edge: the edge lies between 0.03 (stable) and 0.1 (not stable), within the target factor 4" in plan.reason
    bracketed = [outcome(1.5e-3, loss=2.4), outcome(3e-3, loss=2.0), outcome(6e-3, loss=2.1), outcome(1e-2, "diverged")]
    done = plan_next("lr_sweep", 0, bracketed, EdgeSearch(), extra_runs=0)
    assert done.next == () and done.optimum.bracketed and done.edge.factor <= 2.0
    assert "bracketed" in done.reason


def test_the_search_brackets_the_optimum_and_the_edge_within_their_factors():
    plans, runs = run_search([1e-4, 1e-3, 1e-2], world(opt=4e-3, edge=0.5),
                             EdgeSearch(factor=2.0, step=3.0, max_runs=20, optimum_factor=2.0))
    final = plans[-1]
    assert final.optimum.bracketed and final.optimum.best / final.optimum.below <= 2.0
    assert final.optimum.above / final.optimum.best <= 2.0
    assert 2e-3 < final.optimum.best < 8e-3, "within a factor 2 of the true optimum"
    assert final.edge.largest_stable < 0.5 <= final.edge.smallest_not_stable and final.edge.factor <= 2.0
    purposes = {p for plan in plans for p in plan.purposes}
    assert purposes <= {"optimum", "edge", "optimum+edge"} and "edge" in purposes and "optimum" in purposes
    assert choose_best("s", "s", "k", runs).value == final.optimum.best


def test_both_brackets_share_the_bound_and_the_optimum_comes_first():
    plans, runs = run_search([1e-4, 1e-3, 1e-2], world(opt=4e-3, edge=0.5), EdgeSearch(max_runs=3))
    assert len(runs) == 6 and "bound of 3 runs" in plans[-1].reason
    one_left = plan_next("lr_sweep", 9, runs[:5], EdgeSearch(max_runs=3), extra_runs=2)
    assert len(one_left.next) == 1 and one_left.purposes[0].startswith("optimum")


def test_a_run_whose_loss_rose_above_its_start_is_never_selected_nor_stable():
    unstable = Outcome("lr_max~0.03", 0.03, "unstable", 1.5, "runs/0.03")  # the lowest loss, but unstable
    runs = [outcome(1e-3, loss=2.5), outcome(1e-2, loss=2.0), unstable, outcome(0.1, "diverged")]
    assert not unstable.stable and unstable.kind == "unstable"
    selection = choose_best("lr_sweep", "lr_sweep", "optim.lr_max", runs, locate_edge(runs, 2.0))
    assert selection.value == 1e-2 and "1 unstable (0.03)" in selection.why
    assert locate_edge(runs, 2.0) == Edge(1e-2, 0.03, pytest.approx(3.0), 2.0), "the edge is below the unstable run"
    assert locate_optimum(runs, 2.0).above == 0.03, "a not-stable neighbour is no better"


def test_files_round_trip(tmp_path):
    runs = [outcome(1e-3, loss=2.5), outcome(1e-2, "diverged")]
    edge = locate_edge(runs, 2.0)
    plan = plan_next("lr_sweep", 0, runs, EdgeSearch(), extra_runs=0)
    sel.write_plan(tmp_path / "p.json", plan)
    assert sel.read_plan(tmp_path / "p.json") == plan
    assert plan.next == (0.000333, 0.00316) and plan.purposes == ("optimum", "edge")
    selection = choose_best("lr_sweep", "lr_sweep", "optim.lr_max", runs, edge, locate_optimum(runs, 2.0), [plan])
    sel.write_selection(tmp_path / "s.json", selection)
    assert sel.read_selection(tmp_path / "s.json") == selection


def test_unreadable_selection_names_the_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"selection_version": 2, "value": 1}')
    with pytest.raises(SelectionError, match=r"bad.json is not a valid selection file .*select_best"):
        sel.read_selection(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(SelectionError, match="old.json is not a version-2 selection file"):
        sel.read_selection(tmp_path / "old.json")
    with pytest.raises(SelectionError, match="cannot read"):
        sel.read_selection(tmp_path / "missing.json")


def tuned(factor: float, base: float = 1e-2, status: str = "ok", loss: float = 2.0) -> Outcome:
    return Outcome(f"batch_size~8__lr_max~x{factor:g}", base * factor, status,
                   None if status == "diverged" else loss, f"runs/{factor:g}")


def test_a_tuned_choice_at_an_end_extends_the_range_by_the_spacing_there():
    runs = [tuned(0.5, loss=2.5), tuned(1.0, loss=2.2), tuned(2.0, loss=2.0)]
    factors = {o.variant: o.value / 1e-2 for o in runs}
    up = sel.plan_tuning("batch_size/batch_size~8", 0, runs, factors, max_runs=2, extra_runs=0)
    assert up.next == (4.0,) and "is the largest tried: extending up to factor 4" in up.reason
    low = [tuned(0.5, loss=1.9), tuned(1.0, loss=2.2), tuned(2.0, loss=2.0)]
    down = sel.plan_tuning("s", 0, low, {o.variant: o.value / 1e-2 for o in low}, max_runs=2, extra_runs=0)
    assert down.next == (0.25,) and "smallest tried" in down.reason


def test_a_tuned_choice_with_neighbours_on_both_sides_is_interior_even_if_one_diverged():
    runs = [tuned(0.5, loss=2.5), tuned(1.0, loss=2.2), tuned(2.0, loss=2.0), tuned(4.0, status="diverged")]
    plan = sel.plan_tuning("s", 1, runs, {o.variant: o.value / 1e-2 for o in runs}, max_runs=2, extra_runs=1)
    assert plan.next == () and plan.optimum.bracketed and "an interior optimum" in plan.reason


def test_a_tuned_extension_stops_at_its_bound_and_says_why():
    runs = [tuned(0.5, loss=2.5), tuned(1.0, loss=2.2), tuned(2.0, loss=2.1), tuned(4.0, loss=2.0)]
    plan = sel.plan_tuning("s", 1, runs, {o.variant: o.value / 1e-2 for o in runs}, max_runs=1, extra_runs=1)
    assert plan.next == () and "stopped at the bound of 1 runs" in plan.reason and "may lie further out" in plan.reason
