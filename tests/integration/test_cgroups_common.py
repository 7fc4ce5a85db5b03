"""Helpers for the cgroup integration tests (no tests here): a test parent
cgroup named for this process, and workload processes that join a cgroup
before they run, as the C helper makes container processes do."""
import os
import signal
import subprocess
import sys
import time

import pytest

from ocirt.cgroups import fs

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="cgroup tests need root")
PARENT = f"ocirt-test-{os.getpid()}"
PY = [sys.executable, "-S", "-c"]


def say(request, line):
    """Print a line in pytest's output even when it captures."""
    plugins = request.config.pluginmanager
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        plugins.get_plugin("terminalreporter").write_line(line)


def spawn(cg, code, **kw):
    """Run Python code in a new process that joins cg before it starts (by
    writing "0" into every join file, as the C helper does)."""
    def join():
        for f in cg.join_files():
            with open(f, "w") as fh:
                fh.write("0")
    return subprocess.Popen(PY + [code], preexec_fn=join, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def stats_while_running(cg, code):
    """cg.stats() while `code` runs in cg, once it has printed "ok"."""
    p = spawn(cg, code)
    try:
        assert p.stdout.readline() == "ok\n"
        return cg.stats()
    finally:
        cg.kill_all(signal.SIGKILL)
        p.wait()


FORKER = """
import os, time
n = 0
for i in range(40):
    try:
        pid = os.fork()
    except OSError as e:
        print(n, e.errno, flush=True)
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
else:
    print(n, 0, flush=True)
time.sleep(30)
"""

HOG = "b = b'x' * (200 << 20); print('survived', flush=True)"


def counter(path):
    # written aside and renamed: a freeze between truncate and write would
    # otherwise leave the file empty for as long as the process is frozen
    return f"""
import os, time
i = 0
while True:
    i += 1
    with open({path!r} + ".tmp", "w") as f:
        f.write(str(i))
    os.replace({path!r} + ".tmp", {path!r})
    time.sleep(0.01)
"""


def read_count(path):
    for _ in range(50):
        try:
            return int(open(path).read())
        except (OSError, ValueError):
            time.sleep(0.01)
    raise AssertionError(f"no count in {path}")


def wait_count_above(path, n, timeout=30):
    assert fs.wait_for(lambda: os.path.exists(path) and _safe(path) > n, timeout), f"{path} stuck at {n}"


def _safe(path):
    try:
        return int(open(path).read())
    except (OSError, ValueError):
        return -1


def check_freeze(cg, tmp_path, settle=0.3):
    """A counting process stops while frozen and counts again after thaw."""
    path = str(tmp_path / "count")
    p = spawn(cg, counter(path))
    try:
        wait_count_above(path, 2)
        cg.freeze()
        assert cg.is_frozen()
        before = read_count(path)
        time.sleep(settle)
        assert read_count(path) == before
        cg.thaw()
        assert not cg.is_frozen()
        wait_count_above(path, before)
    finally:
        cg.kill_all(9)
        p.wait()


def check_pids_limit(cg, limit):
    """With pids.max = limit, the limit-th fork fails with EAGAIN."""
    p = spawn(cg, FORKER)
    try:
        line = p.stdout.readline().split()
        assert line == [str(limit - 1), "11"], line        # the forker itself is one task
        assert len(cg.pids()) == limit
    finally:
        cg.kill_all(9)
        p.wait()
    assert fs.wait_for(lambda: cg.pids() == [], 10)


def check_oom(cg):
    before = cg.oom_count()
    p = spawn(cg, HOG)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == -9 and "survived" not in out
    assert cg.oom_count() == before + 1


def check_kill_all(cg, sig):
    p = spawn(cg, "import subprocess, time\n[subprocess.Popen(['sleep', '60']) for _ in range(3)]\ntime.sleep(60)")
    try:
        assert fs.wait_for(lambda: len(cg.pids()) == 4, 30), cg.pids()
        assert p.pid in cg.pids()
        cg.kill_all(sig)
        p.wait(timeout=30)
        assert fs.wait_for(lambda: cg.pids() == [], 10), cg.pids()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
