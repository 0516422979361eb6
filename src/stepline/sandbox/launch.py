"""How the fork server is started: inside bubblewrap (namespaces), or as a plain process.

With `STEPLINE_CODE_ISOLATION=namespaces` (the default) the server runs under bubblewrap
with a user namespace of its own (mapped to an unprivileged id: `nobody` when stepline runs
as root, stepline's own user otherwise, which is the most an unprivileged user namespace
can map), a PID namespace, no network, and a mount view of the interpreter and the
standard library (read-only), the server's own code (read-only), a few files of /etc that
the C library reads, and empty in-memory /tmp and /dev. Nothing of `STEPLINE_HOME`, the
database, the credentials or the rest of the server's files is in that view. Each job then
gets namespaces of its own inside (see `runtime.namespaces`).

As root, bubblewrap runs as `nobody`, who may not be able to reach the interpreter (pyenv
installs under /root, which is 0700): the paths it needs are first bound, read-only, onto a
staging directory `nobody` can traverse, in a mount namespace of bubblewrap's own
(util-linux `unshare`, `mount` and `setpriv` do this; the host's mounts are not touched).

With `STEPLINE_CODE_ISOLATION=process` the server runs directly, as before namespaces: a
separate process per job with its limits, scrubbed environment, and as root the `nobody`
user. That is weaker (the job sees the server's files as its user may, the network, and
other processes), and is only ever used when the operator says so.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from stepline.sandbox.runtime.protocol import ServerOptions
from stepline.sandbox.runtime.relay import EGRESS_DIR
from stepline.settings import Settings

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
_MOUNTED_CODE = "/opt/stepline"
"""Where the server's code (`runtime/`) appears inside the sandbox."""
_BOOT = "import sys; sys.path.insert(0, {path!r}); from runtime.server import main; main()"
_SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf")
_TOP_LEVEL_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ISOLATION_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) on a Linux kernel with "
    "user namespaces enabled, or set STEPLINE_CODE_ISOLATION=process to run code steps "
    "with process isolation only (weaker: they can read what the server's user can, and "
    "reach the network)"
)


@dataclass
class ZygoteCommand:
    """The command line, environment and directory of one fork server."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    isolated: bool
    """Inside bubblewrap (namespaces), rather than a plain process."""

    def unavailable_message(self, said: str) -> str:
        return f"code steps cannot be isolated here ({said}): {ISOLATION_HINT}"


def isolation_problem(settings: Settings) -> str | None:
    """Why code steps cannot run with the configured isolation, or None if nothing is known
    to stop them (starting the sandbox is the final test)."""
    if settings.code_isolation == "process":
        return None
    if not sys.platform.startswith("linux"):
        return f"code steps need Linux namespaces, not available on {sys.platform}: " + (
            "set STEPLINE_CODE_ISOLATION=process to run them with process isolation only"
        )
    missing = [tool for tool in _tools_needed() if shutil.which(tool) is None]
    if missing:
        return f"code steps cannot be isolated here ({', '.join(missing)} not found): " + (
            ISOLATION_HINT
        )
    return None


def process_isolation_warning() -> str:
    return (
        "STEPLINE_CODE_ISOLATION=process: code steps run in separate, limited processes "
        "but without namespaces; they can read whatever this server's user (or `nobody`) "
        "can, see other processes and reach the network. Use it only for trusted code."
    )


def zygote_command(
    settings: Settings, workdir: str, egress_dir: str | None = None
) -> ZygoteCommand:
    """The command that starts a fork server for `settings` (`workdir`: its private
    directory, used by process isolation for the jobs' directories; `egress_dir`: where the
    egress proxy's socket is, when the operator allows some network)."""
    if settings.code_isolation == "process":
        options = ServerOptions(namespaces=False)
        argv = [sys.executable, "-I", "-c", _boot(RUNTIME_DIR.parent), options.to_json()]
        env = {**_base_env(), "HOME": workdir, "PATH": os.environ.get("PATH", os.defpath)}
        return ZygoteCommand(argv, env, workdir, isolated=False)
    options = ServerOptions(
        namespaces=True,
        tmp_mb=settings.code_tmp_mb,
        max_processes=settings.code_max_processes,
        egress=egress_dir is not None,
    )
    interpreter = _interpreter()
    binds = _read_only_binds(interpreter)
    if egress_dir is not None:
        binds += ["--ro-bind", egress_dir, EGRESS_DIR]
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix, binds = _staged_as_nobody(binds, workdir)
    argv = [
        *prefix,
        "bwrap",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--uid",
        "0",
        "--gid",
        "0",
        "--hostname",
        "stepline-sandbox",
        "--die-with-parent",
        "--new-session",
        # Every capability, in the sandbox's own user namespace only: the server needs them
        # to give each job its namespaces; each job drops them all.
        "--cap-add",
        "ALL",
        *_top_level_links(),
        *binds,
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--remount-ro",
        "/",
        "--remount-ro",
        "/dev",
        "--chdir",
        "/tmp",
        "--clearenv",
        *_setenv({**_base_env(), "HOME": "/tmp", "PATH": _SANDBOX_PATH}),
        "--",
        interpreter,
        "-I",
        "-c",
        _boot(Path(_MOUNTED_CODE)),
        options.to_json(),
    ]
    env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}
    return ZygoteCommand(argv, env, "/", isolated=True)


