"""`ocirt features`: valid against the project's features schema, and made of
exactly what the config parser accepts (the tables it checks against)."""
import io
import json
import os
from contextlib import redirect_stdout

import pytest
from jsonschema import Draft4Validator

from ocirt import features as F
from ocirt.clicmds import cmd_features
from ocirt.errors import OcirtError
from ocirt.plan import mounts, seccomp
from ocirt.plan.hooks import KINDS
from ocirt.plan.namespaces import CLONE_FLAGS
from ocirt.plan.process import CAPABILITIES, cap_masks
from ocirt.validate import check_oci_version, validate_features

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def doc():
    return F.features()


def test_valid_against_the_schema(doc):
    with open(os.path.join(ROOT, "schemas", "features.schema.json")) as f:
        schema = json.load(f)
    errors = [e.message for e in Draft4Validator(schema).iter_errors(doc)]
    assert errors == []
    validate_features(doc)  # the generated validator agrees


def test_generated_validator_rejects_a_bad_document(doc):
    bad = dict(doc, linux=dict(doc["linux"], namespaces=["mount", "nonsense"]))
    with pytest.raises(OcirtError, match="linux.namespaces"):
        validate_features(bad)


def test_version_range_is_what_create_accepts(doc):
    assert (doc["ociVersionMin"], doc["ociVersionMax"]) == ("1.0.0", "1.3.0")
    check_oci_version(doc["ociVersionMin"])
    check_oci_version(doc["ociVersionMax"])


def test_every_table_entry_is_listed(doc):
    linux = doc["linux"]
    assert doc["hooks"] == list(KINDS)
    assert sorted(linux["namespaces"]) == sorted(CLONE_FLAGS)
    assert linux["capabilities"] == list(CAPABILITIES)
    sec = linux["seccomp"]
    assert sec["enabled"] is True
    assert sec["actions"] == list(seccomp.SECCOMP_ACTIONS)
    assert sec["operators"] == list(seccomp.SECCOMP_OPERATORS)
    assert sec["archs"] == list(seccomp.SECCOMP_ARCHES)
    assert sec["knownFlags"] == list(seccomp.SECCOMP_FLAGS)
    assert set(sec["supportedFlags"]) <= set(sec["knownFlags"])
    assert doc["mountOptions"] == list(mounts.MOUNT_OPTIONS)
    assert linux["mountExtensions"] == {"idmap": {"enabled": True}}
    assert linux["netDevices"] == {"enabled": True}


def test_listed_mount_options_are_recognized_not_passed_as_data(doc):
    for opt in doc["mountOptions"]:
        assert mounts.parse_options([opt], "mounts[0].options")["data"] == [], opt


def test_listed_capabilities_are_accepted(doc):
    cap_masks({"bounding": doc["linux"]["capabilities"]})
    with pytest.raises(OcirtError):
        cap_masks({"bounding": ["CAP_NOT_A_CAPABILITY"]})


def test_no_filesystem_specific_options_and_string_annotations(doc):
    assert not [o for o in doc["mountOptions"] if "=" in o]
    assert all(isinstance(v, str) for v in doc["annotations"].values())
    assert doc["annotations"]["io.github.seccomp.libseccomp.version"].count(".") == 2


def test_command_prints_the_document(doc):
    out = io.StringIO()
    with redirect_stdout(out):
        assert cmd_features(None, {}, []) == 0
    assert json.loads(out.getvalue()) == doc


def test_command_takes_no_arguments():
    with pytest.raises(OcirtError):
        cmd_features(None, {}, ["extra"])


def test_checkpoint_enabled_says_what_criu_says(doc, monkeypatch):
    from ocirt import criu
    want = "false" if criu.missing() else "true"
    assert doc["annotations"]["org.opencontainers.runc.checkpoint.enabled"] == want
    monkeypatch.setattr(criu, "CRIU", "/nonexistent/criu")
    assert F.features()["annotations"]["org.opencontainers.runc.checkpoint.enabled"] == "false"
