"""Load a module of the guest's own kernel package inside tests/lab/vmguest.py's guest.

The guest sees the host's files, among them the Debian kernel package vmguest.py unpacked into
its cache (`CACHE/root/lib/modules/<release>/`); its release is the guest kernel's, so its
modules load there (finit_module(2), no kmod needed). Only ever called inside the guest.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os

from lab.vmguest import CACHE

SYS_FINIT_MODULE = 313  # x86_64


def module_path(name: str) -> str | None:
    root = os.path.join(CACHE, "root", "lib", "modules", os.uname().release, "kernel")
    found = glob.glob(os.path.join(root, "**", f"{name}.ko"), recursive=True)
    return found[0] if found else None


def load_module(name: str, params: str = "") -> None:
    """Insert `name` (and nothing else: load its dependencies first) with `params`."""
    path = module_path(name)
    if path is None:
        raise FileNotFoundError(f"{name}.ko is not in the guest kernel's package under {CACHE}")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syscall(SYS_FINIT_MODULE, fd, params.encode(), 0) != 0:
            err = ctypes.get_errno()
            if err != errno.EEXIST:
                raise OSError(err, f"finit_module({path}, {params!r})")
    finally:
        os.close(fd)
