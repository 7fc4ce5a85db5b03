"""The project's schemas (schemas/) agree with the upstream runtime-spec v1.3.0
schemas on every upstream fixture, and accept the project's bundles and the
configs real clients (podman, containerd) send.

Non-Linux platforms: schemas/config.schema.json describes config.json as a
Linux runtime reads it. The solaris, windows, vm, zos and freebsd sections are
not described, so, like any unknown field, they are accepted and ignored. A
fixture carrying one is judged on its Linux-relevant part: the project schema
must give, for the whole document, upstream's verdict on the document without
those sections; and where upstream's verdict on the whole document differs
(test/config/bad/freebsd-vnet-disable.json), every upstream error must lie
inside such a section.
"""
import copy
import glob
import json
import os

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# upstream's schemas and test fixtures, vendored (Apache-2.0, LICENSE inside)
SPEC = os.path.join(ROOT, "tests", "fixtures", "runtime-spec-v1.3.0")
OTHER_PLATFORMS = ("solaris", "windows", "vm", "zos", "freebsd")
UPSTREAM_ROOTS = {"config": "config-schema.json", "state": "state-schema.json",
                  "features": "features-schema.json"}


def load(path):
    with open(path) as f:
        return json.load(f)


def project_validator(kind):
    schema = load(os.path.join(ROOT, "schemas", f"{kind}.schema.json"))
    return Draft4Validator(schema)


def upstream_validator(kind):
    """Upstream's schema for `kind`, its cross-file $refs resolved locally."""
    base = f"file://{SPEC}/"
    registry = Registry().with_resources(
        (base + os.path.basename(path), Resource.from_contents(load(path), default_specification=DRAFT4))
        for path in glob.glob(os.path.join(SPEC, "*.json")))
    return Draft4Validator({"$ref": base + UPSTREAM_ROOTS[kind]}, registry=registry)


def linux_part(doc):
    """The document without the sections of other platforms."""
    if not isinstance(doc, dict):
        return doc
    return {k: v for k, v in doc.items() if k not in OTHER_PLATFORMS}


RUNC_PROPAGATION = {"": "slave", "rshared": "shared", "rslave": "slave", "rprivate": "private",
                    "runbindable": "unbindable"}


def upstream_view(doc):
    """doc as upstream should judge it, given the project schema's two
    deliberate widenings (schemas/README.md): a device fileMode may carry the
    file type bits of st_mode (podman --privileged), only 0-511 count; and
    rootfsPropagation takes runc's recursive forms and ""."""
    linux = doc.get("linux") if isinstance(doc, dict) else None
    if not isinstance(linux, dict):
        return doc
    doc = copy.deepcopy(doc)
    prop = linux.get("rootfsPropagation")
    if isinstance(prop, str) and prop in RUNC_PROPAGATION:
        doc["linux"]["rootfsPropagation"] = RUNC_PROPAGATION[prop]
    if not isinstance(linux.get("devices"), list):
        return doc
    for d in doc["linux"]["devices"]:
        mode = d.get("fileMode") if isinstance(d, dict) else None
        if type(mode) is int and 511 < mode <= 65535:
            d["fileMode"] = mode & 0o777
    return doc


def fixtures():
    return sorted(glob.glob(os.path.join(SPEC, "test", "*", "*", "*.json")))


def bundle_configs():
    return sorted(glob.glob(os.path.join(ROOT, "bundles", "*", "config.json")))


def client_configs():
    return sorted(glob.glob(os.path.join(ROOT, "conformance", "fixtures", "clients", "*-config.json")))


def short(path):
    return os.path.relpath(path, os.path.dirname(SPEC))


@pytest.fixture(scope="module")
def validators():
    return {kind: (project_validator(kind), upstream_validator(kind)) for kind in UPSTREAM_ROOTS}


@pytest.mark.parametrize("kind", sorted(UPSTREAM_ROOTS))
def test_project_schemas_are_valid_draft4(kind):
    Draft4Validator.check_schema(load(os.path.join(ROOT, "schemas", f"{kind}.schema.json")))


def test_fixtures_are_found():
    kinds = {path.split(os.sep)[-3] for path in fixtures()}
    assert kinds == set(UPSTREAM_ROOTS)
    assert client_configs()


@pytest.mark.parametrize("path", fixtures(), ids=short)
def test_upstream_fixture(path, validators):
    kind, verdict = path.split(os.sep)[-3:-1]
    with open(path) as f:
        text = f.read()
    try:
        doc = json.loads(text)
    except ValueError:
        assert verdict == "bad"    # not JSON at all: no schema gets to see it
        return
    ours, upstream = validators[kind]
    upstream_errors = list(upstream.iter_errors(doc))
    assert (not upstream_errors) == (verdict == "good"), "upstream disagrees with the fixture's folder"
    expected = upstream.is_valid(linux_part(doc))
    assert ours.is_valid(doc) == expected
    assert ours.is_valid(linux_part(doc)) == expected
    if expected != (not upstream_errors):
        assert all(e.absolute_path and e.absolute_path[0] in OTHER_PLATFORMS for e in upstream_errors)


def test_a_non_linux_section_is_what_upstream_rejects_in_the_freebsd_fixture(validators):
    # Guards the judgement above: this fixture is bad for FreeBSD only.
    doc = load(os.path.join(SPEC, "test", "config", "bad", "freebsd-vnet-disable.json"))
    ours, upstream = validators["config"]
    assert not upstream.is_valid(doc)
    assert upstream.is_valid(linux_part(doc)) and ours.is_valid(doc)


@pytest.mark.parametrize("path", client_configs() + bundle_configs(), ids=lambda p: os.path.relpath(p, ROOT))
def test_real_configs_are_accepted(path, validators):
    doc = load(path)
    ours, upstream = validators["config"]
    assert list(ours.iter_errors(doc)) == []
    assert upstream.is_valid(upstream_view(doc))
