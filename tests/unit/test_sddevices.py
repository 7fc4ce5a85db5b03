"""linux.resources.devices -> DevicePolicy/DeviceAllow, against what runc
1.1 gives for the same rules (its generateDeviceProperties)."""
import json
import os

import pytest

from ocirt.cgroups import devices, sddevices

PROC_DEVICES = """Character devices:
  1 mem
  4 /dev/vc/0
  4 tty
  5 /dev/tty
136 pts
180 usb
Block devices:
  8 sd
259 blkext
"""
FIXTURES = os.path.join(os.path.dirname(__file__), "../../conformance/fixtures/clients")
# runc 1.1's DeviceAllow for its default devices (and nothing else allowed):
# wildcards first (block before char), then by major:minor; /dev/pts by group.
RUNC_DEFAULTS = [("block-*", "m"), ("char-*", "m"), ("/dev/char/1:3", "rwm"), ("/dev/char/1:5", "rwm"),
                 ("/dev/char/1:7", "rwm"), ("/dev/char/1:8", "rwm"), ("/dev/char/1:9", "rwm"),
                 ("/dev/char/5:0", "rwm"), ("/dev/char/5:2", "rwm"), ("char-pts", "rwm")]


def props(rules):
    return sddevices.device_properties(devices.rules(rules, "linux.resources.devices"), PROC_DEVICES)


def client_devices(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)["linux"]["resources"]["devices"]


def test_podman_deny_all_gives_the_defaults():
    assert props(client_devices("podman-config.json")) == (
        [("DevicePolicy", "s", "strict"), ("DeviceAllow", "a(ss)", RUNC_DEFAULTS)], [])


def test_containerd_allows_merge_with_the_defaults():
    allow = dict(props(client_devices("containerd-config.json"))[0][1][2])
    assert allow == dict(RUNC_DEFAULTS, **{"/dev/char/5:1": "rwm"})


def test_access_merges_and_a_deny_takes_back():
    p, w = props([{"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
                  {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "w"},
                  {"allow": True, "type": "c", "major": 180, "access": "rw"},
                  {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
                  {"allow": False, "type": "c", "major": 10, "minor": 200, "access": "rwm"}])
    entries = dict(p[1][2])
    assert entries["/dev/block/8:0"] == "rw" and entries["char-usb"] == "rw"
    assert "/dev/char/10:200" not in entries and w == []


def test_what_systemd_cannot_name_is_warned_and_left_out():
    p, w = props([{"allow": True, "type": "c", "minor": 3, "access": "r"},
                  {"allow": True, "type": "c", "major": 250, "access": "r"}])
    assert [e for e in p[1][2] if e not in RUNC_DEFAULTS] == []
    assert len(w) == 2 and "c *:3 r" in w[0] and "major 250 is not in /proc/devices" in w[1]


def test_allow_all_is_policy_auto():
    rules = [devices.Rule((True, "a", None, None, "rwm"))]
    assert sddevices.device_properties(rules, "") == (
        [("DevicePolicy", "s", "auto"), ("DeviceAllow", "a(ss)", [])], [])


def test_a_deny_list_falls_back_to_deny_all_with_a_warning():
    rules = [devices.Rule((True, "a", None, None, "rwm")), devices.Rule((False, "c", 1, 3, "rwm"))]
    p, w = sddevices.device_properties(rules, "")
    assert p == [("DevicePolicy", "s", "strict"), ("DeviceAllow", "a(ss)", [])] and len(w) == 1


def test_a_hole_in_a_wildcard_is_refused():
    with pytest.raises(sddevices.Unexpressible, match=r"c 1:3 r cannot be cut out of c \*:\* rwm"):
        props([{"allow": True, "type": "c", "access": "rwm"},
               {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "r"}])


def test_device_groups():
    assert sddevices.device_groups(PROC_DEVICES)[("c", 4)] == "/dev/vc/0"
    assert sddevices.device_groups(PROC_DEVICES)[("b", 8)] == "sd"
