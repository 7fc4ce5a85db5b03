# ocirt: set-up, build, demo and tests. Run as root on Debian bookworm.
PREFIX  ?= /opt/ocirt
PY      := $(PREFIX)/bin/python
BIN     ?= /usr/local/bin
DEB_PKGS := python3 python3-venv python3-dev gcc libc6-dev musl-tools libseccomp-dev pkg-config \
            busybox-static runc crun iproute2 procps util-linux bsdutils strace
ROOTFS  := bundles/busybox/rootfs
# shared/ sits beside the checkout (CI: a copy next to the clone).
SHARED  ?= $(abspath ../shared)
# The binary the integration tests drive.
export OCIRT := $(BIN)/ocirt

.PHONY: all deps install build demo rootfs test unit integration conformance conformance-runc clients vm vm-systemd clean

all: build

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PKGS) >/dev/null

# The venv uses Debian's python3: no pyenv shims or .pth imports at start-up.
$(PY):
	/usr/bin/python3 -m venv $(PREFIX)

install: deps $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(MAKE) build
	$(PY) -m ocirt._launcher $(BIN)/ocirt

# Byte-compile too: start-up must not pay for compiling sources
# (PYTHONDONTWRITEBYTECODE would otherwise make every run do it).
build: $(PY)
	$(PY) setup.py -q build_ext --inplace
	git describe --always --dirty --abbrev=12 > ocirt/COMMIT 2>/dev/null || echo unknown > ocirt/COMMIT
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

clients: install
	SMOKE_SHOW_LOG=1 bash $(SHARED)/clients/podman-smoke $(BIN)/ocirt
	SMOKE_SHOW_LOG=1 bash $(SHARED)/clients/containerd-smoke $(BIN)/ocirt

vm: build
	CGROUP2_VM=$(SHARED)/vm/cgroup2-vm bash tests/vm/run-v2-tests.sh

vm-systemd: build rootfs
	CGROUP2_VM=$(SHARED)/vm/cgroup2-vm bash tests/vm/run-systemd-tests.sh

test: install rootfs
	$(PY) -m pytest -q tests
	$(MAKE) conformance-runc
	RUNTIME=$(BIN)/ocirt $(PY) -m pytest -q conformance
	$(MAKE) vm
	$(MAKE) clients

clean:
	rm -rf build *.egg-info ocirt/COMMIT ocirt/_native/_lib*.so ocirt/_native/_lib.c ocirt/_native/ocirt-init $(ROOTFS)
