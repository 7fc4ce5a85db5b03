"""pytest wiring of the conformance suite: the runtime under test, the shared rootfs,
per-test bundles and clean-up, known deviations, and the per-runtime summary line."""
import functools
import os
import shutil
import subprocess
import tempfile
import tomllib

import pytest

from .clauses import CONF_DIR, load_clauses
from .harness import (EXTRA_DIRS, EXTRA_FILES, SYSTEMD, Bundle, Runtime, remove_cgroup_tree, rootless_bundle,
                      throwaway_users)

REPO = os.path.dirname(CONF_DIR)
DEVIATIONS = os.path.join(CONF_DIR, "deviations.toml")
OUTCOMES = ("passed", "failed", "xfailed", "skipped")
# CONFORMANCE_ROOTLESS=1: every runtime command as a throw-away user, on
# rootless bundles (harness.rootless_bundle); deviations.toml's [rootless]
# lists what cannot apply to any rootless runtime
ROOTLESS = os.environ.get("CONFORMANCE_ROOTLESS") == "1"


def pytest_addoption(parser):
    parser.addoption("--runtime", default=None,
                     help="runtime binary to test (default: $RUNTIME, else runc on PATH)")


def pytest_configure(config):
    config.addinivalue_line("markers", "clause(*ids): spec clauses (conformance/clauses.toml) a test checks")


def runtime_binary(config):
    name = config.getoption("--runtime") or os.environ.get("RUNTIME") or "runc"
    path = shutil.which(name)
    if not path:
        raise pytest.UsageError(f"conformance: runtime {name!r} not found (set RUNTIME or --runtime)")
    return os.path.abspath(path)


@functools.cache
def _version_name(binary):
    """First word of `BINARY --version` ("runc version 1.1.5" -> "runc"), so that a
    wrapper such as crun-hybrid is keyed by the runtime it runs; else the basename."""
    try:
        res = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        words = res.stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        words = []
    return words[0] if len(words) > 1 and words[1] == "version" else os.path.basename(binary)


def runtime_key(config):
    """Name that keys deviations.toml: the runtime's name as its --version prints it."""
    return _version_name(runtime_binary(config))


def load_deviations(key):
    """{test selector: reason} of known deviations / expected failures of one runtime."""
    with open(DEVIATIONS, "rb") as f:
        data = tomllib.load(f)
    out = {}
    for entry in data.get(key, []):
        why = entry.get("clause") or f"missing feature: {entry.get('feature')}"
        out[entry["test"]] = f"known {key} deviation [{why}]: {entry['reason']}"
    return out


def selector(item):
    return os.path.relpath(str(item.path), CONF_DIR) + "::" + item.name


def in_suite(item_or_path):
    path = str(getattr(item_or_path, "path", item_or_path))
    return os.path.abspath(path).startswith(CONF_DIR + os.sep)


def pytest_collection_modifyitems(config, items):
    known = {c["id"] for c in load_clauses()}
    unknown = sorted({(item.name, cid) for item in items if in_suite(item)
                      for m in item.iter_markers("clause") for cid in m.args if cid not in known})
    if unknown:
        raise pytest.UsageError(f"conformance: tests name unknown clause ids: {unknown}")
    deviations = load_deviations(runtime_key(config))
    if ROOTLESS:
        deviations |= load_deviations("rootless") | load_deviations(f"{runtime_key(config)}-rootless")
    for item in items:
        if not in_suite(item):
            continue
        sel = selector(item)
        reason = deviations.get(sel) or deviations.get(sel.split("[", 1)[0])
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


def pytest_terminal_summary(terminalreporter, config):
    counts = dict.fromkeys(OUTCOMES + ("error", "xpassed"), 0)
    for outcome in counts:
        for rep in terminalreporter.stats.get(outcome, []):
            nodepath = os.path.join(str(config.rootpath), rep.nodeid.split("::", 1)[0])
            if in_suite(nodepath) and getattr(rep, "when", "call") in ("call", "setup", "teardown"):
                counts[outcome] += 1
    if not sum(counts.values()):
        return
    extra = "".join(f", {counts[k]} {k}" for k in ("error", "xpassed") if counts[k])
    terminalreporter.write_line(
        f"conformance[{runtime_key(config)}{', rootless' if ROOTLESS else ''}]: " + ", ".join(f"{counts[k]} {k}" for k in OUTCOMES) + extra)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="session")
