"""File-descriptor and directory chores of the fork server, each never raising where a job's
leftovers could make it."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

_REMOVE_PASSES = 8
"""How many levels of directories a job made unreadable a job's directory is cleared of."""


def anonymous_file(name: str) -> int:
    if hasattr(os, "memfd_create"):
        return os.memfd_create(f"stepline-{name}", os.MFD_CLOEXEC)
    import tempfile

    fd, path = tempfile.mkstemp(prefix=f"stepline-{name}-")
    os.unlink(path)
    return fd


def read_file(fd: int, cap: int | None) -> tuple[bytes, int]:
    """The first `cap` bytes of a file (all if None) and how many bytes were left out."""
    size = os.fstat(fd).st_size
    wanted = size if cap is None else min(size, cap)
    chunks: list[bytes] = []
    offset = 0
    while offset < wanted:
        chunk = os.pread(fd, wanted - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks), size - offset


def drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def close_all_but(keep: tuple[int, ...]) -> None:
    low = 0
    for fd in sorted(keep):
        # Guarded: closerange(n, n) would close every descriptor from n up on Python 3.11.
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def remove_tree(path: str) -> None:
    """Removes a job's directory and whatever the job left in it (or a file); never raises."""
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except NotADirectoryError:
        with contextlib.suppress(OSError):
            os.unlink(path)  # a file or a link (never followed)
        return
    except OSError:
        pass
    import shutil

    try:
        # Each pass gives back the rights the job took away on one more level of directories.
        for _ in range(_REMOVE_PASSES):
            shutil.rmtree(path, onerror=_give_back_rights)
            if not os.path.lexists(path):
                return
    except Exception as exc:  # e.g. directories nested past the recursion limit
        sys.stderr.write(f"sandbox server: cannot remove {path}: {exc!r}\n")
        return
    sys.stderr.write(f"sandbox server: cannot remove all of {path}\n")


def _give_back_rights(function: Any, path: str, _exc_info: Any) -> None:
    """`shutil.rmtree`'s error handler: the job made a directory unreadable or unwritable.

    Gives its owner the rights back through an O_PATH descriptor opened without following a
    link, so that a job cannot turn this onto a file elsewhere. Then the next pass of
    `remove_tree` goes further.
    """
    if function in (os.unlink, os.rmdir, os.remove):
        path = os.path.dirname(path)  # removing an entry needs rights on its directory
    flags = getattr(os, "O_PATH", 0) | os.O_DIRECTORY | os.O_NOFOLLOW
    if not flags & getattr(os, "O_PATH", 0):
        return
    with contextlib.suppress(OSError):
        fd = os.open(path, flags)
        try:
            os.chmod(f"/proc/self/fd/{fd}", 0o700)
        finally:
            os.close(fd)
