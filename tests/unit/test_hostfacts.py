"""ocirt/hostfacts.py: what the runtime reads of the host for a plan."""
from ocirt import hostfacts
from ocirt.plan.process import CAPABILITIES


def test_bind_sources_are_looked_up_relative_to_the_bundle(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("")
    spec = {"mounts": [{"destination": "/d", "type": "bind", "source": "d"},
                       {"destination": "/f", "source": str(tmp_path / "f"), "options": ["rbind"]},
                       {"destination": "/m", "type": "bind", "source": "missing"},
                       {"destination": "/t", "type": "tmpfs", "source": "tmpfs"}]}
    host = hostfacts.gather(spec, str(tmp_path))
    assert host.sources == {str(tmp_path / "d"): "dir", str(tmp_path / "f"): "file",
                            str(tmp_path / "missing"): "no such file or directory"}


def test_facts_of_this_host():
    host = hostfacts.gather({})
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert host.last_cap == int(f.read())
    assert host.bounding >> CAPABILITIES.index("CAP_KILL") & 1  # a bounding set drops it only on purpose
    assert not host.apparmor and not host.selinux and host.resctrl is None  # not asked for


def test_lsms_are_looked_up_when_asked_for(monkeypatch):
    monkeypatch.setattr(hostfacts, "_apparmor_enabled", lambda: True)
    monkeypatch.setattr(hostfacts, "_selinux_enabled", lambda: True)
    assert hostfacts.gather({"process": {"apparmorProfile": "p"}}).apparmor
    assert hostfacts.gather({"linux": {"mountLabel": "l"}}).selinux
    assert not hostfacts.gather({"process": {"apparmorProfile": "p"}}).selinux
