#!/bin/bash
# Run the cgroup v2 driver tests on a pure cgroup v2 host: in the VM of
# /work/shared/vm/cgroup2-vm (QEMU, slow: keep the suite small). Without
# the VM, run them here on what this host's cgroup2 mount allows, and say so.
# Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/../.."
PY=/opt/ocirt/bin/python
VM=${CGROUP2_VM:-/work/shared/vm/cgroup2-vm}
TESTS=(tests/integration/test_cgroups_v2.py)
if [ -f "$VM" ]; then
    echo "run-v2-tests: in the cgroup2 VM ($VM)" >&2
    exec bash "$VM" "$PWD" "$PY" -m pytest -q -rs -p no:cacheprovider "${TESTS[@]}" "$@"
fi
echo "run-v2-tests: no cgroup2 VM at $VM; running on this host's cgroup2 mount" >&2
exec "$PY" -m pytest -q -rs -p no:cacheprovider "${TESTS[@]}" "$@"
