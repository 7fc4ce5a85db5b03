"""tools/bench_check.py: what makes `make bench` fail (never a timing)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import bench_check  # noqa: E402


def doc(**failed):
    return {"runtimes": [{"name": "ocirt"}, {"name": "runc"}], "units": {"state": "ms", "run": "ms"},
            "samples": {"state": {"ocirt": [7.9], "runc": [3.5]}, "run": {"ocirt": [17.0]}},
            "failed": failed}


def test_a_complete_run_passes_whatever_its_timings():
    assert bench_check.problems(doc(), ["ocirt"]) == []


def test_a_failed_workload_a_missing_metric_or_runtime_fails():
    assert bench_check.problems(doc(**{"state / ocirt": "state: exit status 1"}), ["ocirt"]) == [
        "ocirt: state: state: exit status 1"]
    assert bench_check.problems(doc(), ["runc"]) == ["runc: run: no samples"]
    assert bench_check.problems(doc(), ["crun"]) == ["crun: not in the run"]
