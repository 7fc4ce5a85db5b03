"""The clause matrix is consistent: known ids only, every MUST tested or excused,
CLAUSES.md regenerated, deviations naming real clauses and tests. Needs no runtime."""
import ast
import glob
import os
import tomllib

from . import clauses as matrix
from .clauses import CONF_DIR, MATRIX, load_clauses, problems, render


def test_matrix_has_no_gaps():
    assert problems(load_clauses(), matrix.tests_by_clause()) == []


def test_clauses_md_is_up_to_date():
    with open(MATRIX) as f:
        assert f.read() == render(load_clauses(), matrix.tests_by_clause()), \
            "CLAUSES.md is stale: run python conformance/clauses.py"


def test_deviations_name_known_clauses_and_tests():
    ids = {c["id"] for c in load_clauses()}
    tests = set()
    for path in glob.glob(os.path.join(CONF_DIR, "test_*.py")):
        with open(path) as f:
            tests |= {f"{os.path.basename(path)}::{n.name}" for n in ast.parse(f.read()).body
                      if isinstance(n, ast.FunctionDef)}
    with open(os.path.join(CONF_DIR, "deviations.toml"), "rb") as f:
        data = tomllib.load(f)
    bad = []
    for runtime, entries in data.items():
        for e in entries:
            if e["test"].split("[", 1)[0] not in tests:
                bad.append(f"{runtime}: no test {e['test']}")
            if "clause" in e and e["clause"] not in ids:
                bad.append(f"{runtime}: unknown clause {e['clause']}")
            if not ("clause" in e or "feature" in e) or not e.get("reason"):
                bad.append(f"{runtime}: {e['test']} needs a clause (or feature) and a reason")
    assert bad == []
