"""The validator generated from schemas/ (ocirt/_validator_gen.py and the
process checks it imports, ocirt/_validator_process_gen.py, through
ocirt.validate) agrees with jsonschema on the project schemas: on every
fixture and on thousands of mutations of a config that uses every field, and
a process.json alone as its process. The project schema agrees with
upstream's on those mutations too. Its errors name the field at fault with a
short message."""
import copy
import glob
import importlib.util
import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_schemas import (ROOT, client_configs, fixtures, linux_part, load,  # noqa: E402
                          project_validator, upstream_validator, upstream_view)

from ocirt import _validator_gen  # noqa: E402
from ocirt.errors import OcirtError  # noqa: E402
from ocirt.validate import (check_oci_version, validate_config, validate_features, validate_process,  # noqa: E402
                            validate_state)

CHECKS = {"config": _validator_gen.check_config, "state": _validator_gen.check_state,
          "features": _validator_gen.check_features}
# A value for each pattern of the schemas, to build documents that use every field.
PATTERN_SAMPLES = {"^RLIMIT_[A-Z]+$": "RLIMIT_NOFILE", "^[0-9, -]*$": "0-3, 7",
                   "^[1-9][0-9]*[KMG]B$": "2MB", "^MB:[^\\n]*$": "MB:0=20", "^[cbup]$": "c",
                   "^CAP_[A-Z_]+$": "CAP_SYS_ADMIN"}
ODD_VALUES = [None, True, False, 0, -1, 1.5, 1.0, "", "x", "\n", [], [1], {}, {"a": 1}]


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_validator", os.path.join(ROOT, "tools", "gen_validator.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


# ---- documents built from the schemas, and their mutations ---------------

def resolve(schema, defs):
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def full_instance(schema, defs):
    """A valid document that sets every property the schema describes."""
    schema = resolve(schema, defs)
    kind = schema["type"]
    if kind == "object":
        doc = {name: full_instance(sub, defs) for name, sub in schema.get("properties", {}).items()}
        for sub in schema.get("patternProperties", {}).values():
            doc["some.key"] = full_instance(sub, defs)
        if isinstance(schema.get("additionalProperties"), dict):
            doc["name0"] = full_instance(schema["additionalProperties"], defs)
        return doc
    if kind == "array":
        return [full_instance(schema["items"], defs)]
    if kind == "string":
        return schema["enum"][-1] if "enum" in schema else PATTERN_SAMPLES.get(schema.get("pattern"), "s")
    if kind == "integer":
        return max(schema.get("minimum", 3), min(3, schema.get("maximum", 3)))
    return True


def schema_bounds(schema, defs):
    """Integers worth trying at and across the bounds a schema node declares."""
    schema = resolve(schema, defs)
    lo, hi = schema.get("minimum"), schema.get("maximum")
    return [b + d for b in (lo, hi) if b is not None for d in (-1, 0, 1)]


def mutations(doc, schema, defs, pruned=False):
    """(description, mutated copy of doc) pairs: every node replaced by odd
    values, strings bent, integers pushed across bounds, fields removed or
    added, enum values swapped for each other, enum and pattern values broken. `pruned` mutates, instead of the
    whole document, its branch leading to the node (siblings dropped unless
    required), which keeps jsonschema quick on a big document."""
    for path, node, sub in walk(doc, schema, defs, ()):
        base, at = prune(doc, path, schema, defs) if pruned else (doc, path)
        replacements = list(ODD_VALUES) + (schema_bounds(sub, defs) + sub.get("enum", []) if sub else [])
        if isinstance(node, str):
            replacements += [node + "\n", node + "x", node[:-1], node.lower(), "x" + node, node + "\nx"]
        if isinstance(node, int) and not isinstance(node, bool):
            replacements += [2 ** 64, -2 ** 63 - 1, 2 ** 63]
        for value in replacements:
            yield f"{path} = {value!r}", replaced(base, at, value)
        if isinstance(node, dict):
            for key in node:
                yield f"del {path + (key,)}", removed(base, at + (key,))
            for key, value in (("", 1), ("\n", 1), ("new.key", 1), ("new", "v")):
                yield f"{path}[{key!r}] = {value!r}", replaced(base, at + (key,), value)
        if isinstance(node, list) and node:
            yield f"{path} += item", replaced(base, at, node + [copy.deepcopy(node[0]), 7])


