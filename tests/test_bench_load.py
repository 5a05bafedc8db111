"""The verdict logic of bench/load.py: which errors a fault window excuses."""

from __future__ import annotations

from typing import Any, cast

from bench.load import Faults, FaultWindow, Sample, Stats, percentile, summarize


def _faults(windows: list[FaultWindow]) -> Faults:
    faults = Faults(cast(Any, None), t0=0.0, duration=600)
    faults.windows = windows
    return faults


def test_errors_inside_a_fault_window_plus_grace_are_excused_others_are_not() -> None:
    """A 5xx or a lost connection counts against the run only outside a window (+ grace)."""
    stats = Stats()
    stats.add(Sample("GET /cases", 100.0, 0.1, 503))  # inside the Redis window
    stats.add(Sample("GET /cases", 112.0, 0.1, 0, "ConnectionError"))  # within the grace
    stats.add(Sample("GET /cases", 130.0, 0.1, 500, "boom"))  # long after: counts
    stats.add(Sample("GET /cases", 101.0, 0.1, -1, "KeyError"))  # a script bug: always counts
    stats.add(Sample("GET /cases", 131.0, 0.2, 200))
    stats.add(Sample("GET /cases", 132.0, 0.1, 404))
    summary = summarize(stats, _faults([FaultWindow("redis", 99.5, 103.0)]), 0.0, 200.0, 10)

    assert summary["errors_in_fault_windows"] == 2
    assert [(e["status"], e["at_s"]) for e in summary["errors_outside_fault_windows"]] == [
        (500, 130.0),
        (-1, 101.0),
    ]
    assert summary["status_4xx"] == 1
    endpoint = summary["endpoints"]["GET /cases"]
    assert endpoint["requests"] == 6
    assert endpoint["statuses"]["503"] == 1


def test_percentile_is_the_nearest_rank() -> None:
    """p50 and p95 of 1..100 ms are taken from the sorted values."""
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0


def test_a_request_running_when_the_fault_struck_is_excused() -> None:
    """A slow request started before a gunicorn worker was killed fails because of it."""
    stats = Stats()
    stats.add(Sample("GET /cases/{id}", 448.6, 3.0, 0, "ConnectionError"))  # spans 450
    stats.add(Sample("GET /cases/{id}", 440.0, 3.0, 0, "ConnectionError"))  # ended before
    summary = summarize(stats, _faults([FaultWindow("gunicorn", 450.0, 452.3)]), 0.0, 600.0, 10)

    assert summary["errors_in_fault_windows"] == 1
    assert [e["at_s"] for e in summary["errors_outside_fault_windows"]] == [440.0]
