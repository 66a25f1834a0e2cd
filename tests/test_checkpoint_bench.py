"""``bench.kafka.checkpoints`` on small tasks: its two ways restore the same task, and written
as changes, a steady task's checkpoints are a fraction of the whole (sizes, not times)."""

from __future__ import annotations

from bench.kafka.checkpoints import main, measure, measure_monitor


def test_changes_are_a_fraction_of_a_steady_join_and_restore_it() -> None:
    whole = measure(4000, 200, chained=False)
    chained = measure(4000, 200, chained=True)  # measure() checks each restored task
    assert whole["changes_at_end"] == 0 and chained["changes_at_end"] > 0
    # 200 of 4,000 held change a commit: whole each time is ~20x the changes, which are
    # written about twice (once as changes, once within a later whole checkpoint)
    assert chained["mb_per_commit"] < whole["mb_per_commit"] / 4


def test_the_benchmark_prints_one_row_per_size(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--held", "1000", "2000", "--per-commit", "100"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 4 and rows[2].split()[0] == "1,000" and rows[3].split()[0] == "2,000"


def test_a_quiet_monitor_task_writes_a_fraction_and_restores_with_its_learners() -> None:
    # measure_monitor() checks that each restored task has the counts and versions it had
    whole = measure_monitor(50, chained=False, learner="logistic_regression")
    chained = measure_monitor(50, chained=True, learner="logistic_regression")
    assert whole["changes_at_end"] == 0 and chained["changes_at_end"] > 0
    # 50 events a commit against windows and learners of ~1 MB
    assert chained["mb_per_commit"] < whole["mb_per_commit"] / 4
