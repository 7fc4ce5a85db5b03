"""A rootless create's cgroup: made where permitted, else none (with a
warning) unless a limit needs one; what only a cgroup serves then fails."""
import errno

import pytest

from ocirt import cgroups
from ocirt.cgroups.fs import FsError
from ocirt.cgroups.none import Skipped, create_rootless, first_limit
from ocirt.errors import OcirtError


class FakeCgroup:
    version, rootless = 1, False

    def __init__(self, errno_=None):
        self.errno = errno_

    def create(self, resources):
        if self.errno:
            raise FsError("cannot make cgroup /sys/fs/cgroup/cpu/x: denied", "linux.cgroupsPath", self.errno)
        return 0


class Log:
    def __init__(self):
        self.warnings, self.debugs = [], []

    def warn(self, msg):
        self.warnings.append(msg)

    def debug(self, msg):
        self.debugs.append(msg)


@pytest.mark.parametrize("resources,field", [
    (None, None), ({}, None), ({"memory": {}}, None), ({"devices": [{"allow": False, "access": "rwm"}]}, None),
    ({"memory": {"limit": 1 << 20}}, "linux.resources.memory.limit"),
    ({"cpu": {"shares": None, "quota": 0}}, "linux.resources.cpu.quota"),
    ({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 10}]}},
     "linux.resources.blockIO.weightDevice[0].major"),
    ({"pids": {"limit": 10}, "memory": {}}, "linux.resources.pids.limit"),
])
def test_first_limit_names_the_field(resources, field):
    assert first_limit(resources) == field


def test_a_permitted_cgroup_is_made_and_takes_no_device_rules_it_may_not_set():
    cg, log = FakeCgroup(), Log()
    assert create_rootless(cg, {"memory": {"limit": 1}}, log) == (cg, 0)
    assert cg.rootless and log.warnings == []


@pytest.mark.parametrize("e", [errno.EACCES, errno.EPERM, errno.EROFS])
def test_without_permission_and_limits_there_is_none(e):
    log = Log()
    cg, found = create_rootless(FakeCgroup(e), {"devices": [{"allow": False, "access": "rwm"}]}, log)
    assert isinstance(cg, Skipped) and found == 0
    assert log.warnings == [] and log.debugs == ["cannot make cgroup /sys/fs/cgroup/cpu/x: denied: "
                                                 "the container runs without a cgroup (rootless)"]


def test_without_a_pid_namespace_too_it_is_warned_of():
    """runc's rule: nothing can then end all the container's processes."""
    log = Log()
    assert isinstance(create_rootless(FakeCgroup(errno.EACCES), None, log, own_pidns=False)[0], Skipped)
    assert log.warnings == ["cannot make cgroup /sys/fs/cgroup/cpu/x: denied: the container runs without a "
                            "cgroup (rootless) and without a pid namespace of its own: nothing can end all its "
                            "processes"]


def test_without_permission_a_limit_is_an_error_naming_it():
    with pytest.raises(OcirtError) as e:
        create_rootless(FakeCgroup(errno.EACCES), {"memory": {"limit": 1 << 20}}, Log())
    assert e.value.where == "linux.resources.memory.limit"
    assert "rootless container without a cgroup (cannot make cgroup" in e.value.msg


def test_other_errors_stay_errors():
    with pytest.raises(FsError):
        create_rootless(FakeCgroup(errno.ENOSPC), None, Log())


def test_none_is_recorded_and_reopened():
    cg = cgroups.from_state(Skipped(2).to_state())
    assert isinstance(cg, Skipped) and cg.version == 2 and cg.skipped
    assert cg.clone_join() == ([], "") and cg.helper_leaves() == [] and cg.pids() == []
    assert not cg.is_frozen() and cg.oom_count() == 0
    cg.kill_all(9)
    cg.destroy()  # nothing to do: delete goes on
    for call in (cg.freeze, cg.thaw, cg.stats, lambda: cg.update({"pids": {"limit": 1}}),
                 lambda: cg.sub({"": "x"})):
        with pytest.raises(OcirtError, match="no cgroup"):
            call()


def test_commands_that_need_a_cgroup_say_so(tmp_path):
    from ocirt.api import Runtime
    from ocirt.state import Container
    c = Container(str(tmp_path), "x")
    c.state = {"cgroup": Skipped(1).to_state()}
    with pytest.raises(OcirtError, match="^ps: the container has no cgroup"):
        Runtime._cgroup(c, "ps")
    assert Runtime._cgroup(c).skipped  # delete's and exec's: nothing to join or remove


@pytest.mark.parametrize("rootless", [False, True])
def test_refused_device_rules_fail_unless_rootless(rootless, monkeypatch):
    from ocirt.cgroups.base import Cgroup

    class Refusing(Cgroup):
        def _plan(self, resources, where, updating):
            return []

        def _set_devices(self, rules, where):
            raise FsError("writing to devices.deny: Operation not permitted", where, errno.EPERM)

    cg = Refusing({})
    cg.rootless = rootless
    if rootless:
        cg._apply({}, "linux.resources", updating=False)
    else:
        with pytest.raises(FsError, match="devices.deny"):
            cg._apply({}, "linux.resources", updating=False)
