"""What `delete` undoes: a container's processes, cgroup and resctrl group,
its poststop hooks and its state directory; also what a create that died
before the init was known recorded it would make."""
from ocirt.pathops import isdir
from ocirt.signals import SIGKILL, kill_and_wait


def destroy(log, c):
    """Kill what is left, remove the cgroup, run poststop, remove the state."""
    from ocirt import cgroups
    cg = cgroups.from_state(c.state["cgroup"])
    cg.kill_all(SIGKILL)   # first: it thaws a paused container, whose init could not die before
    if c.state.get("pid") and c.init_alive():
        kill_and_wait(c.state["pid"])
    cg.destroy()
    log.debug(f"delete {c.id}: processes killed, cgroup removed")
    if c.state.get("intelRdt"):
        from ocirt import intelrdt
        intelrdt.remove(c.state["intelRdt"])
    poststop(log, c.state.get("config") or {}, c)
    c.remove()


def undo_aborted_create(log, c):
    """Remove what a create that died recorded it would make, and its directory."""
    c.state = c.load_intent()
    if c.state:
        destroy(log, c)
    elif isdir(c.dir):
        c.remove()


def poststop(log, spec, c):
    """Poststop hooks; their failures are warnings (runtime.md), whatever
    raised them: nothing may keep a container from being deleted."""
    hs = spec.get("hooks") or {}
    if not hs.get("poststop"):
        return
    from ocirt import hooks
    try:
        hooks.run(hs, "poststop", c.oci_state("stopped"), warn=log.warn, log=log)
    except Exception as e:  # OcirtErrors were warned of; this is any other
        log.warn(f"poststop hooks: {e}")
