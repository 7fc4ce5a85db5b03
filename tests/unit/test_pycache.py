"""The pycache finder (ocirt/__init__.py): ocirt's modules straight from their __pycache__, only
when the .pyc is what the standard loader would take."""
import os
import py_compile
import sys

import pytest

from ocirt import PycacheFinder, PycacheLoader


@pytest.fixture
def pkg(tmp_path):
    top = tmp_path / "pcpkg"
    (top / "sub").mkdir(parents=True)
    (top / "__init__.py").write_text("")
    (top / "sub" / "__init__.py").write_text("from . import leaf\n")
    (top / "sub" / "leaf.py").write_text("from ..other import X\nY = X + 1\n")
    (top / "other.py").write_text("X = 41\n")
    for f in ("sub/__init__.py", "sub/leaf.py", "other.py"):
        py_compile.compile(str(top / f), invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    return top


def test_a_valid_pyc_is_loaded_through_the_finder(pkg):
    finder = PycacheFinder("pcpkg", str(pkg))
    sys.path.insert(0, str(pkg.parent))
    sys.meta_path.insert(0, finder)
    try:
        from pcpkg.sub import leaf
        assert leaf.Y == 42 and leaf.__file__ == str(pkg / "sub" / "leaf.py")
        for name in ("pcpkg.sub", "pcpkg.sub.leaf", "pcpkg.other"):
            assert sys.modules[name].__loader__ is PycacheLoader, name
        assert sys.modules["pcpkg.sub"].__path__ == [str(pkg / "sub")]
        assert leaf.__cached__.endswith(f"__pycache__/leaf.{sys.implementation.cache_tag}.pyc")
        assert leaf.__spec__.loader_state.co_filename == leaf.__file__  # tracebacks name the source
        assert finder.find_spec("pcpkgx.other") is None and finder.find_spec("os") is None
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(pkg.parent))
        for name in [m for m in sys.modules if m.split(".")[0] == "pcpkg"]:
            del sys.modules[name]


def test_a_stale_missing_or_hash_pyc_is_left_to_the_standard_loader(pkg):
    finder = PycacheFinder("pcpkg", str(pkg))
    assert finder.find_spec("pcpkg.other") is not None
    (pkg / "other.py").write_text("X = 410\n")  # another size
    assert finder.find_spec("pcpkg.other") is None
    py_compile.compile(str(pkg / "other.py"), invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    assert finder.find_spec("pcpkg.other") is None
    st = os.stat(pkg / "sub" / "leaf.py")
    os.utime(pkg / "sub" / "leaf.py", (st.st_atime, st.st_mtime + 5))  # same size, another mtime
    assert finder.find_spec("pcpkg.sub.leaf") is None
    assert finder.find_spec("pcpkg.none") is None