def session_dir():
    d = tempfile.mkdtemp(prefix="ocirt-conformance-")
    os.chmod(d, 0o755)  # the rootfs inside must be reachable by a user namespace's root
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs(session_dir):
    """The busybox rootfs, made once, shared read-only by every bundle."""
    path = os.path.join(session_dir, "rootfs")
    subprocess.run(["sh", os.path.join(REPO, "bundles", "mkrootfs.sh"), path], check=True)
    for d in EXTRA_DIRS:
        os.makedirs(os.path.join(path, d), exist_ok=True)
    for f in EXTRA_FILES:
        open(os.path.join(path, f), "a").close()
    return path


@pytest.fixture(scope="session")
def rootless_user():
    """The user every command runs as (CONFORMANCE_ROOTLESS), or None."""
    if not ROOTLESS:
        yield None
        return
    with throwaway_users([f"occonf{os.getpid() % 100000}"]) as made:
        yield made[0]


@pytest.fixture(scope="session")
def rt(request, session_dir, rootless_user):
    root = os.path.join(session_dir, "state")
    os.makedirs(root)
    if rootless_user:
        rootless_user.own(root, 0o700)
    return Runtime(runtime_binary(request.config), root, ["--systemd-cgroup"] if SYSTEMD else [], rootless_user)


@pytest.fixture(scope="session")
def cg_parent():
    """Parent cgroup of every container of this session, removed at the end."""
    parent = f"/ocirt-conformance-{os.getpid()}"
    yield parent
    remove_cgroup_tree(parent)


class Containers:
    """Bundles and containers of one test, all removed when the test ends."""

    def __init__(self, rt, rootfs, base, cg_parent):
        self.rt, self.rootfs, self.base, self.cg_parent = rt, rootfs, base, cg_parent
        self.bundles = []

    def bundle(self, script=None, args=("true",), path=None):
        if path is None:
            path = os.path.join(self.base, f"bundle{len(self.bundles)}")
            os.makedirs(path)
        b = Bundle(path, self.rootfs, "", args)
        # with systemd, a scope per container (the parent is for cgroupfs paths)
        b.linux["cgroupsPath"] = f"system.slice:sd-conf:{b.cid}" if SYSTEMD else f"{self.cg_parent}/{b.cid}"
        if self.rt.user:
            rootless_bundle(b, self.rt.user)
        if script is not None:
            b.sh(script)
        self.bundles.append(b)
        return b

    def run(self, b, check=True, extra=(), timeout=None, prefix=()):
        """`run` the bundle (foreground): the result holds the container's stdout."""
        b.write()
        kw = {"timeout": timeout} if timeout else {}
        return self.rt("run", "--bundle", b.path, *extra, b.cid, check=check, prefix=prefix, **kw)

    def create(self, b, check=True, extra=()):
        b.write()
        return self.rt("create", "--bundle", b.path, *extra, b.cid, check=check)

    def cleanup(self):
        for b in self.bundles:
            self.rt("delete", "--force", b.cid, check=False)
            cg = b.linux.get("cgroupsPath", "")
            if cg.startswith(self.cg_parent + "/"):
                remove_cgroup_tree(cg)


@pytest.fixture
def ct(rt, rootfs, cg_parent, tmp_path, session_dir):
    # rootless: bundles where the user reaches them (pytest's tmp_path is root's alone)
    base = rt.user.own(tempfile.mkdtemp(dir=session_dir)) if rt.user else str(tmp_path)
    c = Containers(rt, rootfs, base, cg_parent)
    yield c
    c.cleanup()
    if rt.user:
        shutil.rmtree(base, ignore_errors=True)
