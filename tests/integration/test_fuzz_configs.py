"""The config.json fuzzer: Hypothesis draws configs from the schema and
hostile mutations of real ones (ours, podman's, containerd's, the CRI's)
and `ocirt create` takes each. Whatever it draws: a refused config gives a
non-zero exit, one line on stderr and no traceback, within seconds, and
leaves nothing (state, cgroup, mount, process); an accepted one deletes
cleanly. A fixed seed and a modest count in `make test`; more on demand:
OCIRT_FUZZ_EXAMPLES=2000 (and OCIRT_FUZZ_SEED) for a longer run."""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from config_strategies import mutated
from conftest import OCIRT, REPO

sys.path.insert(0, REPO)
from conformance.harness import (cgroup_dirs_existing, default_config, mountinfo,  # noqa: E402
                                 procs_rooted_at, remove_cgroup_tree)

EXAMPLES = int(os.environ.get("OCIRT_FUZZ_EXAMPLES", "120"))
SEED = int(os.environ.get("OCIRT_FUZZ_SEED", "20261203"))
PARENT = f"/ocirt-fuzz-{os.getpid()}"


def bases(rootfs):
    """Our conformance config and the real clients' (their bind sources
    that do not exist here dropped)."""
    out = [default_config(["true"], "")]
    for path in sorted(glob.glob(os.path.join(REPO, "conformance", "fixtures", "clients", "*config.json"))):
        with open(path) as f:
            c = json.load(f)
        c["mounts"] = [m for m in c.get("mounts", []) if m.get("type") != "bind" or os.path.exists(m["source"])]
        c["process"]["terminal"] = False
        out.append(c)
    for c in out:
        c["root"] = {"path": rootfs}
    return out


def tame(doc, rootfs, cg):
    """What the fuzzer may not change: it runs on a real host. The rootfs is
    its own copy, no namespace of the host is joined (a mount namespace
    joined by path would take the container's mounts onto the host), no
    host link moved, every hook is /bin/true, the program is `true`."""
    if not isinstance(doc, dict):
        return doc
    if isinstance(doc.get("root"), dict):
        doc["root"]["path"] = rootfs
    if isinstance(doc.get("process"), dict):
        doc["process"]["args"] = ["true"]
    hooks = doc.get("hooks")
    if isinstance(hooks, dict):
        for entries in hooks.values():
            for h in entries if isinstance(entries, list) else []:
                if isinstance(h, dict):
                    h["path"] = "/bin/true"
    linux = doc.get("linux")
    if isinstance(linux, dict):
        linux["cgroupsPath"] = cg
        linux.pop("netDevices", None)
        if isinstance(linux.get("seccomp"), dict):
            linux["seccomp"].pop("listenerPath", None)
        for ns in linux.get("namespaces") or [] if isinstance(linux.get("namespaces"), list) else []:
            if isinstance(ns, dict):
                ns.pop("path", None)
    return doc


@pytest.fixture(scope="module")
def fuzz_rootfs():
    d = tempfile.mkdtemp(prefix="ocirt-fuzz-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "rootfs")
    subprocess.run(["sh", os.path.join(REPO, "bundles", "mkrootfs.sh"), path], check=True)
    yield path
    subprocess.run(["rm", "-rf", "--one-file-system", d], check=False)


def ocirt(root, *args):
    with tempfile.TemporaryFile() as err:  # not a pipe: a created init keeps it open
        t0 = time.monotonic()
        rc = subprocess.run([OCIRT, "--root", root, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err, timeout=20).returncode
        took = time.monotonic() - t0
        err.seek(0)
        return rc, err.read().decode(errors="replace"), took


def check_create(doc, root, rootfs, tmp_path, cg_of):
    """Create the tamed doc; the goals of the module docstring hold.
    cg_of(cid) -> (cgroupsPath, the cgroup under which nothing may be left)."""
    cid = "fz-" + uuid.uuid4().hex[:10]
    cg, own = cg_of(cid)
    bundle = tmp_path / cid
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(tame(doc, rootfs, cg)))
    rc, err, took = ocirt(root, "create", "--bundle", str(bundle), cid)
    lines = [ln for ln in err.split("\n") if ln and not ln.startswith("ocirt: warning: ")]
    if os.environ.get("OCIRT_FUZZ_TALLY"):  # what the configs came to: a file of rc lines
        with open(os.environ["OCIRT_FUZZ_TALLY"], "a") as f:
            f.write(f"{rc} {lines[0][:80] if lines else ''}\n")
    assert "Traceback" not in err, err
    assert took < 10, (took, err)
    if rc == 0:
        assert lines == [], err
        drc, derr, _ = ocirt(root, "delete", "--force", cid)
        assert drc == 0 and "Traceback" not in derr, derr
    else:
        assert rc == 1 and len(lines) == 1 and lines[0].startswith("ocirt: "), (rc, err)
    left = [n for n in os.listdir(root) if n == cid] if os.path.isdir(root) else []
    left += cgroup_dirs_existing(own) + [f"process {p}" for p in procs_rooted_at(rootfs)]
    left += [m["point"] for m in mountinfo()  # ours only: other tests may mount meanwhile
             if m["point"].startswith((rootfs, str(tmp_path))) or cid in m["point"]]
    assert left == [], (rc, err, left)


def fuzzed(strategy, body, examples=EXAMPLES):
    @seed(SEED)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(x):
        body(x)
    try:
        check()
    finally:
        remove_cgroup_tree(PARENT)


def test_no_config_gives_a_traceback_a_hang_or_debris(fuzz_rootfs, tmp_path):
    root = str(tmp_path / "state")
    fuzzed(mutated(bases(fuzz_rootfs)),
           lambda doc: check_create(doc, root, fuzz_rootfs, tmp_path,
                                    lambda cid: (f"{PARENT}/{cid}",) * 2))


# cgroupsPath drawn freely below the container's own parent: long, repeated,
# odd characters, components past NAME_MAX, paths past PATH_MAX. ".." is
# defused: a path that climbed to the host's root cgroup would be the host's.
CGROUP_TAILS = st.one_of(
    st.text(alphabet="/.x:-_ \u00e9\n", max_size=300),
    st.builds(lambda part, n: part * n, st.sampled_from(["/ocirt-fuzz/x", "/y", "z", "/" + "w" * 200]),
              st.integers(min_value=1, max_value=400)),
    st.integers(min_value=200, max_value=300).map(lambda n: "q" * n),
).map(lambda t: t.replace("..", "_."))


def test_no_cgroups_path_gives_a_traceback_or_debris(fuzz_rootfs, tmp_path):
    root = str(tmp_path / "state")
    doc = bases(fuzz_rootfs)[0]

    def one(tail):
        check_create(json.loads(json.dumps(doc)), root, fuzz_rootfs, tmp_path,
                     lambda cid: (f"{PARENT}/{cid}/{tail}", f"{PARENT}/{cid}"))
    fuzzed(CGROUP_TAILS, one, examples=max(EXAMPLES // 3, 10))
