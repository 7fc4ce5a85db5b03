"""ocirt's own answers to bad or hostile input: a one-line error naming the
field or file, no hang, nothing left (conformance/test_faults.py has what
any runtime must do)."""
import json
import os
import time

import pytest


def refused(oci, b, *, raw=None):
    """Run b (its config written as is, or `raw`); the one-line error."""
    if raw is None:
        b.write()
    else:
        with open(os.path.join(b.path, "config.json"), "w") as f:
            f.write(raw)
    before = oci.host_view()
    res = oci("run", "--bundle", b.path, b.cid, check=False, timeout=20)
    assert res.rc == 1 and "Traceback" not in res.err, res
    assert len(res.err.strip().splitlines()) == 1, res
    assert oci.host_view() == before
    return res.err.strip()


@pytest.mark.parametrize("field, value", [
    ("process.args[0]", "/bin/echo\0junk"),
    ("process.env[2]", "A=B\0C"),
    ("process.cwd", "/tmp\0junk"),
    ("process.env[2]", "A=\ud800"),
    ("annotations.k", "v\0"),
    ("hooks.poststop[0].args[1]", "a\0b"),
])
def test_nul_bytes_and_lone_surrogates_name_the_field(oci, field, value):
    b = oci.bundle("true")
    if field.startswith("hooks"):
        b.config["hooks"] = {"poststop": [{"path": "/bin/true", "args": ["true", value]}]}
    elif field == "annotations.k":
        b.config["annotations"] = {"k": value}
    elif field == "process.cwd":
        b.process["cwd"] = value
    elif field == "process.args[0]":
        b.process["args"] = [value, "hello"]
    else:
        b.process["env"].append(value)
    err = refused(oci, b)
    assert err.startswith(f"ocirt: config.json: {field}: "), err


def test_deep_nesting_is_refused_with_a_clear_error(oci):
    b = oci.bundle("true")
    raw = json.dumps(b.config)[:-1] + ', "x": ' + "[" * 20000 + "]" * 20000 + "}"
    assert refused(oci, b, raw=raw) == "ocirt: config.json: invalid JSON: arrays or objects nested too deeply"


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom", "too large"])
def test_config_json_that_never_ends_or_blocks_is_refused_at_once(oci, kind):
    b = oci.bundle("true")
    path = os.path.join(b.path, "config.json")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "too large":
        with open(path, "w") as f:
            f.truncate(65 << 20)
    else:
        os.symlink(kind, path)
    t0 = time.monotonic()
    res = oci("run", "--bundle", b.path, b.cid, check=False, timeout=20)
    assert time.monotonic() - t0 < 5
    want = "larger than 64 MiB" if kind == "too large" else "not a regular file"
    assert res.rc == 1 and res.err.strip() == f"ocirt: {path}: {want}", res


def test_a_value_with_a_newline_stays_on_one_line(oci):
    b = oci.bundle("true")
    b.config["linux"]["namespaces"].append({"type": "foo\nbar"})
    assert "foo\\nbar" in refused(oci, b)


def test_a_container_hook_that_cannot_be_executed_is_one_error(oci):
    b = oci.bundle("true")
    b.config["hooks"] = {"createContainer": [{"path": "/etc/passwd"}]}
    assert refused(oci, b) == "ocirt: config.json: hooks.createContainer[0]: hook /etc/passwd: permission denied"


def test_a_memory_limit_below_what_init_needs_names_the_limit(oci):
    b = oci.bundle("true")
    b.config["linux"]["resources"] = {"memory": {"limit": 4096}}
    err = refused(oci, b)
    assert err.startswith("ocirt: config.json: linux.resources.memory.limit: the memory limit (4096 bytes)"), err


def test_delete_force_removes_a_container_with_a_corrupt_state(oci):
    b = oci.bundle("true")
    oci.create(b)
    pid = oci.state(b.cid)["pid"]
    with open(os.path.join(oci.root, b.cid, "state.json"), "w") as f:
        f.write("{")
    res = oci("delete", "--force", b.cid, check=False)
    assert res.rc == 0 and "corrupt state.json" in res.err, res
    assert b.cid not in os.listdir(oci.root)
    os.kill(pid, 9)  # left, as the warning says: nothing names it any more


@pytest.mark.parametrize("command", ["exec --process", "update -r"])
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory"])
def test_process_json_and_resources_files_must_be_regular(oci, tmp_path, command, kind):
    b = oci.bundle("sleep 30")
    oci.create(b)
    path = str(tmp_path / "input.json")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        os.mkdir(path)
    else:
        os.symlink(kind, path)
    t0 = time.monotonic()
    res = oci(*command.split(), path, b.cid, *(["true"] if command.startswith("exec") else []),
              check=False, timeout=20)
    assert time.monotonic() - t0 < 5
    assert res.rc != 0 and len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err, res
    assert kind == "directory" or "not a regular file" in res.err, res
