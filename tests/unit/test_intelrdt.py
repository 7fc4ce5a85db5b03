"""linux.intelRdt (ocirt/intelrdt.py) against a fake resctrl mount: a temp
directory whose mkdir and rmdir behave like the kernel's (a new group comes
with its files, rmdir takes them away) and whose writes are logged."""
import errno
import os

import pytest

from ocirt import intelrdt
from ocirt.errors import OcirtError
from ocirt.plan import build
from ocirt.plan.context import Context


class FakeResctrl:
    def __init__(self, mnt):
        self.mnt = str(mnt)
        self.writes = []  # (path relative to the mount, bytes)
        os.mkdir(self.mnt)
        os.mkdir(self.path("info"))
        self.status("ok")
        self.put("schemata", "    L3:0=fffff;1=fffff\n    MB:0=100;1=100\n")

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def put(self, rel, text):
        with open(self.path(rel), "w") as f:
            f.write(text)

    def status(self, text):
        self.put("info/last_cmd_status", text + "\n")

    def mine(self, path):
        return os.path.commonpath([self.mnt, os.path.abspath(path)]) == self.mnt

    def mkdir(self, real, path, mode=0o777):
        real(path, mode)
        if self.mine(path):
            control = os.path.dirname(path) == self.mnt
            for name in ("tasks", "schemata") if control else ("tasks",):
                open(os.path.join(path, name), "w").close()
            if control:
                real(os.path.join(path, "mon_groups"))

    def rmdir(self, real, path):
        if self.mine(path):  # the group's files and monitoring groups go with it
            for root, dirs, files in os.walk(path, topdown=False):
                for name in files:
                    os.unlink(os.path.join(root, name))
                for name in dirs:
                    real(os.path.join(root, name))
        real(path)

    def write(self, real, fd, data):
        path = os.readlink(f"/proc/self/fd/{fd}")
        if self.mine(path):
            self.writes.append((os.path.relpath(path, self.mnt), bytes(data)))
            if b"=zz" in data:
                self.status("Bad value zz")
                raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data)

    def schemata_writes(self):
        return [(p, d.decode()) for p, d in self.writes if p.endswith("schemata")]


@pytest.fixture
def rdt(tmp_path, monkeypatch):
    fake = FakeResctrl(tmp_path / "res ctrl")
    (tmp_path / "mountinfo").write_text(
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        f"40 22 0:35 / {fake.mnt.replace(' ', chr(92) + '040')} rw,relatime - resctrl resctrl rw\n")
    monkeypatch.setattr(intelrdt, "MOUNTINFO", str(tmp_path / "mountinfo"))
    for name in ("mkdir", "rmdir", "write"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _f=getattr(fake, name), _r=real: _f(_r, *a))
    return fake


def error(fn, *args):
    with pytest.raises(OcirtError) as e:
        fn(*args)
    return e.value


# ---------------------------------------------------------------- where the group is

def test_mount_point_comes_from_mountinfo(rdt):
    assert intelrdt.mount_point() == rdt.mnt


def test_no_resctrl_names_the_field(tmp_path, monkeypatch):
    (tmp_path / "mountinfo").write_text("22 1 0:21 / /proc rw - proc proc rw\n")
    monkeypatch.setattr(intelrdt, "MOUNTINFO", str(tmp_path / "mountinfo"))
    assert str(error(intelrdt.set_up, {}, "c1")) == \
        "config.json: linux.intelRdt: no resctrl filesystem is mounted on this host (Intel RDT)"


def test_without_closid_the_group_is_named_for_the_container(rdt):
    st = intelrdt.set_up({}, "c1")
    assert st == {"tasks": [rdt.path("c1", "tasks")], "created": [rdt.path("c1")]}
    assert rdt.schemata_writes() == []  # no schema given: schemata is not written
    intelrdt.remove(st)
    assert not os.path.exists(rdt.path("c1"))


@pytest.mark.parametrize("clos", ["../x", "a/b", ".", "info", "mon_groups"])
def test_closid_must_name_a_group(rdt, clos):
    assert error(intelrdt.set_up, {"closID": clos, "l3CacheSchema": "L3:0=f"}, "c1").where == \
        "linux.intelRdt.closID"
    assert sorted(os.listdir(rdt.mnt)) == ["info", "schemata"]


def test_a_group_left_under_the_container_id_is_not_taken_over(rdt):
    os.mkdir(rdt.path("c1"))
    e = error(intelrdt.set_up, {"l3CacheSchema": "L3:0=f"}, "c1")
    assert e.where == "linux.intelRdt" and "exists already" in e.msg
    assert os.path.isdir(rdt.path("c1")) and rdt.schemata_writes() == []


# ---------------------------------------------------------------- schemata

