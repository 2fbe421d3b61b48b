"""`b24emu serve --detach` and `b24emu stop`: the emulator in the background, for CI scripts.

`start()` runs the ordinary `b24emu serve` as a child process in its own session (its output goes
to a log file), writes the child's pid to the pid file and returns once `/_emulator/health`
answers `ready`. When the child exits first, or is not ready within the timeout, it is stopped and
`DetachError` carries the last lines of its log. `stop()` sends SIGTERM to the pid in the pid file
(the server finishes in-flight requests) and waits until the process is gone.

The child gets the settings already read and checked by the parent as B24EMU_* variables, so it
serves exactly what the parent validated.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path

from b24emu.settings import ENV_PREFIX, Settings

DEFAULT_PID_FILE = "b24emu.pid"
DEFAULT_LOG_FILE = "b24emu.log"
DEFAULT_WAIT = 30.0  # seconds to become ready, or to stop
LOG_TAIL = 20  # log lines shown when the server does not get ready
POLL = 0.1  # seconds between health probes while waiting (the server's start is not ours to time)


class DetachError(Exception):
    """The detached server could not be started or stopped (exit code 1)."""


@dataclass(frozen=True)
class Started:
    """A detached server that answered ready."""

    url: str
    pid: int
    pid_file: Path
    log_file: Path


def base_url(settings: Settings) -> str:
    """Where the server answers locally: a wildcard listen address is reached on loopback."""
    host = settings.host
    if host in ("", "0.0.0.0"):  # noqa: S104 (a name for the wildcard, not a bind)
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'https' if settings.tls else 'http'}://{host}:{settings.port}"


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as its B24EMU_* variable (None: left unset)."""
    values = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            values[ENV_PREFIX + field.name.upper()] = str(value)
    return values


def start(settings: Settings, pid_file: str | Path = DEFAULT_PID_FILE,
          log_file: str | Path = DEFAULT_LOG_FILE, wait: float = DEFAULT_WAIT) -> Started:
    """Start `b24emu serve` in the background and wait until it is ready."""
    pid_path, log_path = Path(pid_file).absolute(), Path(log_file).absolute()
    running = read_pid(pid_path)
    if running is not None and alive(running):
        raise DetachError(f"already running: pid {running} (pid file {pid_path}); "
                          "stop it first with `b24emu stop`")
    env = {**os.environ, **settings_env(settings)}
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        pid_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            child = subprocess.Popen(  # noqa: S603 (our own command, no shell)
                [sys.executable, "-m", "b24emu", "serve"], env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pid_path.write_text(f"{child.pid}\n")
    except OSError as error:
        raise DetachError(f"cannot start the server: {error}") from None
    url = base_url(settings)
    ca = Path(settings.tls_dir) / "ca.pem" if settings.tls else None
    deadline = time.monotonic() + wait
    while True:
        code = child.poll()
        if code is not None:
            pid_path.unlink(missing_ok=True)
            raise DetachError(f"the server exited with status {code} before it was ready; "
                              f"last lines of {log_path}:\n{tail(log_path)}")
        if _ready(url, ca):
            return Started(url, child.pid, pid_path, log_path)
        if time.monotonic() >= deadline:
            _terminate(child)
            pid_path.unlink(missing_ok=True)
            raise DetachError(f"the server was not ready within {wait:g} s (stopped pid "
                              f"{child.pid}); "
                              f"last lines of {log_path}:\n{tail(log_path)}")
        time.sleep(POLL)


def _ready(url: str, ca: Path | None) -> bool:
    import requests

    try:
        with requests.Session() as session:
            session.trust_env = False  # an HTTP(S)_PROXY of the CI must not carry the probe
            health = session.get(f"{url}/_emulator/health", timeout=2,
                                 verify=str(ca) if ca else True)
        return health.status_code == 200 and health.json().get("status") == "ready"
    except (requests.RequestException, ValueError, OSError):
        return False


def _terminate(child: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL to the whole session if it does not go within the grace time."""
    child.terminate()
    try:
        child.wait(timeout=DEFAULT_WAIT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def stop(pid_file: str | Path = DEFAULT_PID_FILE, wait: float = DEFAULT_WAIT) -> int:
    """SIGTERM the detached server and wait until it has exited; its pid."""
    pid_path = Path(pid_file).absolute()
    pid = read_pid(pid_path)
    if pid is None:
        raise DetachError(f"no server to stop: {pid_path} does not exist or holds no pid")
    if not alive(pid):
        pid_path.unlink()
        raise DetachError(f"pid {pid} from {pid_path} was not running (removed the pid file); "
                          "see its log for why it ended")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while alive(pid):
        if time.monotonic() >= deadline:
            raise DetachError(f"pid {pid} is still running {wait:g} s after SIGTERM")
        time.sleep(POLL)
    pid_path.unlink(missing_ok=True)
    return pid


def read_pid(path: Path) -> int | None:
    """The pid a pid file holds; None when there is no file or no number in it."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """True while the process runs and is a b24emu (a reused pid is not ours)."""
    try:  # our own child that has exited is reaped here, so it does not linger as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"b24emu" in cmdline.read_bytes()
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = LOG_TAIL) -> str:
    """The last lines of a log file, indented."""
    try:
        with open(path, encoding="utf-8", errors="replace") as log:
            last = deque(log, maxlen=lines)
    except OSError as error:
        return f"  ({error.strerror or error})"
    return "".join(f"  {line}" for line in last).rstrip("\n") or "  (empty)"
