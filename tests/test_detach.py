"""`b24emu serve --detach` and `b24emu stop`, as a CI script runs them (real CLI processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.test_server import free_port


def b24emu(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("B24EMU_")}
    return subprocess.run([sys.executable, "-m", "b24emu", *args], cwd=cwd,
                          env={**clean, "B24EMU_LOG_LEVEL": "WARNING", **env},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def running(pid: int) -> bool:
    """True while the process exists and is not a zombie (an orphan init has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_detach_returns_ready_and_stop_ends_it(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    started = b24emu(tmp_path, "serve", "--detach", "--port", str(port), "--db", "ci.sqlite3")
    assert (started.returncode, started.stderr) == (0, "")
    pid = int((tmp_path / "b24emu.pid").read_text())
    assert started.stdout.splitlines() == [
        f"b24emu: ready at {base} (pid {pid})",
        f"  pid file: {tmp_path / 'b24emu.pid'}   log: {tmp_path / 'b24emu.log'}",
        f"  stop it with: b24emu stop --pid-file {tmp_path / 'b24emu.pid'}"]
    try:
        # Ready means ready: the first request after the command returns is answered.
        sent = b24emu(tmp_path, "notify", "--user", "2", "--text", "from CI",
                      B24EMU_WEBHOOK=f"{base}/rest/1/devtoken/")
        assert (sent.returncode, sent.stderr) == (0, "")
        listed = b24emu(tmp_path, "notifications", "--json", B24EMU_URL=base)
        assert '"message": "from CI"' in listed.stdout

        again = b24emu(tmp_path, "serve", "--detach", "--port", str(free_port()))
        assert (again.returncode, again.stdout) == (1, "")
        assert again.stderr == (f"b24emu: already running: pid {pid} (pid file "
                                f"{tmp_path / 'b24emu.pid'}); stop it first with `b24emu stop`\n")
    finally:
        stopped = b24emu(tmp_path, "stop")
    assert (stopped.returncode, stopped.stderr) == (0, "")
    assert stopped.stdout == f"b24emu: stopped pid {pid}\n"
    assert not running(pid) and not (tmp_path / "b24emu.pid").exists()
    assert "b24emu: serving " in (tmp_path / "b24emu.log").read_text()
    try:
        requests.get(f"{base}/_emulator/health", timeout=2)
        raise AssertionError("still answering after stop")
    except requests.ConnectionError:
        pass


def test_detach_over_https_with_its_own_pid_and_log_files(tmp_path):
    port = free_port()
    started = b24emu(tmp_path, "serve", "--detach", "--port", str(port), "--db", "tls.sqlite3",
                     "--pid-file", "run/emu.pid", "--log-file", "logs/emu.log",
                     B24EMU_TLS="yes", B24EMU_TLS_DIR=str(tmp_path / "tls"))
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith(f"b24emu: ready at https://127.0.0.1:{port} (pid ")
    health = requests.get(f"https://127.0.0.1:{port}/_emulator/health", timeout=5,
                          verify=str(tmp_path / "tls" / "ca.pem"))
    assert health.json()["status"] == "ready"
    assert b24emu(tmp_path, "stop").returncode == 1  # the default pid file is not this one
    stopped = b24emu(tmp_path, "stop", "--pid-file", "run/emu.pid")
    assert stopped.returncode == 0 and not (tmp_path / "run" / "emu.pid").exists()


def test_a_server_that_exits_is_reported_with_its_log(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": [{"id": "one"}]}')
    done = b24emu(tmp_path, "serve", "--detach", "--port", str(free_port()), "--fixtures",
                  str(bad))
    assert (done.returncode, done.stdout) == (1, "")
    lines = done.stderr.splitlines()
    assert lines[0] == ("b24emu: the server exited with status 2 before it was ready; last lines "
                        f"of {tmp_path / 'b24emu.log'}:")
    assert lines[-1].startswith("  b24emu: ") and "users[0].id" in lines[-1]
    assert not (tmp_path / "b24emu.pid").exists()


def test_not_ready_within_the_timeout_is_stopped_and_reported(tmp_path):
    done = b24emu(tmp_path, "serve", "--detach", "--port", str(free_port()),
                  "--wait-timeout", "0")
    assert (done.returncode, done.stdout) == (1, "")
    first = done.stderr.splitlines()[0]
    assert first.startswith("b24emu: the server was not ready within 0 s (stopped pid ")
    assert first.endswith(f"); last lines of {tmp_path / 'b24emu.log'}:")
    pid = int(first.split("stopped pid ")[1].split(")")[0])
    assert not running(pid) and not (tmp_path / "b24emu.pid").exists()


def test_stop_without_a_server(tmp_path):
    done = b24emu(tmp_path, "stop")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"b24emu: no server to stop: {tmp_path / 'b24emu.pid'} does not exist "
                           "or holds no pid\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "b24emu.pid").write_text(f"{gone.pid}\n")
    done = b24emu(tmp_path, "stop")
    assert done.returncode == 1
    assert done.stderr == (f"b24emu: pid {gone.pid} from {tmp_path / 'b24emu.pid'} was not "
                           "running (removed the pid file); see its log for why it ended\n")
    assert not (tmp_path / "b24emu.pid").exists()
