"""Plans: the ordered steps ocirt-init executes, built from a config by pure
functions (one module per area of the spec) so they can be unit-tested
without root.

A step is a tuple (name, where, *args): `where` is the config.json path the
step comes from, used in error messages. Arguments are str, int or bytes.
Each step and its fields are declared in ocirt.plan.steps (the tests check
every plan against it; encode does not, for speed)."""
import _struct  # not struct.py, which only re-exports it (~0.4 M instructions)


def encode(steps):
    """Serialise steps into the format ocirt-init reads (see ocirt/_native/plan.c)."""
    out = bytearray()
    for step in steps:
        fields = [_field(x) for x in step]
        out += _struct.pack("<I", len(fields))
        for f in fields:
            out += _struct.pack("<I", len(f) + 1) + f + b"\0"
    return bytes(out)


def _field(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, bool):
        return b"1" if x else b"0"
    return str(x).encode()


def argv_fields(args):
    """A list as fields: its length, then its items."""
    return (len(args), *args)
