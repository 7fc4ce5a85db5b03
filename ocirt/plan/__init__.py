"""Plans: the ordered steps ocirt-init executes, built from a config by pure
functions (one module per area of the spec) so they can be unit-tested
without root.

A step is a tuple (name, where, *args): `where` is the config.json path the
step comes from, used in error messages. Arguments are str, int or bytes.
Each step and its fields are declared in ocirt.plan.steps (the tests check
every plan against it; encode does not, for speed)."""
import _struct  # not struct.py, which only re-exports it (~0.4 M instructions)


_U32 = _struct.Struct("<I").pack


def encode(steps):
    """Serialise steps into the format ocirt-init reads (see ocirt/_native/plan.c).
    str and int fields are converted inline and all is joined once: a
    create's plan has ~460 fields, and a call and two concatenations for
    each cost ~0.8 M instructions more."""
    out = []
    add = out.append
    for step in steps:
        add(_U32(len(step)))
        for x in step:
            t = type(x)
            f = x.encode() if t is str else b"%d" % x if t is int else _field(x)
            add(_U32(len(f) + 1))
            add(f)
            add(b"\0")
    return b"".join(out)


def _field(x):
    if isinstance(x, bytes):
        return x
    if isinstance(x, bool):
        return b"1" if x else b"0"
    return str(x).encode()


def argv_fields(args):
    """A list as fields: its length, then its items."""
    return (len(args), *args)
