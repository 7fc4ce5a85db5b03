"""linux.netDevices without root: the config checks (ocirt/plan/host.py) and
the rtnetlink messages ocirt/netdevices.py builds and reads."""
import socket
import struct

import pytest

from ocirt import netdevices as nd
from ocirt.errors import OcirtError
from ocirt.plan import build, host
from ocirt.plan.context import Context, Host

NEW_NET = {"network": None, "mount": None}


def where(devices, ns=NEW_NET):
    with pytest.raises(OcirtError) as e:
        host.net_devices(devices, ns)
    return e.value.where, e.value.msg


# ---------------------------------------------------------------- config checks

def test_valid_devices_pass():
    host.net_devices({"eth0": {}, "ens4": {"name": "c0"}, "ens5": {"name": "net%d"},
                      "ens6": {"name": "net%d"}, "ens7": {"name": "ens7"}}, NEW_NET)
    host.net_devices({"eth0": {}}, {"network": "/run/netns/x"})  # a namespace given by path


def test_needs_a_network_namespace():
    assert where({"eth0": {}}, {"mount": None})[0] == "linux.netDevices"
    with pytest.raises(OcirtError, match="linux.netDevices"):
        host.check({"netDevices": {"eth0": {}}}, {"mount": None}, Host())


@pytest.mark.parametrize("bad", ["", "a" * 16, ".", "..", "a/b", "a:1", "a b", "a\tb", "é" * 8, "eth%d"])
def test_bad_host_names_are_named(bad):
    w, msg = where({bad: {}})
    assert w == f"linux.netDevices.{bad}"
    assert repr(bad)[1:-1] in msg or bad in msg


@pytest.mark.parametrize("bad", ["", "a" * 16, "..", "c/0", "c:0", "c 0", "c%s", "c%d%d", "c%", "%%d"])
def test_bad_container_names_are_named(bad):
    assert where({"eth0": {"name": bad}})[0] == "linux.netDevices.eth0.name"


def test_templates_and_longest_names_pass():
    host.net_devices({"a" * 15: {"name": "b" * 13 + "%d"}, "x": {"name": "%dy"}}, NEW_NET)


def test_two_devices_given_one_name():
    assert where({"eth0": {"name": "c0"}, "eth1": {"name": "c0"}})[0] == "linux.netDevices.eth1.name"
    assert where({"eth0": {"name": "eth1"}, "eth1": {}})[0] == "linux.netDevices.eth1"