def prune(node, path, schema, defs):
    """(node cut down to the branch leading to path, the path in it)."""
    if not path:
        return node, ()
    schema = resolve(schema, defs) if schema else None
    key = path[0]
    if isinstance(node, list):
        sub, rest = prune(node[key], path[1:], schema.get("items") if schema else None, defs)
        return [sub], (0,) + rest
    sub, rest = prune(node[key], path[1:], child_schema(schema, key), defs)
    kept = {k: node[k] for k in (schema or {}).get("required", ()) if k in node}
    kept[key] = sub
    return kept, (key,) + rest


def walk(node, schema, defs, path):
    """(path, node, its schema or None) for every node under `node`."""
    schema = resolve(schema, defs) if schema else None
    yield path, node, schema
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, child_schema(schema, key), defs, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node[:2]):
            yield from walk(value, schema.get("items") if schema else None, defs, path + (i,))


def child_schema(schema, key):
    if not schema:
        return None
    if key in schema.get("properties", {}):
        return schema["properties"][key]
    for sub in schema.get("patternProperties", {}).values():
        return sub
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def replaced(doc, path, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def removed(doc, path):
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return doc


def cases(kind):
    schema = load(os.path.join(ROOT, "schemas", f"{kind}.schema.json"))
    defs = schema.get("definitions", {})
    seed = full_instance(schema, defs)
    yield "full instance", seed
    yield from mutations(seed, schema, defs, pruned=True)
    small = [linux_part(load(p)) for p in fixtures() if f"{os.sep}{kind}{os.sep}" in p and "invalid-json" not in p]
    for doc in small:
        if len(json.dumps(doc)) < 1500:
            yield from mutations(doc, schema, defs)


@pytest.fixture(scope="module")
def schema_validators():
    return {kind: (project_validator(kind), upstream_validator(kind)) for kind in CHECKS}


# ---- agreement ------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_generated_validator_agrees_with_jsonschema_and_upstream_on_mutations(kind, schema_validators):
    ours, upstream = schema_validators[kind]
    counts = {True: 0, False: 0}
    for label, doc in cases(kind):
        valid = ours.is_valid(doc)
        counts[valid] += 1
        assert (CHECKS[kind](doc) is None) == valid, label
        assert upstream.is_valid(upstream_view(doc)) == valid, label
    assert counts[True] > 50 and counts[False] > 200, counts


@pytest.mark.parametrize("path", [p for p in fixtures() if "invalid-json" not in p],
                         ids=lambda p: os.path.relpath(p, os.path.dirname(os.path.dirname(p))))
def test_generated_validator_agrees_with_jsonschema_on_fixtures(path, schema_validators):
    kind = path.split(os.sep)[-3]
    doc = load(path)
    assert (CHECKS[kind](doc) is None) == schema_validators[kind][0].is_valid(doc)


@pytest.mark.parametrize("path", client_configs() + sorted(
    __import__("glob").glob(os.path.join(ROOT, "bundles", "*", "config.json"))), ids=os.path.basename)
def test_real_configs_pass_validate_config(path):
    validate_config(load(path))


def test_full_instances_use_every_field_and_are_valid():
    for kind, check in CHECKS.items():
        schema = load(os.path.join(ROOT, "schemas", f"{kind}.schema.json"))
        doc = full_instance(schema, schema.get("definitions", {}))
        assert check(doc) is None
    assert "umask" in doc_of("config")["process"]["user"]
    assert "netDevices" in doc_of("config")["linux"]


def doc_of(kind):
    schema = load(os.path.join(ROOT, "schemas", f"{kind}.schema.json"))
    return full_instance(schema, schema.get("definitions", {}))


def process_cases():
    """Process objects: config's full instance's and the clients' exec
    process.json, with their mutations."""
    schema = load(os.path.join(ROOT, "schemas", "config.schema.json"))
    defs = schema["definitions"]
    docs = [doc_of("config")["process"]] + [
        load(p) for p in sorted(glob.glob(os.path.join(ROOT, "conformance", "fixtures", "clients", "*-exec-process.json")))]
    for doc in docs:
        yield "as is", doc
        yield from mutations(doc, schema["properties"]["process"], defs)


def test_process_json_is_checked_as_configs_process(schema_validators):
    """validate_process agrees with jsonschema on config.json's process, and
    names an error's field as validate_config does in a config holding it."""
    ours = schema_validators["config"][0]
    counts = {True: 0, False: 0}
    for label, doc in process_cases():
        config = {"ociVersion": "1.0.0", "process": doc}
        valid = ours.is_valid(config)
        counts[valid] += 1
        try:
            validate_process(doc)
            assert valid, label
        except OcirtError as e:
            assert not valid, label
            with pytest.raises(OcirtError) as in_config:
                validate_config(config)
            assert (e.source, e.where, e.msg) == ("process.json", in_config.value.where, in_config.value.msg), label
    assert counts[True] > 50 and counts[False] > 200, counts


# ---- the generator --------------------------------------------------------

def generated_modules():
    return {os.path.basename(path)[:-3]: source for path, source in gen.generate().items()}


def test_committed_generated_code_is_up_to_date():
    sources = gen.generate()
    assert sorted(sources) == sorted(glob.glob(os.path.join(ROOT, "ocirt", "_validator*_gen.py")))
    for path, source in sources.items():
        with open(path) as f:
            assert f.read() == source, f"{path} is stale: run python tools/gen_validator.py"


def test_generated_code_imports_only_the_process_checks():
    """The process module imports nothing, the config's only it (so exec
    --process loads it alone, and no code is in both)."""
    imports = {name: re.findall(r"^\s*(?:import|from)\s+(\S+)", source, re.M)
               for name, source in generated_modules().items()}
    assert imports == {"_validator_process_gen": [], "_validator_gen": ["ocirt._validator_process_gen"]}
    assert "def check_process(" not in generated_modules()["_validator_gen"]


def schema_patterns():
    found = set()
    for kind in CHECKS:
        text = json.dumps(load(os.path.join(ROOT, "schemas", f"{kind}.schema.json")))
        found |= set(re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', text))
        found |= {json.loads(m) for m in re.findall(r'"patternProperties": \{(".*?"):', text)}
    return sorted(json.loads(p) if p.startswith('"') else p for p in found)


def pattern_probes(sample):
    """Strings near `sample`: each character deleted, replaced or followed by
    characters regexes treat specially."""
    probes = {sample, "", "\n", sample + "\n", sample + "\n\n", "\n" + sample}
    for i in range(len(sample) + 1):
        for c in "aZ0_9-, :\nMBKG\t":
            probes |= {sample[:i] + c + sample[i:], sample[:i] + c + sample[i + 1:]}
        probes.add(sample[:i] + sample[i + 1:])
    return probes


@pytest.mark.parametrize("pattern", schema_patterns())
def test_compiled_patterns_match_like_re_search(pattern):
    namespace = {}
    exec(gen.compile_pattern("matches", pattern), namespace)
    probes = pattern_probes(PATTERN_SAMPLES.get(pattern, "some.key"))
    assert any(re.search(pattern, s) for s in probes) and not all(re.search(pattern, s) for s in probes)
    for s in probes:
        assert namespace["matches"](s) == bool(re.search(pattern, s)), repr(s)


@pytest.mark.parametrize("pattern", ["^a*a$", "^[a-c]*b$", "^x?[xy]$", "(a|b)", "^\\d+$"])
def test_patterns_the_compiler_cannot_decide_exactly_are_refused(pattern):
    with pytest.raises(gen.SchemaError):
        gen.compile_pattern("matches", pattern)


@pytest.mark.parametrize("sub", [{"type": "string", "format": "uri"}, {"type": "string", "required": ["x"]},
                                 {"type": "number"}, {"enum": ["x"]}, {"$ref": "#/definitions/x", "type": "string"}])
def test_schemas_the_compiler_does_not_understand_are_refused(sub):
    schema = {"type": "object", "properties": {"a": sub}, "definitions": {"x": {"type": "string"}}}
    with pytest.raises(gen.SchemaError):
        gen.Compiler().document("config", schema)


# ---- error paths and messages ---------------------------------------------

def base_config():
    return {"ociVersion": "1.3.0", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"]},
            "mounts": [{"destination": "/proc", "type": "proc"}, {"destination": "/dev"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}],
                      "seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"}]},
                      "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}}


