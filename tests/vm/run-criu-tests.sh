#!/bin/bash
# Checkpoint and restore tests (tests/integration/test_checkpoint.py) where
# CRIU works: in the VM of tests/vm/cgroup2-vm (kernel 6.1; CRIU 3.17
# refuses this host's kernel). Run on ocirt (this tree, through a launcher
# on the guest's /tmp) and on runc. Ends with one summary line per runtime;
# exits non-zero if either failed. Extra arguments go to pytest.
# Inside the guest (cgroup2-vm runs this script again with --in-guest):
set -u
cd "$(dirname "$0")/../.."
PY=/opt/ocirt/bin/python
if [ "${1:-}" = --in-guest ]; then
    shift
    "$PY" -m ocirt._launcher /tmp/ocirt-vm || exit 1
    status=0
    for rt in /tmp/ocirt-vm /usr/sbin/runc; do
        echo "== $rt"
        OCIRT=$rt "$PY" -m pytest -q -rfEs -p no:cacheprovider tests/integration/test_checkpoint.py "$@" \
            || status=1
    done
    exit $status
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
bash tests/vm/cgroup2-vm "$PWD" bash "$PWD/tests/vm/run-criu-tests.sh" --in-guest "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
for rt in ocirt-vm runc; do
    summary=$(sed -n "/^== .*$rt\$/,/^== /p" "$log" | grep -E '[0-9]+ (passed|failed|errors?|skipped)|no tests ran' \
        | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')
    echo "run-criu-tests: ${rt%-vm} in the cgroup2 VM: ${summary:-no pytest summary}"
done
[ "$status" = 124 ] && echo "run-criu-tests: the VM hit its time limit"
[ "$status" = 125 ] && echo "run-criu-tests: the VM failed before the tests reported"
exit "$status"
