"""linux.sysctl: only keys namespaced by a namespace the container has of
its own (as runc checks); anything else would change the host."""
from ocirt.errors import OcirtError

IPC_KEYS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
            "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
UTS_KEYS = ("kernel.hostname", "kernel.domainname")


def namespace_of(key):
    if key in IPC_KEYS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "network"
    if key in UTS_KEYS:
        return "uts"
    return None


def sysctl_steps(linux, ns):
    steps = []
    for key, value in (linux.get("sysctl") or {}).items():
        where = f"linux.sysctl.{key}"
        if "/" in key or ".." in key:
            raise OcirtError(f'invalid sysctl name "{key}"', where)
        owner = namespace_of(key.replace("/", "."))
        if owner is None:
            raise OcirtError(f'sysctl "{key}" is not namespaced: it would change the host', where)
        if owner not in ns:
            raise OcirtError(f'sysctl "{key}" needs a {owner} namespace of the container', where)
        steps.append(("sysctl", where, key, str(value)))
    return steps
