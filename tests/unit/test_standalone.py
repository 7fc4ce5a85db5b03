"""The repository stands on its own: nothing it builds, tests, benchmarks or
documents reads a folder beside the checkout (a clone from GitHub has none),
and every repository path the README and the Makefile name exists."""
import os
import re

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCANNED = ("Makefile", ".ci", "tests", "conformance", "bench", "tools", "bundles", "ocirt",
           "README.md", "setup.py", "pyproject.toml")
OUTSIDE = re.compile(r"(\.\./|/work/)shared\b")
SKIPPED_DIRS = {"__pycache__", "rootfs", ".pytest_cache"}


def files():
    for name in SCANNED:
        path = os.path.join(TOP, name)
        if os.path.isfile(path):
            yield path
        for root, dirs, names in os.walk(path):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
            yield from (os.path.join(root, n) for n in names)


def test_nothing_reads_a_folder_beside_the_checkout():
    found = []
    for path in files():
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
        found += [f"{os.path.relpath(path, TOP)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
                  for m in OUTSIDE.finditer(text)]
    assert not found, "\n".join(found)


def test_the_scan_sees_what_it_guards():
    scanned = {os.path.relpath(p, TOP) for p in files()}
    assert {"Makefile", ".ci/run", "README.md", "tests/vm/cgroup2-vm", "tests/clients/podman-smoke",
            "bench/ocibench", "tests/unit/test_standalone.py"} <= scanned


# A repository path in a command or a table cell: tests/..., bench/..., tools/...
NAMED = re.compile(r"(?<![\w./-])((?:tests|bench|tools|conformance|bundles)/[\w.-]+(?:/[\w.-]+)*)")
BUILT = {"bundles/busybox/rootfs"}   # by `make rootfs`, not in a fresh clone


@pytest.mark.parametrize("doc", ["README.md", "Makefile", "tests/vm/README.md", "tests/clients/README.md",
                                 "bench/README.md", "tests/vm/run-v2-tests.sh"])
def test_every_repository_path_named_exists(doc):
    with open(os.path.join(TOP, doc)) as f:
        named = set(NAMED.findall(f.read()))
    missing = sorted(p for p in named - BUILT if not os.path.exists(os.path.join(TOP, p.rstrip("."))))
    assert not missing
