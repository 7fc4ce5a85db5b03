#!/bin/bash
# Run the cgroup v2 driver tests on a pure cgroup v2 host: in the VM of
# tests/vm/cgroup2-vm (QEMU, slow: keep the suite small). There, real
# containers run through the ocirt command line too (test_cgroupcmds.py).
# Ends with pytest's summary line and exits with pytest's status. Extra
# arguments go to pytest.
set -u
cd "$(dirname "$0")/../.."
PY=/opt/ocirt/bin/python
PYTEST=("$PY" -m pytest -q -rfEs -p no:cacheprovider)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

bash tests/vm/cgroup2-vm "$PWD" "${PYTEST[@]}" tests/integration/test_cgroups_v2.py \
    tests/integration/test_cgroupcmds.py "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

summary=$(grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected)|no tests ran' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')
case $status in
    124) summary="${summary:-the VM hit its time limit}" ;;
    125) summary="${summary:-the VM failed before the tests reported}" ;;
esac
echo "run-v2-tests: ran in the cgroup2 VM: ${summary:-no pytest summary} (exit status $status)"
exit "$status"
