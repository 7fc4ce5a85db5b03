#!/bin/sh
# Build a minimal busybox root filesystem from Debian's busybox-static.
# usage: mkrootfs.sh DIR   (DIR/bin/busybox plus one link per applet)
set -eu
dir=${1:?usage: mkrootfs.sh DIR}
bb=/bin/busybox
if ldd "$bb" >/dev/null 2>&1; then
    echo "mkrootfs.sh: $bb is not static; apt-get install busybox-static" >&2
    exit 1
fi
mkdir -p "$dir/bin" "$dir/sbin" "$dir/etc" "$dir/proc" "$dir/sys" "$dir/dev" \
         "$dir/tmp" "$dir/root" "$dir/home/tester" "$dir/usr/bin" "$dir/usr/sbin" "$dir/run" "$dir/var"
cp "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
    [ -e "$dir/bin/$applet" ] || ln -s busybox "$dir/bin/$applet"
done
chmod 1777 "$dir/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\ntester:x:1000:\nnogroup:x:65534:\n' > "$dir/etc/group"
