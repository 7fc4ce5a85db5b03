# `. tests/vm/in-systemd-vm.sh SCRIPT "$@"`, from the repository's root, in a
# script (SCRIPT, its path from the root) whose work runs in the systemd VM:
# without --in-vm it runs SCRIPT again there (tests/vm/cgroup2-vm --systemd,
# the repository as DIR); in the VM it makes the launcher /tmp/ocirt-vm
# (guest-launcher.sh). Needs PY.
if [ "${2:-}" != --in-vm ]; then
    exec bash tests/vm/cgroup2-vm --systemd "$PWD" bash "$PWD/$1" --in-vm
fi
. tests/vm/guest-launcher.sh
