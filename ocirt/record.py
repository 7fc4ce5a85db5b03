"""Plain typed values: the API's results and the planner's inputs."""


class Record:
    """A value whose fields are its __slots__: shown and compared by them.
    (Not a dataclass: importing dataclasses costs the hot path ~10 ms.)"""
    __slots__ = ()

    def __repr__(self):
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other):
        return type(other) is type(self) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)