def test_plan_stops_for_the_runtime_to_move_them():
    s = {"process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
         "root": {"path": "rootfs"},
         "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "network")]}}
    ctx = Context(rootfs="/r", bundle="/b", fifo="/s/exec.fifo", id="c1")
    assert "hooks" not in [st[0] for st in build.create_plan(s, ctx)]
    s["linux"]["netDevices"] = {"eth0": {}}
    steps = [st[0] for st in build.create_plan(s, ctx)]
    assert steps.index("clone") < steps.index("hooks") < steps.index("pivot")


# ---------------------------------------------------------------- netlink messages

def test_message_header_and_walk():
    a = nd.message(nd.RTM_GETLINK, nd.NLM_F_DUMP, 7, b"x" * 5)
    assert struct.unpack_from("=IHHII", a) == (21, nd.RTM_GETLINK, nd.NLM_F_DUMP | nd.NLM_F_REQUEST, 7, 0)
    b = nd.message(nd.NLMSG_DONE, 0, 8, b"")
    # messages are 4-byte aligned in a datagram
    assert list(nd.messages(a + b"\0" * 3 + b)) == [
        (nd.RTM_GETLINK, nd.NLM_F_DUMP | 1, 7, b"xxxxx"), (nd.NLMSG_DONE, 1, 8, b"")]
    assert list(nd.messages(struct.pack("=IHHII", 3, 1, 0, 0, 0))) == []  # a bad length ends the walk


def test_attributes_padded_and_nested_bit_dropped():
    a = nd.attr(nd.IFLA_IFNAME, b"eth0\0")
    assert a == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0\0\0"
    nested = struct.pack("=HH", 4 + len(a), nd.IFLA_PROP_LIST | 0x8000) + a
    assert list(nd.attrs(a + nested)) == [(3, b"eth0\0"), (nd.IFLA_PROP_LIST, a)]


def nlmsgerr(errno, flags=0, msg=None, capped=True):
    request = nd.message(nd.RTM_NEWLINK, nd.NLM_F_ACK, 1, b"\0" * 16)
    body = struct.pack("=i", -errno) + (request[:16] if capped else request)
    if msg is not None:
        body += nd.attr(nd.NLMSGERR_ATTR_MSG, msg.encode() + b"\0")
    return flags, body


def test_errors_and_acks():
    assert nd.error_of(*nlmsgerr(0)) == (0, "")
    assert nd.error_of(*nlmsgerr(17)) == (17, "")
    tlvs = nd.NLM_F_ACK_TLVS
    assert nd.error_of(*nlmsgerr(22, tlvs | nd.NLM_F_CAPPED, "netns is immutable")) == (22, "netns is immutable")
    assert nd.error_of(*nlmsgerr(22, tlvs, "whole request", capped=False)) == (22, "whole request")
    assert str(nd.NetlinkError(17, "")) == "file exists"
    assert str(nd.NetlinkError(22, "why")) == "invalid argument (why)"


def ifinfo(index, name, *altnames):
    alt = b"".join(nd.attr(nd.IFLA_ALT_IFNAME, n.encode() + b"\0") for n in altnames)
    props = nd.attr(nd.IFLA_PROP_LIST | 0x8000, alt) if altnames else b""
    return nd.IFINFOMSG.pack(0, 1, index, 0, 0) + nd.attr(nd.IFLA_IFNAME, name.encode() + b"\0") + props


def test_links_with_altnames():
    assert nd.links([ifinfo(1, "lo"), ifinfo(9, "eth0", "enp0s3", "lan")]) == {
        1: ["lo"], 9: ["eth0", "enp0s3", "lan"]}


V4, V6 = socket.AF_INET, socket.AF_INET6


def ifaddr(family, prefixlen, flags, scope, index, addr, label=None, flags32=None):
    raw = socket.inet_pton(family, addr)
    body = nd.IFADDRMSG.pack(family, prefixlen, flags & 0xFF, scope, index) + nd.attr(nd.IFA_ADDRESS, raw)
    if family == V4:
        body += nd.attr(nd.IFA_LOCAL, raw)
    if label:
        body += nd.attr(3, label.encode() + b"\0")  # IFA_LABEL
    if flags32 is not None:
        body += nd.attr(nd.IFA_FLAGS, struct.pack("=I", flags32))
    return body


def test_only_permanent_global_addresses_of_the_device():
    perm, nodad, secondary = nd.IFA_F_PERMANENT, 0x02, 0x01
    dump = [ifaddr(V4, 24, perm, 0, 5, "192.0.2.1", label="dum0"),
            ifaddr(V4, 24, perm | secondary, 0, 5, "192.0.2.2", label="dum0:1"),
            ifaddr(V4, 24, perm, 253, 5, "198.51.100.1"),             # scope link
            ifaddr(V4, 8, perm, 254, 1, "127.0.0.1"),                 # another device
            ifaddr(V4, 24, 0, 0, 5, "203.0.113.1"),                   # with a lifetime (dhcp)
            ifaddr(V6, 64, 0, 0, 5, "2001:db8::1", flags32=perm | nodad | 0x200),  # flags beyond 8 bits
            ifaddr(V6, 64, perm, 253, 5, "fe80::1")]
    found = nd.permanent_addresses(dump, 5)
    assert [nd.address_text(a) for a in found] == ["192.0.2.1/24", "192.0.2.2/24", "2001:db8::1/64"]
    assert all(3 not in dict(a[3]) for a in found)  # labels left to the kernel


def test_newaddr_body_keeps_what_can_be_asked_for():
    dump = [ifaddr(V6, 64, 0, 0, 5, "2001:db8::1", flags32=nd.IFA_F_PERMANENT | 0x02 | 0x200 | 0x40),
            ifaddr(V4, 24, nd.IFA_F_PERMANENT | 0x01, 0, 5, "192.0.2.2", label="dum0:1")]
    v6, v4 = nd.permanent_addresses(dump, 5)
    body = nd.newaddr_body(v6, 42)
    assert nd.IFADDRMSG.unpack_from(body) == (V6, 64, 0x02, 0, 42)  # nodad; not permanent, tentative
    at = list(nd.attrs(body[nd.IFADDRMSG.size:]))
    assert at == [(nd.IFA_ADDRESS, socket.inet_pton(V6, "2001:db8::1")),
                  (nd.IFA_FLAGS, struct.pack("=I", 0x02 | 0x200))]  # and noprefixroute
    body = nd.newaddr_body(v4, 42)
    assert nd.IFADDRMSG.unpack_from(body) == (V4, 24, 0, 0, 42)  # not secondary: the kernel says
    assert [k for k, _ in nd.attrs(body[nd.IFADDRMSG.size:])] == [nd.IFA_ADDRESS, nd.IFA_LOCAL, nd.IFA_FLAGS]


def test_move_and_up_bodies():
    body = nd.move_body(12, 5, "c%d")
    assert nd.IFINFOMSG.unpack_from(body) == (0, 0, 12, 0, 0)
    assert list(nd.attrs(body[nd.IFINFOMSG.size:])) == [(nd.IFLA_NET_NS_FD, struct.pack("=I", 5)),
                                                         (nd.IFLA_IFNAME, b"c%d\0")]
    assert nd.IFINFOMSG.unpack(nd.up_body(3)) == (0, 0, 3, nd.IFF_UP, nd.IFF_UP)


@pytest.mark.parametrize("name,target,ok", [
    ("eth0", "eth0", True), ("eth1", "eth0", False), ("eth0", "eth%d", True), ("eth12", "eth%d", True),
    ("eth", "eth%d", False), ("ethx", "eth%d", False), ("c3x", "c%dx", True), ("c3", "c%dx", False),
    ("7", "%d", True)])
def test_names_the_kernel_makes_of_a_target(name, target, ok):
    assert nd.named(name, target) is ok
