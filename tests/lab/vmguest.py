#!/usr/bin/env python3
# ruff: noqa  (a copy of /work/shared/tools/vmguest.py as the lead wrote it, plus --numa)
"""Run a command on a cgroup v2 Linux inside a throwaway QEMU guest that sees this host's files.

This machine's memory controller is cgroup v1; most Kubernetes nodes today run v2, and a
system-wide OOM must never happen on the host itself. The guest boots Debian 12's own kernel
package (linux-image-amd64, fetched with `apt-get download` and cached), mounts this host's root
read-only over 9p with a tmpfs overlay on top (writes vanish with the guest), mounts cgroup2 at
/sys/fs/cgroup with the memory controller on, brings up loopback (no other network), and runs the
command in the current directory. Its stdout/stderr and exit status come back; the guest's kernel
console is kept in a file (--console) for inspection.

  python3 vmguest.py [--mem MiB] [--numa N] [--timeout S] [--console FILE] -- COMMAND ...
  e.g. python3 ../shared/tools/vmguest.py -- .venv/bin/python -m pytest tests/test_x.py

`--numa N` splits the guest's RAM into N NUMA nodes of equal size (QEMU `memory-backend-ram`
objects, one `-numa node` each, the vCPUs dealt round-robin), for cpuset / mempolicy OOMs.

Needs root, Debian's qemu-system-x86 and busybox-static (installed when missing). Runs under TCG
(nested KVM hangs on this machine class): ~10 s to a shell, Python about 2-3x slower than here.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import io
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

CACHE = "/tmp/kernbot-vmguest"
SMP = 2

MODS = [
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "fs/netfs/netfs",
    "fs/fscache/fscache",
    "net/9p/9pnet",
    "net/9p/9pnet_virtio",
    "fs/9p/9p",
    "fs/overlayfs/overlay",
    "drivers/net/veth",
]

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m.ko || echo "insmod $m failed"; done
mkdir -p /lower /upper /out /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /lower || echo "9p root failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmout /out || echo "9p out failed"
mount -t tmpfs -o size=60% tmpfs /upper && mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot || echo "overlay failed"
mount -t proc proc /newroot/proc; mount -t sysfs sys /newroot/sys; mount -t devtmpfs dev /newroot/dev
mount -t cgroup2 none /newroot/sys/fs/cgroup && echo +memory > /newroot/sys/fs/cgroup/cgroup.subtree_control
mkdir -p /newroot/dev/pts /newroot/dev/shm /newroot/tmp/vmout
mount -t devpts devpts /newroot/dev/pts; mount -t tmpfs tmpfs /newroot/dev/shm; mount -t tmpfs tmpfs /newroot/run
mount --bind /out /newroot/tmp/vmout
ip link set lo up
echo "=====GUEST-READY====="
chroot /newroot /bin/sh -c 'cd "$(cat /tmp/vmout/cwd)" && . /tmp/vmout/env && sh /tmp/vmout/cmd.sh > /tmp/vmout/stdout 2>&1; echo $? > /tmp/vmout/rc'
sync
echo "=====GUEST-DONE====="
poweroff -f
"""


def initramfs() -> str:
    path = os.path.join(CACHE, "guest-initrd.gz")
    if os.path.exists(path):
        return path
    if b"static" not in subprocess.run(["file", "/bin/busybox"], capture_output=True).stdout:
        sh("apt-get", "install", "-y", "-q", "busybox-static")
    kdir = os.path.dirname(os.path.dirname(kernel()))
    mods = os.path.join(kdir, "lib", "modules")
    release = os.listdir(mods)[0]
    files = {
        "init": (0o100755, INIT.encode()),
        "bin/busybox": (0o100755, open("/bin/busybox", "rb").read()),
        "mods/order": (0o100644, " ".join(os.path.basename(m) for m in MODS).encode()),
    }
    for m in MODS:
        files[f"mods/{os.path.basename(m)}.ko"] = (
            0o100644,
            open(os.path.join(mods, release, "kernel", m + ".ko"), "rb").read(),
        )
    with gzip.open(path, "wb") as f:
        f.write(newc({"mods": (0o040755, b""), **files}))
    return path


