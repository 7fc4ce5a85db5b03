# ocirt: set-up, build, demo and tests. Run as root on Debian bookworm.
# The venv ocirt runs from, and where its command, man pages and completion
# go (a Debian-style layout: `make install PREFIX=/usr`).
VENV    ?= /opt/ocirt
PY      := $(VENV)/bin/python
PREFIX  ?= /usr/local
BIN     ?= $(PREFIX)/bin
SHARE   ?= $(PREFIX)/share
DEB_PKGS := python3 python3-venv python3-dev gcc libc6-dev musl-tools libseccomp-dev pkg-config \
            busybox-static runc crun iproute2 procps util-linux bsdutils strace groff-base \
            dbus dbus-user-session libsystemd0 criu iptables uidmap
ROOTFS  := bundles/busybox/rootfs
# The binary the integration tests drive.
export OCIRT := $(BIN)/ocirt

.PHONY: all deps install install-docs man build demo rootfs test unit integration conformance conformance-runc conformance-rootless clients clients-rootless vm vm-criu vm-systemd vm-systemd-v1 vm-systemd-conformance vm-systemd-clients bench bench-systemd clean

all: build

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS) >/dev/null

# The venv uses Debian's python3: no pyenv shims or .pth imports at start-up.
$(PY):
	/usr/bin/python3 -m venv $(VENV)

install: deps $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(MAKE) build
	install -d $(BIN)
	$(PY) -m ocirt._launcher $(BIN)/ocirt
	$(MAKE) install-docs

# ocirt(8), ocirt-COMMAND(8) and the bash completion, made from the command table.
man: $(PY)
	$(PY) -m ocirt.clidoc man build/man

install-docs: man
	install -d $(SHARE)/man/man8 $(SHARE)/bash-completion/completions
	install -m 644 build/man/*.8 $(SHARE)/man/man8/
	$(PY) -m ocirt.clidoc completion $(SHARE)/bash-completion/completions/ocirt

# Byte-compile too: start-up must not pay for compiling sources
# (PYTHONDONTWRITEBYTECODE would otherwise make every run do it).
build: $(PY)
	$(PY) setup.py -q build_ext --inplace
	$(PY) -m compileall -q ocirt

rootfs: $(ROOTFS)/bin/busybox
$(ROOTFS)/bin/busybox: bundles/mkrootfs.sh
	sh bundles/mkrootfs.sh $(ROOTFS)

demo: install rootfs
	$(BIN)/ocirt run --bundle bundles/busybox demo-$$$$

unit: build
	$(PY) -m pytest -q tests/unit

integration: build rootfs
	$(PY) -m pytest -q tests/integration

conformance: build rootfs
	RUNTIME=$(BIN)/ocirt $(PY) -m pytest -q conformance

conformance-runc: build rootfs
	$(PY) conformance/clauses.py --check
	RUNTIME=/usr/sbin/runc $(PY) -m pytest -q conformance

# The lifecycle, start and process parts as a throw-away user on rootless
# bundles (deviations.toml [rootless]), on ocirt and runc
ROOTLESS_CONFORMANCE := conformance/test_lifecycle.py conformance/test_start.py conformance/test_process.py
conformance-rootless: build rootfs
	CONFORMANCE_ROOTLESS=1 RUNTIME=$(BIN)/ocirt $(PY) -m pytest -q $(ROOTLESS_CONFORMANCE)
	CONFORMANCE_ROOTLESS=1 RUNTIME=/usr/sbin/runc $(PY) -m pytest -q $(ROOTLESS_CONFORMANCE)

clients: install
	SMOKE_SHOW_LOG=1 bash tests/clients/podman-smoke $(BIN)/ocirt
	SMOKE_SHOW_LOG=1 bash tests/clients/containerd-smoke $(BIN)/ocirt

# rootless podman (a throw-away user with a subuid range), on ocirt and runc
clients-rootless: install
	SMOKE_ROOTLESS=1 SMOKE_SHOW_LOG=1 bash tests/clients/podman-smoke $(BIN)/ocirt
	SMOKE_ROOTLESS=1 SMOKE_SHOW_LOG=1 bash tests/clients/podman-smoke /usr/sbin/runc

vm: build
	bash tests/vm/run-v2-tests.sh

# checkpoint/restore through CRIU, on ocirt and runc (CRIU 3.17 refuses this host's kernel):
# test_checkpoint.py, then the podman and containerd checkpoint scenarios (their
# --prepare installs the clients here first). 5.1 min on 2026-12-04 (ocirt's pytest
# 1.5, runc's 1.0), 9.6 and 11.8 min under load from other VMs
vm-criu: build
	bash tests/vm/run-criu-tests.sh

vm-systemd: build rootfs
	bash tests/vm/run-systemd-tests.sh

# The same on a systemd host with cgroup v1 controllers (hybrid), the VM's
# --systemd-hybrid mode: 15.6 min whole run on 2026-12-03 (load from other VMs;
# driver tests 8.2 min, conformance ocirt 4.5, runc 1.2), so not part of `make test`.
vm-systemd-v1: build rootfs
	CGROUP2_VM_CGROUP=hybrid bash tests/vm/run-systemd-tests.sh

# The driver-dependent conformance tests with --systemd-cgroup, ocirt and runc (~10 min)
vm-systemd-conformance: build rootfs
	bash tests/vm/run-systemd-conformance.sh

# Every podman and containerd smoke scenario in the clients' systemd
# configurations, ocirt and runc, in the systemd VM (make test runs a few)
vm-systemd-clients: build
	bash tests/vm/run-systemd-clients.sh

# The benchmark: the installed ocirt against runc and crun, every workload,
# one interleaved run; the table in build/bench.md, its samples in
# build/bench.json; fails only if an ocirt workload did not complete.
BENCH_RUNS ?= 20
bench: build
	install -d build
	bench/ocibench --with-defaults --runs $(BENCH_RUNS) --python $(PY) --json build/bench.json 'ocirt=$(OCIRT)' > build/bench.md
	cat build/bench.md
	$(PY) tools/bench_check.py build/bench.json ocirt

# ocibench lifecycle with and without --systemd-cgroup, ocirt and runc, in the systemd VM
bench-systemd: build
	bash bench/vm-systemd.sh

test: install rootfs
	$(PY) -m pytest -q tests
	$(MAKE) conformance-runc
	RUNTIME=$(BIN)/ocirt $(PY) -m pytest -q conformance
	$(MAKE) conformance-rootless
	$(MAKE) vm
	$(MAKE) vm-criu
	$(MAKE) vm-systemd
	$(MAKE) clients
	$(MAKE) clients-rootless
	$(MAKE) bench BENCH_RUNS=2

clean:
	rm -rf build *.egg-info ocirt/COMMIT ocirt/_native/_lib*.so ocirt/_native/_lib.c ocirt/_native/ocirt-init $(ROOTFS)
