"""`dergw bench stacks` runs small and reports what it measured: the narrowed set is the live directives plus those
that ended after the first live one came, and every figure is a measured time; the reconnect's narrowed outcome
reads found the same running ramps as the full ones (measure raises otherwise)."""

from __future__ import annotations

from gateway.bench.stacks import measure


def test_small_run_reports_the_narrowed_set_and_its_times() -> None:
    figures = measure(stations=60, directives=80, live=5, sample=10)
    assert figures.needed == 5 + 75 // 20  # live, and one in twenty of the ended ones ended after they came
    assert figures.directives == 80
    assert min(figures.before_s, figures.after_cold_s, figures.after_s, figures.after_total_s) > 0
    assert figures.history == 80
    assert min(figures.reads_before_s, figures.reads_after_s) > 0
    assert len(figures.lines()) == 5