def config_error(path, value, delete=False):
    doc = removed(base_config(), path) if delete else replaced(base_config(), path, value)
    with pytest.raises(OcirtError) as info:
        validate_config(doc)
    return info.value.where, info.value.msg


@pytest.mark.parametrize("path, value, where, msg", [
    (("linux", "namespaces", 2, "type"), "foo", "linux.namespaces[2].type",
     'unknown value "foo" (one of: cgroup, ipc, mount, network, pid, time, user, uts)'),
    (("process", "args"), "sh", "process.args", "must be an array"),
    (("process", "args"), ["sh", 5], "process.args[1]", "must be a string"),
    (("mounts", 1), {"type": "tmpfs"}, "mounts[1]", 'missing required field "destination"'),
    (("linux", "seccomp", "syscalls", 0, "names"), [], "linux.seccomp.syscalls[0].names", "must have at least 1 item"),
    (("linux", "uidMappings", 0, "size"), 2 ** 32, "linux.uidMappings[0].size",
     "must be an integer between 0 and 4294967295"),
    (("process", "rlimits"), [{"type": "RLIMIT_nofile", "soft": 1, "hard": 1}], "process.rlimits[0].type",
     'invalid value "RLIMIT_nofile" (must match ^RLIMIT_[A-Z]+$)'),
    (("annotations",), {"io.example": 1}, "annotations.io.example", "must be a string"),
    (("root", "readonly"), "yes", "root.readonly", "must be a boolean"),
    (("process",), None, "process", "must be an object"),
])
def test_error_names_the_field(path, value, where, msg):
    assert config_error(path, value) == (where, msg)


