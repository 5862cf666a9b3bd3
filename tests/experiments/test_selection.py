"""cs336lm.experiments.selection: the choice rule (lowest final loss among runs that did not diverge, ties to the
smaller value),
the edge of stability, the edge search's next value round by round, and the selection/plan files."""

from __future__ import annotations

import math

import pytest

from cs336lm.experiments import selection as sel
from cs336lm.experiments.selection import Edge, EdgeSearch, Outcome, SelectionError, choose_best, locate_edge, plan_next


def outcome(value: float, status: str = "ok", loss: float | None = 2.0) -> Outcome:
    return Outcome(f"lr_max~{value:g}", value, status, None if status == "diverged" else loss, f"runs/{value:g}")


def test_best_is_the_lowest_final_loss_among_runs_that_did_not_diverge():
    runs = [outcome(1e-3, loss=2.5), outcome(3e-3, loss=2.1), outcome(1e-2, "diverged"), outcome(3e-2, "diverged")]
    selection = choose_best("lr_sweep", "lr_sweep", "optim.lr_max", runs)
    assert (selection.value, selection.variant, selection.final_val_loss) == (3e-3, "lr_max~0.003", 2.1)
    assert selection.rule == sel.CHOICE_RULE
    assert "0.003" in selection.why and "2 diverged (0.01, 0.03)" in selection.why and "next: 0.001" in selection.why
    assert [c.value for c in selection.candidates] == [1e-3, 3e-3, 1e-2, 3e-2]


def test_a_tie_goes_to_the_smaller_value():
    runs = [outcome(3e-3, loss=2.0), outcome(1e-3, loss=2.0), outcome(1e-2, loss=2.2)]
    assert choose_best("s", "s", "optim.lr_max", runs).value == 1e-3


def test_a_diverged_run_never_wins_even_with_a_finite_loss():
    runs = [outcome(1e-3, loss=3.0), Outcome("lr_max~0.1", 0.1, "diverged", 1.0, "runs/0.1"),
            Outcome("lr_max~0.2", 0.2, "out_of_memory", None, "runs/0.2")]
    assert choose_best("s", "s", "optim.lr_max", runs).value == 1e-3


def test_nothing_stable_is_an_error_naming_the_sweep():
    with pytest.raises(SelectionError, match=r"no run of lr_sweep .*lr_max~0.1: diverged.*experiments.lr_sweep"):
        choose_best("lr_sweep", "lr_sweep", "optim.lr_max", [outcome(0.1, "diverged")])


def test_edge_is_the_top_of_the_stable_range():
    # A rate too small to learn counts as diverged; it must not hide the edge above the stable ones.
    runs = [outcome(1e-4, "diverged"), outcome(1e-3), outcome(1e-2), outcome(0.1, "diverged"), outcome(1, "diverged")]
    assert locate_edge(runs, 2.0) == Edge(1e-2, 1e-1, pytest.approx(10.0), 2.0)
    assert locate_edge([outcome(1e-3)], 2.0) == Edge(1e-3, None, None, 2.0)
    assert locate_edge([outcome(1e-3, "diverged")], 2.0) == Edge(None, 1e-3, None, 2.0)


def run_search(grid: list[float], edge: float, search: EdgeSearch) -> list:
    """Drive plan_next against a toy world where every rate >= edge diverges; the plans in order."""
    runs = [outcome(v, "diverged" if v >= edge else "ok") for v in grid]
    plans = []
    while True:
        plan = plan_next("lr_sweep", len(plans), runs, search, extra_runs=len(runs) - len(grid))
        plans.append(plan)
        if not plan.next:
            return plans
        runs += [outcome(v, "diverged" if v >= edge else "ok") for v in plan.next]


def test_search_extends_upward_until_a_rate_diverges_then_refines_within_the_factor():
    plans = run_search([1e-3, 1e-2], edge=0.5, search=EdgeSearch(factor=2.0, step=3.0, max_runs=10))
    tried = [v for p in plans for v in p.next]
    assert tried[:3] == [0.03, 0.09, 0.27] and tried[3] == 0.81  # ×3 until 0.81 diverges
    assert all(0.27 < v < 0.81 for v in tried[4:])  # then only inside the bracket
    final = plans[-1].edge
    assert final.largest_stable < 0.5 <= final.smallest_diverged and final.factor <= 2.0
    assert "within the target factor 2" in plans[-1].reason


def test_search_stops_at_its_bound_of_extra_runs():
    plans = run_search([1e-3], edge=100.0, search=EdgeSearch(factor=2.0, step=3.0, max_runs=3))
    assert len([v for p in plans for v in p.next]) == 3
    assert "bound of 3 runs" in plans[-1].reason and plans[-1].edge.smallest_diverged is None


def test_search_with_a_diverged_grid_point_refines_without_extending():
    plans = run_search([1e-3, 1e-2, 1e-1], edge=0.05, search=EdgeSearch(factor=2.0, step=3.0, max_runs=6))
    assert plans[0].next == (0.0316,)  # sqrt(0.01 * 0.1) at three significant digits
    assert plans[-1].edge.factor <= 2.0


def test_files_round_trip(tmp_path):
    runs = [outcome(1e-3, loss=2.5), outcome(1e-2, "diverged")]
    edge = locate_edge(runs, 2.0)
    selection = choose_best("lr_sweep", "lr_sweep", "optim.lr_max", runs, edge)
    sel.write_selection(tmp_path / "s.json", selection)
    assert sel.read_selection(tmp_path / "s.json") == selection
    plan = plan_next("lr_sweep", 0, runs, EdgeSearch(), extra_runs=0)
    sel.write_plan(tmp_path / "p.json", plan)
    assert sel.read_plan(tmp_path / "p.json") == plan
    assert math.isclose(plan.next[0], 0.00316)


def test_unreadable_selection_names_the_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"selection_version": 1, "value": 1}')
    with pytest.raises(SelectionError, match=r"bad.json is not a valid selection file .*select_best"):
        sel.read_selection(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(SelectionError, match="old.json is not a version-1 selection file"):
        sel.read_selection(tmp_path / "old.json")
    with pytest.raises(SelectionError, match="cannot read"):
        sel.read_selection(tmp_path / "missing.json")
