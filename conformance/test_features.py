"""features.md: the features document, and that the runtime honours what it lists."""
import json
import os
import re

import pytest

clause = pytest.mark.clause
TOP = {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations",
       "potentiallyUnsafeConfigAnnotations"}
LINUX = {"namespaces", "capabilities", "cgroup", "seccomp", "apparmor", "selinux", "intelRdt",
         "mountExtensions", "netDevices", "memoryPolicy"}


@pytest.fixture(scope="module")
def features(rt):
    res = rt("features", check=False)
    if res.rc != 0:
        pytest.skip(f"{rt.name} provides no features document (`features` failed: {res.err.strip()[:120]})")
    return json.loads(res.out)


def semver(v):
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?", v)
    assert m, v
    # a pre-release sorts before its release
    return (int(m[1]), int(m[2]), int(m[3]), m[4] is None, m[4] or "")


@clause("features.ociVersionMax.2")
def test_version_range(features):
    assert semver(features["ociVersionMax"]) >= semver(features["ociVersionMin"])


@clause("features.ociVersionMin.1", "features.ociVersionMax.1")
@pytest.mark.parametrize("which", ["ociVersionMin", "ociVersionMax"])
def test_listed_oci_versions_are_accepted(ct, features, which):
    b = ct.bundle("echo ok")
    b.config["ociVersion"] = features[which]
    assert ct.run(b).out == "ok\n"


@clause("features.ociVersionMax.3")
def test_no_undefined_properties(features):
    assert set(features) <= TOP, set(features) - TOP
    assert set(features.get("linux") or {}) <= LINUX, set(features.get("linux") or {}) - LINUX


@clause("features.annotations.1")
def test_annotations_are_a_string_map(features):
    ann = features.get("annotations") or {}
    assert isinstance(ann, dict)
    assert all(isinstance(k, str) and k and isinstance(v, str) for k, v in ann.items())


@clause("features.hooks.1")
def test_listed_hooks_are_supported(ct, features):
    kinds = features.get("hooks") or []
    b = ct.bundle("true")
    log = os.path.join(b.out, "hooks")
    b.config["hooks"] = {k: [{"path": "/bin/sh", "args": [
        "sh", "-c", f"echo {k} >> {'/out/hooks' if k == 'startContainer' else log}"]}] for k in kinds}
    ct.create(b)
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    ct.rt("delete", b.cid)
    assert sorted(b.read_out("hooks").split()) == sorted(kinds)


@clause("features.mountOptions.1")
def test_listed_mount_options_are_recognized(ct, features):
    """Each listed option on a tmpfs mount: an option the runtime did not recognize would
    reach tmpfs as filesystem data, which tmpfs refuses. (bind/rbind/remount need other
    mounts, idmap/ridmap a bind mount with mappings: test_mounts covers them.)"""
    refused = []
    for opt in features.get("mountOptions") or []:
        if opt in ("bind", "rbind", "remount", "idmap", "ridmap"):
            continue
        b = ct.bundle("true")
        b.mount("/data", "tmpfs", "tmpfs", [opt])
        if ct.run(b, check=False).rc != 0:
            refused.append(opt)
    assert refused == []


@clause("features.mountOptions.2")
def test_no_filesystem_specific_options_listed(features):
    specific = [o for o in features.get("mountOptions") or [] if "=" in o]
    assert specific == []
