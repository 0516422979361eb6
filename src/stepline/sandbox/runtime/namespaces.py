"""Each job's own namespaces, made by the fork server inside its bubblewrap sandbox.

bubblewrap gives the server one user namespace (where it holds every capability, and
nothing outside it), one PID namespace, a read-only view of the interpreter, and no
network. Starting bubblewrap per job would cost more than the job (a new interpreter,
15-20 ms), so the server, already warm, gives each forked child its own namespaces with a
few system calls (Python 3.11 has no `os.unshare`, hence ctypes):

- a PID namespace, the child being its PID 1: it sees and can signal only its own
  processes, and when it ends the kernel kills every process it started, `setsid` or not;
- a mount namespace with a fresh, size-limited /tmp (its working directory and HOME) and
  /dev/shm, and a /proc that shows its own processes; both are freed with it;
- a network namespace with no interface up: no address is reachable, 127.0.0.1 included
  (a job whose node asks for the network gets loopback and a relay to the egress proxy);
- an IPC namespace (System V and POSIX queues of its own);
- last, a user namespace of its own, where it is uid 1000: the process-count limit is then
  counted per job, and it holds capabilities only there, which it then drops.
"""

from __future__ import annotations

import os
from typing import Any

from . import relay

JOB_UID = 1000
"""The job's user and group id inside its own user namespace."""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MS_NOEXEC = 0x8
_MS_RDONLY = 0x1
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_TMP_INODES = 16384


class PidNamespaces:
    """Puts every child the server forks next into a PID namespace of its own."""

    def __init__(self, libc: Any) -> None:
        self.libc = libc
        self.own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)

    def before_fork(self) -> None:
        """The next fork's child is PID 1 of a new namespace.

        unshare(CLONE_NEWPID) refuses while the namespace for children is not this
        process's own, which it no longer is after the last call: setns goes back first.
        """
        _call(self.libc, self.libc.setns(self.own, _CLONE_NEWPID), "setns(pid)")
        _call(self.libc, self.libc.unshare(_CLONE_NEWPID), "unshare(pid)")


def enter_job_namespaces(
    libc: Any, *, tmp_mb: int, max_processes: int, network: bool, egress: bool
) -> None:
    """Gives this (freshly forked) process its own mounts, network, IPC and user.

    `network`: the job may use the egress proxy (its loopback goes up, for the relay);
    `egress`: the proxy's socket is in the sandbox's view, and is hidden unless `network`.
    Raises OSError if any part fails: a job never runs half confined.
    """
    import resource

    flags = _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS
    _call(libc, libc.unshare(flags), "unshare")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    size = f"size={tmp_mb}m,nr_inodes={_TMP_INODES},mode=0700"
    _mount(libc, "tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, size)
    if os.path.isdir("/dev/shm"):
        _mount(libc, "tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, size)
    _mount(libc, "proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    if network:
        relay.bring_loopback_up()
    elif egress:
        _mount(libc, "tmpfs", relay.EGRESS_DIR, "tmpfs", _MS_RDONLY, "size=4k")
    outer_uid, outer_gid = os.getuid(), os.getgid()
    _call(libc, libc.unshare(_CLONE_NEWUSER), "unshare(user)")
    _write("/proc/self/uid_map", f"{JOB_UID} {outer_uid} 1\n")
    _write("/proc/self/setgroups", "deny\n")
    _write("/proc/self/gid_map", f"{JOB_UID} {outer_gid} 1\n")
    # Processes are counted per (user namespace, uid), and at each level above against the
    # limit in force when that namespace was made: set after the namespace exists, the limit
    # counts this job's processes alone, and the level above (every job's and the spares')
    # keeps the server's own, higher limit, so one job cannot starve the others.
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))


def _mount(
    libc: Any, source: str | None, target: str, kind: str | None, flags: int, data: str = ""
) -> None:
    result = libc.mount(
        source.encode() if source else None,
        target.encode(),
        kind.encode() if kind else None,
        flags,
        data.encode() if data else None,
    )
    _call(libc, result, f"mount {target}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _call(libc: Any, result: int, what: str) -> None:
    if result != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
