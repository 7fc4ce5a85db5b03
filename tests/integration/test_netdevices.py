"""linux.netDevices on real containers: host devices made here (dummy, or a
veth pair where this kernel has no dummy driver) are moved into the
container's network namespace, renamed, keep their permanent global
addresses and come up; a refused config moves nothing and leaves nothing.
Needs root."""
import os
import shutil
import uuid

import pytest

from conformance.harness import HostLinks, ip, link_on_host as on_host, named_netns

V4, V6 = HostLinks.V4, HostLinks.V6


@pytest.fixture
def make_dev():
    """make_dev(n) -> a new host device (conformance.harness.HostLinks), removed
    afterwards if still on the host."""
    links = HostLinks("ocd")
    yield links.make
    links.remove_all()


def created(oci, devices, script="sleep 60"):
    b = oci.bundle(script)
    b.config["linux"]["netDevices"] = devices
    oci.create(b)
    return b


def inside(oci, b, *args):
    return oci("exec", b.cid, *args).out


def addresses(text):
    """The `inet`/`inet6` addresses of busybox `ip addr show` output."""
    return [line.split()[1] for line in text.splitlines() if line.strip().startswith(("inet ", "inet6 "))]


def flags(text):
    """The link flags of `ip addr show dev X` output: <BROADCAST,UP,...>."""
    return text.split("<", 1)[1].split(">", 1)[0].split(",")


def test_moved_renamed_with_its_addresses_and_up(oci, make_dev):
    dev = make_dev(1)
    b = created(oci, {dev: {"name": "c0"}})
    assert not on_host(dev)  # while the container exists
    shown = inside(oci, b, "ip", "addr", "show", "dev", "c0")
    # not the link-scope 198.51.100.1; fe80:: is the kernel's own, made when the link came up
    assert sorted(a for a in addresses(shown) if not a.startswith("fe80:")) == [V4.format(n=1), V6.format(n=1)]
    assert "UP" in flags(shown)


def test_host_name_kept_without_a_name(oci, make_dev):
    dev = make_dev(2)
    b = created(oci, {dev: {}})
    assert V4.format(n=2) in addresses(inside(oci, b, "ip", "addr", "show", "dev", dev))


def test_templates_get_free_names_after_the_fixed_ones(oci, make_dev):
    a, b_, c = make_dev(3), make_dev(4), make_dev(5)
    # config order puts the templates first: the fixed net0 must still be a's
    b = created(oci, {b_: {"name": "net%d"}, c: {"name": "net%d"}, a: {"name": "net0"}})
    names = [line.split(":")[1].strip().split("@")[0]
             for line in inside(oci, b, "ip", "-o", "link", "show").splitlines()]
    assert sorted(names) == ["lo", "net0", "net1", "net2"]
    assert V4.format(n=3) in addresses(inside(oci, b, "ip", "addr", "show", "dev", "net0"))
    assert {V4.format(n=4), V4.format(n=5)} <= set(addresses(inside(oci, b, "ip", "addr", "show")))


def test_moved_before_the_runtime_hooks(oci, make_dev, tmp_path):
    dev = make_dev(6)
    log = tmp_path / "hook"
    b = oci.bundle("true")
    b.config["linux"]["netDevices"] = {dev: {}}
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": [
        "sh", "-c", f"{shutil.which('ip')} -o link show > {log}"]}]}
    oci.create(b)
    listed = log.read_text()
    assert "lo:" in listed and f" {dev}:" not in listed and f" {dev}@" not in listed


@pytest.mark.parametrize("clash", [0, 1])
def test_name_taken_in_the_container_moves_nothing(oci, make_dev, clash):
    devs = [make_dev(7), make_dev(8)]
    b = oci.bundle("true")
    b.config["linux"]["netDevices"] = {dev: {"name": "lo" if i == clash else "c0"} for i, dev in enumerate(devs)}
    before = oci.host_view()
    res = oci.create(b, check=False)
    assert res.rc != 0
    where = devs[clash]
    assert res.err.strip().endswith(f'config.json: linux.netDevices.{where}.name: a network device '
                                    'named "lo" already exists in the container\'s network namespace')
    assert "Traceback" not in res.err
    assert oci.host_view() == before and oci.status(b.cid) is None
    for dev, n in zip(devs, (7, 8)):  # both still on the host, addresses and all
        assert V4.format(n=n) in addresses(ip("addr", "show", "dev", dev).stdout)


def test_unknown_host_device(oci):
    missing = f"ocd{uuid.uuid4().hex[:8]}"
    b = oci.bundle("true")
    b.config["linux"]["netDevices"] = {missing: {}}
    before = oci.host_view()
    res = oci.run(b, check=False)
    assert res.rc != 0
    assert f"linux.netDevices.{missing}: no network device of this name on the host" in res.err
    assert oci.host_view() == before


def test_needs_a_network_namespace(oci, make_dev):
    dev = make_dev(9)
    b = oci.bundle("true")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "network"]
    b.config["linux"]["netDevices"] = {dev: {}}
    res = oci.run(b, check=False)
    assert res.rc != 0 and "config.json: linux.netDevices: " in res.err
    assert on_host(dev)


def test_joined_host_network_namespace_is_refused(oci, make_dev):
    dev = make_dev(12)
    b = oci.bundle("true")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{os.getpid()}/ns/net"
    b.config["linux"]["netDevices"] = {dev: {"name": "c0"}}
    before = oci.host_view()
    res = oci.run(b, check=False)
    assert res.rc != 0 and "linux.netDevices: the container's network namespace is the host's" in res.err
    assert on_host(dev) and not on_host("c0") and oci.host_view() == before


def test_into_a_user_namespaced_container(oci, make_dev):
    dev = make_dev(10)
    b = oci.bundle("ip addr show dev c0")
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    b.config["linux"]["netDevices"] = {dev: {"name": "c0"}}
    assert V6.format(n=10) in addresses(oci.run(b).out)


@pytest.fixture
def netns_path():
    with named_netns("ocd") as name:
        yield name


def test_stays_in_a_namespace_given_by_path_after_delete(oci, make_dev, netns_path):
    dev = make_dev(11)
    b = oci.bundle("true")
    for ns in b.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/run/netns/{netns_path}"
    b.config["linux"]["netDevices"] = {dev: {"name": "c0"}}
    oci.run(b)
    oci("delete", "--force", b.cid, check=False)
    # the runtime does not move it out: it is the namespace owner's
    shown = ip("-n", netns_path, "addr", "show", "dev", "c0").stdout
    assert V4.format(n=11) in addresses(shown) and "UP" in flags(shown)
    assert not on_host(dev)
