"""checkpoint and restore through CRIU, on real containers: a busybox
counter is dumped, killed, restored and counts on from where it was. CRIU
needs a kernel it supports: these skip where `criu check` fails (this
host's 6.18) and run in the VM (tests/vm/run-criu-tests.sh, kernel 6.1),
on ocirt and on runc (OCIRT=/usr/sbin/runc)."""
import os
import subprocess
import time

import pytest

from conftest import OCIRT

CRIU = "/usr/sbin/criu"
IS_RUNC = os.path.basename(OCIRT) == "runc"
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /count/n; sleep 0.2; done"


def _criu_works():
    if not os.access(CRIU, os.X_OK):
        return False
    return subprocess.run([CRIU, "check"], capture_output=True).returncode == 0


needs_criu = pytest.mark.skipif(not _criu_works(), reason="criu check fails on this kernel")


def counter(oci, tmp_path):
    """A detached busybox that writes an ever larger number to /count/n (a bind mount)."""
    out = tmp_path / f"count-{len(oci.bundles)}"
    out.mkdir()
    b = oci.bundle(COUNTER)
    b.config["mounts"].append({"destination": "/count", "type": "bind", "source": str(out),
                               "options": ["rbind", "rw"]})
    oci.run(b, "--detach")
    oci.pids.append(oci.state(b.cid)["pid"])
    return b, out / "n"


def read_count(path, above=0, timeout=20):
    """The count, once it is above `above` (it moves)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            n = int(path.read_text() or 0)
        except (OSError, ValueError):
            n = 0
        if n > above:
            return n
        time.sleep(0.1)
    raise AssertionError(f"{path}: the count did not pass {above}")


@pytest.mark.skipif(IS_RUNC, reason="ocirt's own message")
def test_missing_criu_is_one_line(oci, tmp_path):
    b, n = counter(oci, tmp_path)
    res = oci("--criu", "/nonexistent/criu", "checkpoint", "--image-path", str(tmp_path / "img"), b.cid,
              check=False)
    assert res.rc == 1
    assert res.err.strip() == "ocirt: checkpoint: criu is not installed (/nonexistent/criu not found)"
    assert oci.status(b.cid) == "running"


@needs_criu
def test_checkpoint_stops_and_removes_the_container(oci, tmp_path):
    b, n = counter(oci, tmp_path)
    read_count(n, 2)
    img = tmp_path / "img"
    oci("checkpoint", "--image-path", str(img), b.cid)
    assert oci.status(b.cid) is None          # as runc: gone after a dump
    assert (img / "inventory.img").exists()
    stopped = int(n.read_text())
    time.sleep(1)
    assert int(n.read_text()) == stopped      # nothing counts any more


@needs_criu
def test_leave_running(oci, tmp_path):
    b, n = counter(oci, tmp_path)
    read_count(n, 1)
    img = tmp_path / "img"
    oci("checkpoint", "--leave-running", "--image-path", str(img), b.cid)
    assert (img / "inventory.img").exists()
    assert oci.status(b.cid) == "running"
    read_count(n, int(n.read_text()) + 2)     # still counting


@needs_criu
def test_pre_dump_then_dump(oci, tmp_path):
    b, n = counter(oci, tmp_path)
    read_count(n, 1)
    (tmp_path / "img").mkdir()
    pre, final = tmp_path / "img" / "pre", tmp_path / "img" / "final"
    oci("checkpoint", "--pre-dump", "--image-path", str(pre), b.cid)
    assert oci.status(b.cid) == "running"
    oci("checkpoint", "--parent-path", "../pre", "--image-path", str(final), b.cid)
    assert oci.status(b.cid) is None
    assert os.readlink(final / "parent") == "../pre"
