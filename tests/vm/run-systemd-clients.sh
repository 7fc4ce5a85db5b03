#!/bin/bash
# The real clients in their systemd configurations on a systemd host: the
# podman smoke with cgroup_manager = "systemd" and the containerd smoke with
# the shim's SystemdCgroup option, on ocirt and on runc, in the VM of
# tests/vm/cgroup2-vm --systemd (podman's storage on the guest's /tmp: 9p
# refuses conmon's fifos). PODMAN_SCENARIOS / CONTAINERD_SCENARIOS pick a
# subset (default: all; `make vm-systemd-clients`); run-systemd-tests.sh runs
# a subset in `make test`. Ends with one summary line per smoke.
set -u
cd "$(dirname "$0")/../.."
PY=/opt/ocirt/bin/python
if [ "${1:-}" != --in-vm ]; then
    # the packages and the image, here: in the VM the host's / is read-only
    bash tests/clients/podman-smoke --prepare && bash tests/clients/containerd-smoke --prepare || exit 1
fi
. tests/vm/in-systemd-vm.sh tests/vm/run-systemd-clients.sh "$@"
export SMOKE_WORKDIR=/tmp SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-120} SMOKE_BUDGET=${SMOKE_BUDGET:-1200} SMOKE_SHOW_LOG=1
rc=0 summary=
for rt in /tmp/ocirt-vm /usr/sbin/runc; do
    for smoke in podman containerd; do
        if [ $smoke = podman ]; then env=(SMOKE_CGROUP_MANAGER=systemd); want=${PODMAN_SCENARIOS:-}
        else env=(SMOKE_SYSTEMD_CGROUP=1); want=${CONTAINERD_SCENARIOS:-}; fi
        out=$(env "${env[@]}" bash tests/clients/$smoke-smoke $rt $want 2>&1)
        st=$?
        printf '%s\n' "$out"
        summary+="run-systemd-clients: $smoke-smoke $rt (${env[*]}): $(printf '%s\n' "$out" | tail -n 1) (exit status $st)"$'\n'
        [ $st -eq 0 ] || rc=1
    done
done
printf '%s' "$summary"
exit $rc
