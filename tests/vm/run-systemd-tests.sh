#!/bin/bash
# Run the systemd cgroup driver's tests on a real systemd host: in the VM of
# tests/vm/cgroup2-vm --systemd (systemd as PID 1, pure cgroup v2,
# D-Bus; this script runs again there as a Delegate=yes service). There:
# tests/integration/test_cgroups_systemd.py through ocirt, a rootless
# container's scope in a user's manager (test_rootless.py -k systemd, on
# ocirt and runc), then a few
# conformance lifecycle tests with --systemd-cgroup on ocirt and on runc,
# then a few scenarios of the podman and containerd smokes in their systemd
# configurations on both (run-systemd-clients.sh has them all).
# Slow under emulation: keep it small. Without the VM, runs the driver's
# tests here (only the refusals run on a host without systemd). Ends with
# one summary line per suite; exits non-zero if any failed.
set -u
cd "$(dirname "$0")/../.."
PY=/opt/ocirt/bin/python
PYTEST=("$PY" -m pytest -q -rfEs -p no:cacheprovider)
LIFECYCLE="full_lifecycle or delete_created or run_then_nothing or kill_all or create_failing_late"
PODMAN_SCENARIOS="run resources update top_stats_inspect rm_force"
CONTAINERD_SCENARIOS="run resources pause_resume kill_all delete_force"
export PODMAN_SCENARIOS CONTAINERD_SCENARIOS

summary() {  # NAME LOG STATUS
    local s
    s=$(grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected)|no tests ran' "$2" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')
    echo "run-systemd-tests: $1: ${s:-no pytest summary} (exit status $3)"
}

suite() {  # NAME ENV... -- PYTEST ARGS...
    local name=$1 log status
    shift
    log=$(mktemp)
    env "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    summary "$name" "$log" "$status" >>"$SUMMARY"
    rm -f "$log"
    return "$status"
}

if [ "${1:-}" = --in-vm ]; then
    shift
    SUMMARY=$(mktemp)
    . tests/vm/guest-launcher.sh
    rc=0
    suite "ocirt driver tests" OCIRT=/tmp/ocirt-vm "${PYTEST[@]}" tests/integration/test_cgroups_systemd.py "$@" || rc=1
    suite "rootless --systemd-cgroup (the user's manager), ocirt and runc" OCIRT=/tmp/ocirt-vm \
        "${PYTEST[@]}" tests/integration/test_rootless.py -k systemd || rc=1
    suite "conformance, ocirt --systemd-cgroup" CGROUP_DRIVER=systemd RUNTIME=/tmp/ocirt-vm \
        "${PYTEST[@]}" conformance/test_lifecycle.py -k "$LIFECYCLE" || rc=1
    suite "conformance, runc --systemd-cgroup" CGROUP_DRIVER=systemd RUNTIME=/usr/sbin/runc \
        "${PYTEST[@]}" conformance/test_lifecycle.py -k "$LIFECYCLE" || rc=1
    bash tests/vm/run-systemd-clients.sh --in-vm | tee /tmp/clients.log
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    grep '^run-systemd-clients: ' /tmp/clients.log >>"$SUMMARY"
    cat "$SUMMARY"
    rm -f "$SUMMARY"
    exit "$rc"
fi

VM=${CGROUP2_VM:-$PWD/tests/vm/cgroup2-vm}
if [ -f "$VM" ]; then
    # the clients' packages and image, here: in the VM the host's / is read-only
    bash tests/clients/podman-smoke --prepare && bash tests/clients/containerd-smoke --prepare || exit 1
    echo "run-systemd-tests: in the systemd VM ($VM --systemd)" >&2
    bash "$VM" --systemd "$PWD" bash "$PWD/tests/vm/run-systemd-tests.sh" --in-vm "$@"
    exit $?
fi
echo "run-systemd-tests: here (no VM at $VM): only what needs no systemd runs" >&2
SUMMARY=/dev/stdout
suite "ocirt driver tests, no systemd" OCIRT="${OCIRT:-/usr/local/bin/ocirt}" "${PYTEST[@]}" \
    tests/integration/test_cgroups_systemd.py "$@"