def test_schema_lines_order_and_fields():
    rdt = {"l3CacheSchema": "L3:0=7f0;1=1f\nMB:0=50\n", "memBwSchema": "MB:0=20;1=70",
           "schemata": ["L2:0=f", "", "L3CODE:0=3"]}
    assert intelrdt.schema_lines(rdt) == [
        ("linux.intelRdt.l3CacheSchema", "L3:0=7f0;1=1f"),
        ("linux.intelRdt.memBwSchema", "MB:0=20;1=70"),
        ("linux.intelRdt.schemata[0]", "L2:0=f"),
        ("linux.intelRdt.schemata[2]", "L3CODE:0=3")]
    # without memBwSchema, an MB: line of l3CacheSchema is what the config asks for
    assert intelrdt.schema_lines({"l3CacheSchema": "L3:0=f\nMB:0=50"}) == [
        ("linux.intelRdt.l3CacheSchema", "L3:0=f"), ("linux.intelRdt.l3CacheSchema", "MB:0=50")]
    assert intelrdt.schema_lines({}) == []


def test_schema_is_written_line_by_line_schemata_last(rdt):
    st = intelrdt.set_up({"l3CacheSchema": "L3:0=7f0\nMB:0=50", "memBwSchema": "MB:0=20",
                          "schemata": ["L3:0=ff"]}, "c1")
    assert rdt.schemata_writes() == [("c1/schemata", "L3:0=7f0\n"), ("c1/schemata", "MB:0=20\n"),
                                     ("c1/schemata", "L3:0=ff\n")]
    assert st["created"] == [rdt.path("c1")]


def test_a_refused_line_names_its_field_and_leaves_nothing(rdt):
    e = error(intelrdt.set_up, {"l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=zz"}, "c1")
    assert str(e) == (f'config.json: linux.intelRdt.memBwSchema: writing "MB:0=zz" to the schemata of '
                      f'{rdt.path("c1")}: invalid argument (Bad value zz)')
    assert not os.path.exists(rdt.path("c1"))
    e = error(intelrdt.set_up, {"schemata": ["L3:0=f", "L2:0=zz"], "enableMonitoring": True}, "c1")
    assert e.where == "linux.intelRdt.schemata[1]" and not os.path.exists(rdt.path("c1"))


# ---------------------------------------------------------------- closID

def test_closid_without_schema_joins_a_group_made_beforehand(rdt):
    os.mkdir(rdt.path("gold"))
    st = intelrdt.set_up({"closID": "gold"}, "c1")
    assert st == {"tasks": [rdt.path("gold", "tasks")], "created": []}
    assert rdt.writes == []
    intelrdt.remove(st)
    assert os.path.isdir(rdt.path("gold"))


def test_closid_without_schema_needs_the_group(rdt):
    e = error(intelrdt.set_up, {"closID": "gold"}, "c1")
    assert e.where == "linux.intelRdt.closID" and rdt.path("gold") in e.msg
    assert not os.path.exists(rdt.path("gold"))


def test_closid_with_schema_is_made_when_missing_and_removed_at_delete(rdt):
    st = intelrdt.set_up({"closID": "gold", "memBwSchema": "MB:0=20"}, "c1")
    assert st == {"tasks": [rdt.path("gold", "tasks")], "created": [rdt.path("gold")]}
    assert rdt.schemata_writes() == [("gold/schemata", "MB:0=20\n")]
    intelrdt.remove(st)
    assert not os.path.exists(rdt.path("gold"))


def test_existing_closid_group_is_compared_not_written(rdt):
    os.mkdir(rdt.path("gold"))
    rdt.put("gold/schemata", "    L3:0=007f0;1=0001f\n    MB:0= 20;1= 70\n")
    # padded as the kernel prints it; a later schemata line wins over l3CacheSchema
    st = intelrdt.set_up({"closID": "gold", "l3CacheSchema": "L3:0=f;1=1f", "memBwSchema": "MB:1=70",
                          "schemata": ["L3:0=7f0"]}, "c1")
    assert st == {"tasks": [rdt.path("gold", "tasks")], "created": []}
    assert rdt.writes == []


@pytest.mark.parametrize("rdt_cfg, where, held", [
    ({"memBwSchema": "MB:0=30"}, "linux.intelRdt.memBwSchema", '"MB:0= 20;1= 70"'),
    ({"l3CacheSchema": "L3:0=7f0\nL3CODE:0=f"}, "linux.intelRdt.l3CacheSchema", "no L3CODE domain 0"),
    ({"schemata": ["L3:2=f"]}, "linux.intelRdt.schemata[0]", "no L3 domain 2"),
    ({"schemata": ["L3 0=f"]}, "linux.intelRdt.schemata[0]", None),
])
def test_existing_closid_group_that_differs_is_an_error(rdt, rdt_cfg, where, held):
    os.mkdir(rdt.path("gold"))
    rdt.put("gold/schemata", "    L3:0=007f0;1=0001f\n    MB:0= 20;1= 70\n")
    e = error(intelrdt.set_up, dict(rdt_cfg, closID="gold"), "c1")
    assert e.where == where
    assert (held in e.msg) if held else "is not a schemata line" in e.msg
    assert rdt.writes == [] and os.path.isdir(rdt.path("gold"))


