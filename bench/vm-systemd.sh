#!/bin/bash
# ocibench on a systemd host: lifecycle with and without --systemd-cgroup,
# for ocirt and runc, in one run, in the VM of tests/vm/cgroup2-vm --systemd
# (systemd as PID 1, pure cgroup v2). `make bench-systemd`; RUNS, ONLY to
# change the runs and workloads. The table goes to stdout.
set -u
cd "$(dirname "$0")/.."
PY=/opt/ocirt/bin/python
. tests/vm/in-systemd-vm.sh bench/vm-systemd.sh "$@"
"$PY" bench/ocibench --runs "${RUNS:-10}" --no-floors --only "${ONLY:-lifecycle}" --tmpdir /tmp \
    'ocirt=/tmp/ocirt-vm' 'ocirt-systemd=/tmp/ocirt-vm --systemd-cgroup' \
    'runc=/usr/sbin/runc' 'runc-systemd=/usr/sbin/runc --systemd-cgroup'
