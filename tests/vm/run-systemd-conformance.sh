#!/bin/bash
# On demand (`make vm-systemd-conformance`): the conformance tests that depend
# on the cgroup driver (test_cgroups.py, test_client_configs.py, the lifecycle)
# with --systemd-cgroup, on ocirt and on runc, in the systemd VM
# (tests/vm/cgroup2-vm --systemd; CGROUP2_VM_CGROUP=hybrid for v1). About
# 10 min under emulation on a loaded host, so not in `make test`, which runs
# the lifecycle part (run-systemd-tests.sh).
set -u
cd "$(dirname "$0")/../.."
PY=/opt/ocirt/bin/python
. tests/vm/in-systemd-vm.sh tests/vm/run-systemd-conformance.sh "$@"
rc=0
for rt in /tmp/ocirt-vm /usr/sbin/runc; do
    CGROUP_DRIVER=systemd RUNTIME=$rt "$PY" -m pytest -q -rfEs -p no:cacheprovider \
        conformance/test_cgroups.py conformance/test_client_configs.py conformance/test_lifecycle.py || rc=1
done
exit $rc