def _tools_needed() -> list[str]:
    return ["bwrap", "unshare", "setpriv", "mount"] if os.geteuid() == 0 else ["bwrap"]


def _boot(code_dir: Path) -> str:
    return _BOOT.format(path=str(code_dir))


def _base_env() -> dict[str, str]:
    return {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _setenv(env: dict[str, str]) -> list[str]:
    return [arg for name, value in env.items() for arg in ("--setenv", name, value)]


def _interpreter() -> str:
    """The real interpreter binary (a virtualenv's python links to it; the sandbox gets the
    interpreter and standard library, never the virtualenv's packages)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _read_only_binds(interpreter: str) -> list[str]:
    """`--ro-bind SRC DEST` for /usr, the interpreter's prefix, the server's code and the
    few files of /etc that the dynamic loader and the C library read."""
    pairs: list[tuple[str, str]] = [("/usr", "/usr")]
    for path in {os.path.realpath(sys.base_prefix), os.path.dirname(os.path.dirname(interpreter))}:
        if not _under(path, "/usr"):
            pairs.append((path, path))
    stdlib = os.path.realpath(sysconfig.get_path("stdlib", vars={"base": sys.base_prefix}))
    if not any(_under(stdlib, dest) for _, dest in pairs):
        pairs.append((stdlib, stdlib))
    pairs.append((str(RUNTIME_DIR), f"{_MOUNTED_CODE}/runtime"))
    args = [arg for source, dest in pairs for arg in ("--ro-bind", source, dest)]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def _top_level_links() -> list[str]:
    """/bin, /lib... as on the host: links into /usr (merged /usr), or bound read-only."""
    args: list[str] = []
    for path in _TOP_LEVEL_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _staged_as_nobody(binds: list[str], workdir: str) -> tuple[list[str], list[str]]:
    """Runs bubblewrap as `nobody`, its sources first bound onto a staging directory.

    Returns the command prefix that binds and changes user, and the bind arguments
    rewritten to the staged paths.
    """
    uid, gid = _nobody()
    stage = os.path.join(workdir, "stage")
    os.makedirs(stage, 0o711, exist_ok=True)
    os.chmod(workdir, 0o711)
    os.chmod(stage, 0o711)  # traversable, not listable, by `nobody`
    mounts: list[str] = []
    staged: list[str] = []
    index = 0
    i = 0
    while i < len(binds):
        option, source, dest = binds[i], binds[i + 1], binds[i + 2]
        i += 3
        if option == "--ro-bind" and source != "/usr":
            target = os.path.join(stage, str(index))
            index += 1
            if os.path.isdir(source):
                os.makedirs(target, 0o755, exist_ok=True)
            else:
                Path(target).touch(0o644)
            mounts += [source, target]
            source = target
        staged += [option, source, dest]
    script = (
        'uid=$1 gid=$2; shift 2; while [ "$1" != -- ]; do mount --bind -o ro "$1" "$2"; '
        'shift 2; done; shift; exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"'
    )
    prefix = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-euc", script]
    prefix += ["sh", str(uid), str(gid), *mounts, "--"]
    return prefix, staged


def _nobody() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
