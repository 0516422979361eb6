"""Capabilities, no-new-privileges and the change of user, through prctl and capset.

The fork server hardens itself once (`harden`); each job's process then gives up whatever
its parent kept for setting it up (`drop_everything`, or in process isolation a change to
`nobody`, see `unprivileged_ids`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_NO_NEW_PRIVS = 38
_SECBIT_NOROOT_AND_LOCK = 0x3
"""SECBIT_NOROOT | SECBIT_NOROOT_LOCKED: a root process gains no capabilities by exec."""
_CAP_VERSION_3 = 0x20080522
_CAP_LAST = 63
"""Past the last capability any kernel knows: dropping unknown ones fails harmlessly."""


def load_libc() -> Any:
    """The C library, for prctl, capset and the namespace calls; None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def harden(libc: Any, *, keep_capabilities: bool) -> None:
    """Hides this process from its children and keeps them from gaining privileges.

    Not dumpable: processes without CAP_SYS_PTRACE, even of the same user, can read neither
    its /proc/<pid>/environ nor its memory (children inherit this). No new privileges: no
    child gains any by executing a set-user-ID program. As root, also: root gains no
    capabilities by exec, none can come back through the bounding set, and unless this
    process needs them to make its children `nobody` (`keep_capabilities`) it drops them
    all. Each step fails soft (an older kernel, a container without CAP_SETPCAP): the rest
    still holds. Process isolation only: in namespaces the server needs its capabilities
    (inside its own user namespace) to make each job's namespaces.
    """
    libc.prctl(PR_SET_DUMPABLE, 0)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if os.geteuid() == 0:
        libc.prctl(_PR_SET_SECUREBITS, _SECBIT_NOROOT_AND_LOCK)
        _drop_bounding_set(libc)
        if not keep_capabilities:
            clear_capabilities(libc)


def drop_everything(libc: Any) -> None:
    """Leaves this process no capability, now or by any later exec, and no way to gain one.

    For a job's process in namespaces, which holds every capability of the user namespace
    it was just given (see `namespaces.enter_job_namespaces`). Fails loudly: a job must not
    start with rights it should not have.
    """
    _drop_bounding_set(libc)
    _check(libc, libc.prctl(_PR_SET_SECUREBITS, _SECBIT_NOROOT_AND_LOCK), "securebits")
    clear_capabilities(libc, strict=True)
    _check(libc, libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _drop_bounding_set(libc: Any) -> None:
    for capability in range(_CAP_LAST + 1):
        libc.prctl(_PR_CAPBSET_DROP, capability)


def clear_capabilities(libc: Any, *, strict: bool = False) -> None:
    """Clears the effective, permitted and inheritable capabilities of this process."""
    import ctypes

    header, data = _capset_arguments()
    result = libc.capset(ctypes.byref(header), data)
    if strict:
        _check(libc, result, "capset")


_capset_args: tuple[Any, Any] | None = None


def _capset_arguments() -> tuple[Any, Any]:
    """capset's header and an all-zero data pair, built once (ctypes types are dear to
    define; made in the server, each forked child has them for free)."""
    global _capset_args
    if _capset_args is None:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

        class Data(ctypes.Structure):
            _fields_ = (
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            )

        _capset_args = (Header(_CAP_VERSION_3, 0), (Data * 2)())
    return _capset_args


def prepare(libc: Any) -> None:
    """Does ahead, once, what every job's `drop_everything` would otherwise redo."""
    if libc is not None:
        _capset_arguments()


def _check(libc: Any, result: int, what: str) -> None:
    if result != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unprivileged_ids() -> tuple[int, int] | None:
    """Process isolation run as root: children become `nobody`.

    Only if `nobody` can read Python's own library directories (not so with an interpreter
    installed under /root, say); otherwise children stay root, and stderr says why.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
        ids = (entry.pw_uid, entry.pw_gid)
    except KeyError:
        ids = (65534, 65534)
    return ids if _can_run_as(ids) else None


def become(ids: tuple[int, int]) -> None:
    uid, gid = ids
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _can_run_as(ids: tuple[int, int]) -> bool:
    """Whether a process with these ids can read the interpreter's libraries and reach the
    directories in the cwd."""
    import sysconfig

    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = [sysconfig.get_path(name) for name in names]
    paths = [path for path in paths if os.path.exists(path)]
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            become(ids)
            unreadable = [path for path in paths if not os.access(path, os.R_OK | os.X_OK)]
            if not os.access(os.getcwd(), os.X_OK):  # where its own directory is
                unreadable.append(os.getcwd())
            if unreadable:
                sys.stderr.write(
                    f"sandbox server: user {ids[0]} cannot read {unreadable[0]}, "
                    "so code runs as root\n"
                )
                sys.stderr.flush()
            else:
                status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return status == 0
