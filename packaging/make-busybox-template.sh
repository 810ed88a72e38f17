#!/bin/sh
# Builds a minimal OS template for berth from Debian's busybox-static:
# a root filesystem with busybox, its applet links, an inittab and the few
# files a system container expects, packed as a .tar.gz berth can unpack.
#
#   packaging/make-busybox-template.sh [OUTPUT]   (default: data/templates/busybox.tar.gz)
set -eu

out=${1:-data/templates/busybox.tar.gz}
busybox=${BUSYBOX:-/bin/busybox}

if ! "$busybox" --list-full >/dev/null 2>&1 || ! ldd "$busybox" 2>&1 | grep -q 'not a dynamic'; then
    echo "error: $busybox is not a static busybox; install it with: apt-get install busybox-static" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

mkdir -p "$rootfs"
for dir in bin sbin usr/bin usr/sbin etc/init.d dev proc sys tmp run root var/log var/run home; do
    mkdir -p "$rootfs/$dir"
done
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"

cp "$busybox" "$rootfs/bin/busybox"
"$busybox" --list-full | while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$rootfs/$(dirname "$applet")"
    ln -sf /bin/busybox "$rootfs/$applet"
done

cat > "$rootfs/etc/inittab" <<'INITTAB'
::sysinit:/etc/init.d/rcS
::shutdown:/bin/sync
INITTAB

cat > "$rootfs/etc/init.d/rcS" <<'RCS'
#!/bin/sh
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm 2>/dev/null
mount -t tmpfs tmpfs /run 2>/dev/null
[ -s /etc/hostname ] && hostname -F /etc/hostname
ip link set lo up 2>/dev/null
exit 0
RCS
chmod 0755 "$rootfs/etc/init.d/rcS"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
printf 'root::0:0:99999:7:::\n' > "$rootfs/etc/shadow"
chmod 0600 "$rootfs/etc/shadow"
printf 'localhost\n' > "$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$rootfs/etc/hosts"
: > "$rootfs/etc/resolv.conf"

mkdir -p "$(dirname "$out")"
tmp_out="$out.partial.$$"
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -czf "$tmp_out" .
mv "$tmp_out" "$out"
echo "$out"
