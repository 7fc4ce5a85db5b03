# `. tests/vm/guest-launcher.sh` in the guest, from the repository's root
# (needs PY): /tmp/ocirt-vm runs a copy of the ocirt package in the guest's
# tmpfs. The repository is a 9p share without a cache (cache=mmap), where
# each module a command imports costs a stat and a read on the host; a
# profile of create in the systemd VM (2026-12-03) spent 7 of its 11 s
# there. The host's root, where runc and the venv are, is cached (loose).
rm -rf /tmp/ocirt-pkg && mkdir /tmp/ocirt-pkg && cp -a ocirt /tmp/ocirt-pkg/ &&
    (cd /tmp/ocirt-pkg && "$PY" -m ocirt._launcher /tmp/ocirt-vm) || exit 1