def test_missing_top_level_field_and_non_object_document():
    assert config_error(("ociVersion",), None, delete=True) == ("", 'missing required field "ociVersion"')
    with pytest.raises(OcirtError) as info:
        validate_config([])
    assert (info.value.where, info.value.msg) == ("", "must be an object")


def test_error_prints_file_field_and_message():
    doc = replaced(base_config(), ("linux", "namespaces", 0, "type"), "pidns")
    with pytest.raises(OcirtError, match=r'^config\.json: linux\.namespaces\[0\]\.type: unknown value "pidns" '):
        validate_config(doc)


def test_state_and_features_errors_name_their_document():
    with pytest.raises(OcirtError) as info:
        validate_state({"ociVersion": "1.3.0", "id": "c", "status": "created", "bundle": "/b", "pid": -1})
    assert (info.value.source, info.value.where, info.value.msg) == ("state.json", "pid", "must be an integer >= 0")
    with pytest.raises(OcirtError) as info:
        validate_features({"ociVersionMin": "1.0.0"})
    assert (info.value.source, info.value.where) == ("features.json", "")
    validate_state({"ociVersion": "1.3.0", "id": "c", "status": "running", "bundle": "/b", "pid": 42})
    validate_features({"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"})


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0-rc.1", "1.2.1", "1.3.0", "1.3.7", "1.3.0+build.5"])
def test_supported_versions(version):
    check_oci_version(version)
    validate_config({"ociVersion": version})


@pytest.mark.parametrize("version", ["0.5.0-dev", "2.0.0", "1.0", "1.0.0.0", "v1.0.0", "1.x.0", "1.0.0-", "1.0.0+",
                                     "", "1.\u0661.0"])
def test_unsupported_versions(version):
    with pytest.raises(OcirtError) as info:
        validate_config({"ociVersion": version})
    assert info.value.where == "ociVersion"
    assert f'"{version}"' in info.value.msg


@pytest.mark.parametrize("doc, where", [
    ({"a": [{"b": "x"}, {"c": "y\0"}]}, "a[1].c"),
    ({"a": {"k\0": "v"}}, "a"),
    ({"a": ["\udfff"]}, "a[0]"),
])
def test_check_strings_names_the_string_at_fault(doc, where):
    from ocirt.validate import check_strings, may_hold_nul_or_surrogate
    raw = json.dumps(doc).encode()
    assert may_hold_nul_or_surrogate(raw)
    with pytest.raises(OcirtError) as e:
        check_strings(doc, raw)
    assert e.value.where == where


def test_check_strings_accepts_what_encodes():
    from ocirt.validate import check_strings
    doc = {"a": ["é", "\U0001f600", "\ud7ff"], "n": [1, None, True]}
    check_strings(doc, json.dumps(doc).encode())   # \ud7ff: the walk runs, and passes
