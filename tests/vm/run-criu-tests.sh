#!/bin/bash
# Checkpoint and restore tests where CRIU works: in the VM of
# tests/vm/cgroup2-vm (kernel 6.1; CRIU 3.17 refuses this host's kernel).
# tests/integration/test_checkpoint.py, then the checkpoint scenarios of the
# podman and containerd smokes (podman container checkpoint/restore, ctr c
# checkpoint/restore; their storage on the guest's /tmp: 9p refuses conmon's
# fifos), on ocirt (this tree, through a launcher on the guest's /tmp) and on
# runc. Ends with one summary line per suite and runtime; exits non-zero if
# any failed. Extra arguments go to pytest; CRIU_CLIENTS=0 leaves out the
# clients.
set -u
cd "$(dirname "$0")/../.."
PY=/opt/ocirt/bin/python
CLIENTS=${CRIU_CLIENTS:-1}
if [ "${1:-}" = --in-guest ]; then   # (cgroup2-vm runs this script again there)
    shift
    "$PY" -m ocirt._launcher /tmp/ocirt-vm || exit 1
    export SMOKE_WORKDIR=/tmp SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-120} SMOKE_SHOW_LOG=1
    status=0
    for rt in /tmp/ocirt-vm /usr/sbin/runc; do
        echo "== $rt"
        OCIRT=$rt "$PY" -m pytest -q -rfEs -p no:cacheprovider tests/integration/test_checkpoint.py "$@" \
            || status=1
        [ "$CLIENTS" = 1 ] || continue
        for smoke in podman:checkpoint_restore containerd:checkpoint; do
            echo "== ${smoke%%:*}-smoke $rt"
            bash tests/clients/${smoke%%:*}-smoke $rt ${smoke#*:} || status=1
        done
    done
    exit $status
fi
if [ "$CLIENTS" = 1 ]; then   # the packages and the image, here: in the VM the host's / is read-only
    bash tests/clients/podman-smoke --prepare && bash tests/clients/containerd-smoke --prepare || exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
CRIU_CLIENTS=$CLIENTS bash tests/vm/cgroup2-vm "$PWD" bash "$PWD/tests/vm/run-criu-tests.sh" --in-guest "$@" 2>&1 \
    | tee "$log"
status=${PIPESTATUS[0]}
summary() {   # the last result line of the section "== HEADER"
    sed -n "\\%^== $1\$%,\\%^== %p" "$log" | grep -E '[0-9]+ (passed|failed|errors?|skipped)|no tests ran' \
        | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//'
}
for rt in /tmp/ocirt-vm /usr/sbin/runc; do
    name=$(basename "$rt"); name=${name%-vm}
    echo "run-criu-tests: $name in the cgroup2 VM: $(summary "$rt" || true)"
    [ "$CLIENTS" = 1 ] || continue
    for smoke in podman containerd; do
        echo "run-criu-tests: $smoke-smoke checkpoint on $name: $(summary "$smoke-smoke $rt")"
    done
done
[ "$status" = 124 ] && echo "run-criu-tests: the VM hit its time limit"
[ "$status" = 125 ] && echo "run-criu-tests: the VM failed before the tests reported"
exit "$status"
