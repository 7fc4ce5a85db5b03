"""linux.devices: device nodes created in the container."""
from ocirt.errors import OcirtError, jpath

TYPES = ("c", "b", "u", "p")


def device_steps(linux, userns):
    steps = []
    for i, d in enumerate(linux.get("devices") or []):
        where = jpath("linux.devices", i)
        t = d.get("type")
        if t not in TYPES:
            raise OcirtError(f'unknown device type "{t}"', jpath(where, "type"))
        path = d.get("path", "")
        if not path.startswith("/dev/") and not path.startswith("/"):
            raise OcirtError(f'"{path}" must be an absolute path', jpath(where, "path"))
        if t != "p" and ("major" not in d or "minor" not in d):
            raise OcirtError("major and minor are required for this type", where)
        if userns:
            # mknod is refused in a user namespace: bind the host's node.
            steps.append(("binddev", where, path))
            continue
        mode = d.get("fileMode", 0o666) & 0o7777
        steps.append(("mknod", where, path, t, d.get("major", 0), d.get("minor", 0), mode,
                      d.get("uid", 0), d.get("gid", 0), "strict"))
    return steps
