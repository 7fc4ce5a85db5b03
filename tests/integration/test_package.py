"""What a wheel (`pip install .`) ships runs containers on its own: setup.py's
build tree, the one bdist_wheel zips, holds the cffi module, ocirt-init and
COMMIT, and a container runs from that tree with no source checkout on the
path (python -S: no editable install's finder either)."""
import os
import subprocess
import sys
import sysconfig

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("build"))
    lib = os.path.join(base, "lib")
    subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-base", base, "--build-lib", lib],
                   cwd=REPO, check=True, capture_output=True)
    return lib


def from_build(built, cwd, code, *argv):
    """Python code, then argv, with only the build tree and the dependencies on the path."""
    paths = [built, sysconfig.get_paths()["purelib"]]
    return subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path[0:1] = {paths!r}; {code}", *argv],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_build_holds_the_native_parts_and_uses_them(built, tmp_path):
    init = os.path.join(built, "ocirt", "_native", "ocirt-init")
    assert os.access(init, os.X_OK)
    p = from_build(built, tmp_path, "import ocirt._native._lib as lib, ocirt.launch as launch, ocirt.cli as cli; "
                   "print(lib.__file__, launch.INIT, cli._commit())")
    lib, used_init, commit = p.stdout.split()
    assert lib.startswith(built + "/ocirt/_native/_lib") and used_init == init, p
    with open(os.path.join(REPO, "ocirt", "COMMIT")) as f:   # make build's, from the same setup.py
        assert commit == f.read().strip()


def test_a_container_runs_from_the_build(built, oci, tmp_path):
    b = oci.bundle("mkdir /tmp/x; echo mkdir=$?")
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",   # compiled by the cffi module
                                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    b.write()
    p = from_build(built, tmp_path, "from ocirt.cli import main; sys.exit(main())",
                   "--root", oci.root, "run", "--bundle", b.path, b.cid)
    assert p.returncode == 0 and "mkdir=1" in p.stdout and "Operation not permitted" in p.stdout + p.stderr, p


def test_make_install_docs_takes_a_prefix(tmp_path):
    """A Debian-style layout: `make install PREFIX=/usr` puts the man pages
    and the completion under PREFIX/share (the launcher under PREFIX/bin)."""
    subprocess.run(["make", "-s", "install-docs", f"PREFIX={tmp_path}"], cwd=REPO, check=True,
                   capture_output=True)
    man = sorted(os.listdir(tmp_path / "share" / "man" / "man8"))
    assert "ocirt.8" in man and "ocirt-create.8" in man and "ocirt-exec.8" in man
    assert "complete -F _ocirt ocirt" in (tmp_path / "share" / "bash-completion" / "completions" / "ocirt").read_text()


def test_the_launcher_loads_ocirt_through_its_pycache_finder(tmp_path):
    """The command's start as the launcher writes it: ocirt's modules from
    their .pyc through the package's finder, the standard machinery for
    the package alone, and site-packages after the standard library."""
    launcher = tmp_path / "ocirt"
    subprocess.run([sys.executable, "-m", "ocirt._launcher", str(launcher)], cwd=REPO, check=True)
    start = launcher.read_text().split("from ocirt.cli import")[0]
    probe = ("import ocirt.cli, ocirt.api\n"
             "print(type(ocirt.__loader__).__name__, ocirt.cli.__loader__.__name__, ocirt.api.__loader__.__name__)\n"
             "print(sys.path.index(%r) == len(sys.path) - 1)\n" % sysconfig.get_paths()["purelib"])
    p = subprocess.run([sys.executable, "-S", "-c", start + probe], capture_output=True, text=True, timeout=30)
    assert p.stdout.split() == ["SourceFileLoader", "PycacheLoader", "PycacheLoader", "True"], p
