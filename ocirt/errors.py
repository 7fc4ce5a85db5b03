"""The error types: one base, a message optionally tied to a config.json
path, and a subclass per kind a caller of ocirt.api may want to tell apart.
The command line prints them all alike (one line on stderr)."""


class OcirtError(Exception):
    """A user-facing error. `where` is the JSON path of the field at fault
    (e.g. "linux.namespaces[2].type"); `source` names the file it is in."""

    def __init__(self, msg, where=None, source="config.json"):
        super().__init__(msg)
        self.msg = msg
        self.where = where
        self.source = source

    def __str__(self):
        if self.where is None:
            return self.msg
        if self.where == "":
            return f"{self.source}: {self.msg}"
        return f"{self.source}: {self.where}: {self.msg}"


class NotFound(OcirtError):
    """No container of that id in the state root."""


class Exists(OcirtError):
    """The id is taken by a container of the state root."""


class WrongStatus(OcirtError):
    """The container's status does not allow the operation (start of a
    running container, kill of a stopped one...)."""


class ConfigError(OcirtError):
    """A field of the configuration (config.json, an exec's process, an
    update's resources) is at fault: `where` names it, `source` the document."""


def typed(e):
    """e as a ConfigError if it names a field (errors are raised deep in the
    planner and the drivers as plain OcirtErrors with a `where`)."""
    if e.where is None or isinstance(e, ConfigError):
        return e
    out = ConfigError(e.msg, e.where, e.source)
    out.__traceback__ = e.__traceback__
    return out


def jpath(base, key):
    """Extend a JSON path: jpath("linux", "namespaces") -> "linux.namespaces",
    jpath("linux.namespaces", 2) -> "linux.namespaces[2]"."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key
