"""The one error type: a message, optionally tied to a config.json path."""


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


def jpath(base, key):
    """Extend a JSON path: jpath("linux", "namespaces") -> "linux.namespaces",
    jpath("linux.namespaces", 2) -> "linux.namespaces[2]"."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key
