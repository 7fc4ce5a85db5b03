"""config-linux.md, Network Devices (linux.netDevices, v1.3.0): host devices made
here (dummy, else veth pairs) moved into the container's network namespace."""

import pytest

from .harness import HostLinks, dummy_or_veth, ip, leftovers, link_on_host, named_netns

clause = pytest.mark.clause
V4, V6 = HostLinks.V4, HostLinks.V6


@pytest.fixture
def links():
    if dummy_or_veth() is None:
        pytest.skip("cannot make a network device here (`ip link add type dummy` and veth fail)")
    made = HostLinks("ocf")
    yield made
    made.remove_all()


def inet(text):
    """The addresses of busybox `ip addr show` output, without the kernel's fe80:: one."""
    return sorted(line.split()[1] for line in text.splitlines()
                  if line.strip().startswith(("inet ", "inet6 ")) and " fe80:" not in line)


def link_flags(text):
    return text.split("<", 1)[1].split(">", 1)[0].split(",")


@clause("linux.netDevices.1", "linux.netDevices.addresses.1", "linux.netDevices.up.1")
def test_device_moved_with_its_addresses_and_up(ct, links):
    dev = links.make(1)
    b = ct.bundle("ip addr show dev ct0")
    b.linux["netDevices"] = {dev: {"name": "ct0"}}
    out = ct.run(b).out
    assert inet(out) == [V4.format(n=1), V6.format(n=1)]  # permanent and global: not the scope link one
    assert "UP" in link_flags(out)


@clause("linux.netDevices.1")
def test_device_keeps_its_name_without_one(ct, links):
    dev = links.make(2)
    b = ct.bundle(f"ip addr show dev {dev}")
    b.linux["netDevices"] = {dev: {}}
    assert V4.format(n=2) in inet(ct.run(b).out)


@clause("linux.netDevices.check.1", "linux.netDevices.exists.1", "runtime.errors.1")
def test_name_taken_in_the_container_is_an_error(ct, links):
    dev = links.make(3)
    b = ct.bundle("true")
    b.linux["netDevices"] = {dev: {"name": "lo"}}
    assert ct.run(b, check=False).rc != 0
    assert leftovers(ct.rt, b, ct.rootfs) == []
    assert V4.format(n=3) in inet(ip("addr", "show", "dev", dev).stdout)  # checked before any move


@clause("linux.netDevices.template.1")
def test_template_names_are_picked_by_the_kernel(ct, links):
    devs = [links.make(4), links.make(5)]
    b = ct.bundle("ip addr show")
    b.linux["netDevices"] = {d: {"name": "ct%d"} for d in devs}
    out = ct.run(b).out
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ": <" in line)
    assert names == ["ct0", "ct1", "lo"]
    assert {V4.format(n=4), V4.format(n=5)} <= set(inet(out))


@pytest.fixture
def netns_path():
    with named_netns("ocf") as name:
        yield name


@clause("linux.netDevices.delete.1")
def test_device_not_moved_out_on_delete(ct, links, netns_path):
    dev = links.make(6)
    b = ct.bundle("true")
    b.drop_namespace("network")
    b.linux["namespaces"].append({"type": "network", "path": f"/run/netns/{netns_path}"})
    b.linux["netDevices"] = {dev: {"name": "ct0"}}
    ct.create(b)
    ct.rt("start", b.cid)
    ct.rt.wait_status(b.cid, "stopped")
    ct.rt("delete", b.cid)
    assert V4.format(n=6) in inet(ip("-n", netns_path, "addr", "show", "dev", "ct0", check=False).stdout)
    assert not link_on_host(dev)
