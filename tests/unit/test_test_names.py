"""`make test` runs pytest over all of tests/ at once: two test modules
with one basename cannot both be collected (pytest's rootdir-less import
mode), which stops the whole run."""
import collections
import pathlib

TESTS = pathlib.Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_name():
    names = collections.defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        names[path.name].append(str(path.relative_to(TESTS)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}
