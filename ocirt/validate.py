"""Validate config.json, state and features documents against the project's
schemas (schemas/*.schema.json) with the code tools/gen_validator.py compiles
from them: jsonschema would cost ~56 ms of start-up on every `ocirt create`.

Each function raises OcirtError for the document's first error, naming the
field (e.g. where="linux.namespaces[2].type"; "" for the document itself).
Each imports the generated checks it needs: exec --process loads only the
process's (13 of their 64 KB of .pyc, ~0.7 M instructions less).
"""
from ocirt.errors import OcirtError, jpath


def validate_config(doc):
    """Check a parsed config.json: the schema, then a supported ociVersion."""
    from ocirt._validator_gen import check_config
    _raise(check_config(doc), "config.json")
    check_oci_version(doc["ociVersion"])


def validate_process(doc):
    """Check a process.json (`exec --process`) as config.json's process
    object: its errors are named as there (e.g. process.args[1])."""
    from ocirt._validator_process_gen import check_process
    _raise(check_process(doc), "process.json", "process")


def validate_state(doc):
    """Check a container state document (what `ocirt state` prints)."""
    from ocirt._validator_gen import check_state
    _raise(check_state(doc), "state.json")


def validate_features(doc):
    """Check a runtime features document (what `ocirt features` prints)."""
    from ocirt._validator_gen import check_features
    _raise(check_features(doc), "features.json")


def check_oci_version(version):
    """Accept any 1.x.y runtime-spec version, with an optional pre-release
    (clients send e.g. "1.0.2-dev") or build suffix; the 1.x line is
    backwards compatible, so a config written for any 1.x is read."""
    core, _, build = version.partition("+")
    core, dash, pre = core.partition("-")
    parts = core.split(".")
    numeric = all(p.isascii() and p.isdigit() for p in parts)
    if len(parts) != 3 or not numeric or parts[0] != "1" or (dash and not pre) or ("+" in version and not build):
        raise OcirtError(f'unsupported version "{version}" (this runtime reads 1.x.y)', where="ociVersion")


def _raise(error, source, where=""):
    """The error as OcirtError; its keys are under `where`."""
    if error is not None:
        *keys, msg = error
        for key in keys:
            where = jpath(where, key)
        raise OcirtError(msg, where=where, source=source)


def check_strings(doc, raw, source="config.json"):
    """No string of doc (parsed from the JSON text raw) may hold a NUL (the
    kernel's strings end there: "a\\0b" would silently run or set "a") or a
    lone surrogate (not encodable, so it would fail late, after the cgroups
    were made). Iterative: the depth is only bounded by the JSON parser's."""
    if not may_hold_nul_or_surrogate(raw):
        return
    todo = [(doc, "")]
    while todo:
        value, where = todo.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                _check_string(k, where, source)
                todo.append((v, jpath(where, k)))
        elif isinstance(value, list):
            todo.extend((v, jpath(where, i)) for i, v in enumerate(value))
        elif isinstance(value, str):
            _check_string(value, where, source)


def may_hold_nul_or_surrogate(raw):
    """Whether a JSON text may decode to a string with a NUL or a lone
    surrogate: those come only from \\u escapes (a raw NUL is invalid JSON,
    a surrogate invalid UTF-8), so most documents need no walk."""
    return b"\\u0000" in raw or b"\\ud" in raw or b"\\uD" in raw


def _check_string(s, where, source):
    if "\0" in s:
        raise OcirtError("a NUL byte is not allowed in a string", where, source)
    if not s.isascii():
        try:
            s.encode()
        except UnicodeEncodeError:
            raise OcirtError("a lone UTF-16 surrogate is not allowed in a string", where, source) from None