def sh(*cmd: str) -> None:
    subprocess.run(
        cmd, check=True, capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    )


def kernel() -> str:
    found = glob.glob(os.path.join(CACHE, "root", "boot", "vmlinuz-*"))
    if found:
        return found[0]
    os.makedirs(CACHE, exist_ok=True)
    dep = subprocess.run(
        ["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True
    ).stdout
    pkg = next(w for w in dep.split() if w.startswith("linux-image-6"))
    subprocess.run(["apt-get", "download", pkg], cwd=CACHE, check=True, capture_output=True)
    deb = glob.glob(os.path.join(CACHE, pkg + "_*.deb"))[0]
    sh("dpkg-deb", "-x", deb, os.path.join(CACHE, "root"))
    return glob.glob(os.path.join(CACHE, "root", "boot", "vmlinuz-*"))[0]


def newc(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A cpio archive in the kernel's initramfs format (newc), from {path: (mode, data)}."""
    out, ino = io.BytesIO(), 1

    def entry(name: str, mode: int, data: bytes) -> None:
        nonlocal ino
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0)
        )
        out.write(hdr.encode() + nb)
        out.write(b"\0" * (-(110 + len(nb)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))
        ino += 1

    for d in ("bin", "dev", "proc", "sys", "tmp"):
        entry(d, 0o040755, b"")
    for name, (mode, data) in files.items():
        entry(name, mode, data)
    entry("TRAILER!!!", 0, b"")
    return out.getvalue()


def numa_args(mem_mb: int, nodes: int, cpus: int) -> list[str]:
    """QEMU options for `nodes` NUMA nodes sharing `mem_mb` equally (QEMU 7.2 wants memdev=)."""
    if nodes <= 1:
        return []
    if mem_mb % nodes:
        raise SystemExit(f"--mem {mem_mb} does not split into {nodes} equal nodes")
    out: list[str] = []
    for n in range(nodes):
        out += ["-object", f"memory-backend-ram,id=mem{n},size={mem_mb // nodes}M"]
        mine = [c for c in range(cpus) if c % nodes == n]
        cpu_opt = "".join(f",cpus={c}" for c in mine)
        out += ["-numa", f"node,nodeid={n},memdev=mem{n}{cpu_opt}"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem", type=int, default=2048)
    ap.add_argument("--numa", type=int, default=0, help="NUMA nodes (0: none)")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--console", default=None)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    out = tempfile.mkdtemp(prefix="kb-guest-")
    open(os.path.join(out, "cwd"), "w").write(os.getcwd())
    open(os.path.join(out, "cmd.sh"), "w").write(shlex.join(cmd) + "\n")
    keep = ("PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "BARS_S")
    open(os.path.join(out, "env"), "w").write(
        "".join(f"export {k}={shlex.quote(os.environ[k])}\n" for k in keep if k in os.environ)
    )
    console = a.console or os.path.join(out, "console.txt")
    qemu = [
        "qemu-system-x86_64",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-smp",
        str(SMP),
        "-m",
        str(a.mem),
        "-kernel",
        kernel(),
        "-initrd",
        initramfs(),
        "-append",
        "console=ttyS0 loglevel=4 printk.time=1 panic=1 systemd.unified_cgroup_hierarchy=1",
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-virtfs",
        f"local,path={out},mount_tag=vmout,security_model=none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{console}",
        "-no-reboot",
        "-nic",
        "none",
    ]
    qemu += numa_args(a.mem, a.numa, SMP)
    if not shutil.which("qemu-system-x86_64"):
        sh("apt-get", "install", "-y", "-q", "qemu-system-x86")
    try:
        subprocess.run(qemu, timeout=a.timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"guest: no result within {a.timeout} s (console: {console})")
        return 124
    if os.path.exists(os.path.join(out, "stdout")):
        sys.stdout.write(open(os.path.join(out, "stdout"), errors="replace").read())
    rc_path = os.path.join(out, "rc")
    if not os.path.exists(rc_path):
        print(f"guest: the command did not finish (console: {console})")
        return 125
    return int(open(rc_path).read().strip() or 1)


if __name__ == "__main__":
    sys.exit(main())