# ---------------------------------------------------------------- monitoring

def test_monitoring_group_inside_the_container_group(rdt):
    st = intelrdt.set_up({"enableMonitoring": True}, "c1")
    mon = rdt.path("c1", "mon_groups", "c1")
    assert st == {"tasks": [rdt.path("c1", "tasks"), os.path.join(mon, "tasks")],
                  "created": [rdt.path("c1"), mon]}
    intelrdt.remove(st)
    assert not os.path.exists(rdt.path("c1"))


def test_monitoring_in_a_shared_closid_group_removes_only_its_own(rdt):
    os.mkdir(rdt.path("gold"))
    st = intelrdt.set_up({"closID": "gold", "enableMonitoring": True}, "c1")
    mon = rdt.path("gold", "mon_groups", "c1")
    assert st == {"tasks": [rdt.path("gold", "tasks"), os.path.join(mon, "tasks")], "created": [mon]}
    intelrdt.remove(st)
    assert not os.path.exists(mon) and os.path.isdir(rdt.path("gold"))


def test_monitoring_group_taken_already_is_an_error(rdt):
    os.mkdir(rdt.path("gold"))
    os.mkdir(rdt.path("gold", "mon_groups", "c1"))
    assert error(intelrdt.set_up, {"closID": "gold", "enableMonitoring": True}, "c1").where == \
        "linux.intelRdt.enableMonitoring"
    assert os.path.isdir(rdt.path("gold", "mon_groups", "c1"))


# ---------------------------------------------------------------- joining

def test_the_helper_joins_the_tasks_files_before_it_clones():
    """It writes 0 (itself) to each, so what it clones is born in the groups:
    the init at create, the process at exec."""
    proc = {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    steps = build.exec_plan([], proc, Context(rdt_tasks=["/r/c1/tasks", "/r/c1/mon_groups/c1/tasks"]))
    assert [s[:3] for s in steps[:3]] == [("cgroup", "linux.intelRdt", "/r/c1/tasks"),
                                          ("cgroup", "linux.intelRdt", "/r/c1/mon_groups/c1/tasks"),
                                          ("clone", "process", 0)]


# ---------------------------------------------------------------- update

def test_update_rewrites_the_schemata_of_the_group_it_made(rdt):
    state = intelrdt.set_up({"l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=50"}, "c1")
    rdt.writes.clear()
    new = intelrdt.update(state, {"l3CacheSchema": "L3:0=f", "memBwSchema": "MB:0=50"}, "L3:0=3", None)
    assert new == {"l3CacheSchema": "L3:0=3", "memBwSchema": "MB:0=50"}
    assert rdt.schemata_writes() == [("c1/schemata", "L3:0=3\n"), ("c1/schemata", "MB:0=50\n")]


def test_update_names_the_flag_the_kernel_refused(rdt):
    state = intelrdt.set_up({"l3CacheSchema": "L3:0=f"}, "c1")
    assert str(error(intelrdt.update, state, {"l3CacheSchema": "L3:0=f"}, None, "MB:0=zz")).startswith(
        '--mem-bw-schema: writing "MB:0=zz" to the schemata of')


def test_update_leaves_a_joined_closid_group_and_a_container_without_rdt_alone(rdt):
    os.mkdir(rdt.path("shared"))
    state = intelrdt.set_up({"closID": "shared"}, "c1")
    rdt.writes.clear()
    assert "not made it" in str(error(intelrdt.update, state, {"closID": "shared"}, "L3:0=3", None))
    assert "has no Intel RDT group" in str(error(intelrdt.update, None, None, "L3:0=3", None))
    assert rdt.schemata_writes() == []


# ---------------------------------------------------------------- what create records first

@pytest.mark.parametrize("rdt_cfg, existing", [
    ({}, []), ({"enableMonitoring": True}, []), ({"closID": "gold", "enableMonitoring": True}, ["gold"]),
    ({"closID": "gold", "l3CacheSchema": "L3:0=f"}, [])])
def test_to_make_is_what_set_up_makes(rdt, rdt_cfg, existing):
    """create records to_make() before set_up: a kill between them must
    leave only what remove(to_make()) takes away, and never a group that was there."""
    for d in existing:
        os.mkdir(rdt.path(d))
    planned = intelrdt.to_make(rdt_cfg, "c1")
    assert planned["created"] == intelrdt.set_up(rdt_cfg, "c1")["created"]
    intelrdt.remove(planned)
    assert [d for d in existing if os.path.isdir(rdt.path(d))] == existing
    assert not os.path.exists(rdt.path("c1")) and not os.path.exists(rdt.path("gold", "mon_groups", "c1"))


def test_to_make_refuses_a_closid_outside_the_mount(rdt):
    assert error(intelrdt.to_make, {"closID": "../x"}, "c1").where == "linux.intelRdt.closID"
