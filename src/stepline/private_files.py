"""Files and folders only stepline's own user can read: 0600 and 0700, whatever the umask.

The database holds every organization's runs and key hashes, the credentials file an admin
key: on a shared machine (or to a code step running as another user) they must not be
readable. `mkdir`/`open` modes pass through the umask, which may take bits away but also
leave group and other bits in (umask 0o000), so every folder and file created here is
chmod'ed to its exact mode, and existing ones stepline owns are tightened (logged).

Folders the user pointed stepline at and that exist already (a database's folder given in
`STEPLINE_DATABASE_URL`) are left alone; `STEPLINE_HOME` itself is stepline's and is
tightened to 0700.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_GROUP_AND_OTHER = 0o077


def make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents, each 0700; existing folders are not touched."""
    missing: list[Path] = []
    folder = path
    while not os.path.lexists(folder):
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(PRIVATE_DIR)
        except FileExistsError:
            continue  # made by another process at the same moment, which sets its mode
        os.chmod(folder, PRIVATE_DIR)


def private_home(home: Path) -> None:
    """Create `STEPLINE_HOME` 0700, or tighten an existing one to 0700."""
    make_private_dirs(home)
    tighten(home)


def create_private_file(path: Path) -> bool:
    """Create `path` empty and 0600 if it is missing (True), else tighten it (False).

    O_EXCL: never opens (and so never chmods through) a file that appears meanwhile.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        tighten(path)
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return True


def tighten(path: Path) -> None:
    """Take group and other permissions off `path` if it exists, saying so in the log.

    A file an older stepline created 0644 (or a home made with the umask's 0755) becomes
    0600 (0700). Failing to (someone else's file) is logged, not raised: stepline still
    works, and the warning says what to fix.
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if not mode & _GROUP_AND_OTHER:
        return
    tight = mode & ~_GROUP_AND_OTHER
    try:
        os.chmod(path, tight)
    except OSError as exc:
        log.warning(
            "%s is readable by other users (mode %04o) and could not be made private: %s",
            path,
            mode,
            exc,
        )
        return
    log.warning(
        "%s was readable by other users (mode %04o): changed to %04o, its owner's only",
        path,
        mode,
        tight,
    )
