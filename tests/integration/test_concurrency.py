"""Two runtimes acting on one id at once never corrupt its state: one wins,
the other fails with a one-line error (or does nothing, as runc would), the
state is then consistent, and a final delete -f leaves nothing."""
import json
import subprocess
import tempfile

import pytest

from conftest import OCIRT
from test_crash import crash_bundle, debris

ROUNDS = 8


def together(oci, a, b):
    """Start two commands at once; -> [(rc, stderr)] in their order (stderr
    through files: a created init keeps an inherited pipe open)."""
    errs = [tempfile.TemporaryFile() for _ in range(2)]
    procs = [subprocess.Popen([OCIRT, "--root", oci.root, *argv], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err) for argv, err in zip((a, b), errs)]
    out = []
    for p, err in zip(procs, errs):
        rc = p.wait(timeout=30)
        err.seek(0)
        out.append((rc, err.read().decode(errors="replace")))
        err.close()
    return out


def one_line_errors(results):
    for rc, err in results:
        if rc:
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def status(oci, cid):
    """The state's status, None if the id does not exist; state must parse."""
    res = oci("state", cid, check=False)
    if res.rc:
        assert "does not exist" in res.err, res
        return None
    return json.loads(res.out)["status"]


def finish(oci, b):
    oci("delete", "--force", b.cid)
    assert debris(oci, b) == []


def test_create_and_create(oci):
    b = crash_bundle(oci)
    create = ["create", "--bundle", b.path, b.cid]
    for _ in range(ROUNDS):
        res = together(oci, create, create)
        one_line_errors(res)
        assert sorted(rc for rc, _ in res)[0] == 0 and sorted(rc for rc, _ in res)[1] != 0, res
        assert any("already exists" in err for _, err in res), res
        assert status(oci, b.cid) == "created"
        finish(oci, b)


def test_delete_and_start(oci):
    b = crash_bundle(oci)
    for _ in range(ROUNDS):
        oci("create", "--bundle", b.path, b.cid)
        res = together(oci, ["delete", b.cid], ["start", b.cid])
        one_line_errors(res)
        (drc, _), (src, _) = res
        # delete first: start finds no container; start first: the container runs and delete refuses
        assert (drc, src) in ((0, 1), (1, 0)), res
        assert status(oci, b.cid) == (None if drc == 0 else "running")
        finish(oci, b)


def test_kill_and_delete(oci):
    b = crash_bundle(oci)
    for _ in range(ROUNDS):
        oci("create", "--bundle", b.path, b.cid)
        oci("start", b.cid)
        res = together(oci, ["kill", b.cid, "KILL"], ["delete", "--force", b.cid])
        one_line_errors(res)
        assert res[1][0] == 0, res  # delete -f always wins in the end; kill either came first or finds nothing
        assert res[0][0] == 0 or "does not exist" in res[0][1] or "not running" in res[0][1], res
        assert status(oci, b.cid) is None
        finish(oci, b)


def test_start_and_start(oci):
    b = crash_bundle(oci)
    start = ["start", b.cid]
    for _ in range(ROUNDS):
        oci("create", "--bundle", b.path, b.cid)
        res = together(oci, start, start)
        one_line_errors(res)
        assert sorted(rc for rc, _ in res) == [0, 1], res
        assert any("cannot start an already running container" in err for _, err in res), res
        assert status(oci, b.cid) == "running"
        finish(oci, b)


@pytest.mark.parametrize("second", ["create", "state"])
def test_delete_force_during_create(oci, second):
    """delete -f meets a create of the same id at any moment: it waits for
    it, or finds nothing; either way no create is left half made."""
    b = crash_bundle(oci)
    for _ in range(ROUNDS):
        res = together(oci, ["create", "--bundle", b.path, b.cid], ["delete", "--force", b.cid])
        one_line_errors(res)
        assert res[1][0] == 0, res
        assert status(oci, b.cid) in ((None, "created") if res[0][0] == 0 else (None,))
        if second == "create":  # the id is free or a whole container: either way usable again
            oci("delete", "--force", b.cid)
            oci("create", "--bundle", b.path, b.cid)
        finish(oci, b)
