"""The recording proxy under trouble: a busy port, a full disk, a closed file, a full recording,
a redirect naming the webhook, credentials in the upstream URL, a silent client."""

from __future__ import annotations

import errno
import json
import logging
import socket

import pytest
import requests
from b24emu.cli import main
from b24emu.record import proxy as proxy_module
from b24emu.record.proxy import RecordingProxy
from b24emu.record.recording import load
from b24emu.rest.redact import RedactingFilter
from werkzeug.wrappers import Request, Response

from tests.conftest import serving

LOGGERS = ("b24emu.record", "werkzeug", "b24emu")


@pytest.fixture
def portal():
    """A bare portal: answers `{"result": true}`, or a redirect to `state["location"]`."""
    received: list[dict] = []
    state: dict = {"location": None}

    def app(environ, start_response):
        request = Request(environ)
        received.append({"path": request.path,
                         "authorization": request.headers.get("Authorization")})
        if state["location"]:
            response = Response("", 302, {"Location": state["location"]})
        else:
            response = Response(b'{"result": true}', content_type="application/json")
        return response(environ, start_response)

    with serving(app) as server:
        server.received, server.state = received, state
        yield server


def test_a_busy_port_leaves_an_existing_recording_as_it_was(tmp_path, capsys, monkeypatch):
    for name in LOGGERS:  # as in a fresh `b24emu record` process: no filters yet
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    out = tmp_path / "keep.json"
    out.write_text('{"format": "b24emu-recording", "version": 2}\n{"method": "profile"}\n')
    before = out.read_bytes()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        code = main(["record", "--upstream", "http://127.0.0.1:9/rest/1/hookcode99/",
                     "--out", str(out), "--port", str(port)])
    finally:
        busy.close()
    assert code == 2
    assert f"--port {port}" in capsys.readouterr().err
    assert out.read_bytes() == before
    # the record command masks its log without create_app
    for name in LOGGERS:
        assert any(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters), name


class _DiskFull:
    """A file whose next write stores half its bytes, then fails as a full disk does."""

    def __init__(self, real):
        self.real = real

    def write(self, data):
        self.real.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        self.real.flush()

    def fileno(self):
        return self.real.fileno()

    def close(self):
        self.real.close()


def test_a_failed_write_still_answers_the_client_and_leaves_complete_lines(portal, tmp_path,
                                                                          caplog):
    out = tmp_path / "full-disk.json"
    proxy = RecordingProxy(f"{portal.url}/rest/1/hookcode99/", out).start()
    try:
        first = requests.get(f"{proxy.url}/rest/user.current")
        proxy._writer._file = _DiskFull(proxy._writer._file)
        with caplog.at_level(logging.INFO, logger="b24emu.record"):
            second = requests.get(f"{proxy.url}/rest/profile")
            third = requests.get(f"{proxy.url}/rest/server.time")
    finally:
        proxy.stop()
    for answer in (first, second, third):
        assert (answer.status_code, answer.json()) == (200, {"result": True})
    assert len(portal.received) == 3
    text = out.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 2  # the header and one whole call
    assert [call["method"] for call in load(out)["calls"]] == ["user.current"]
    stopped = [r for r in caplog.records if "recording stopped" in r.getMessage()]
    assert len(stopped) == 1 and "No space left on device" in stopped[0].getMessage()


def test_a_closed_recording_still_forwards(portal, tmp_path):
    out = tmp_path / "closed.json"
    proxy = RecordingProxy(f"{portal.url}/rest/1/hookcode99/", out).start()
    try:
        proxy._writer.close()  # as after a failed close: writes raise ValueError
        answer = requests.get(f"{proxy.url}/rest/profile")
    finally:
        proxy.stop()
    assert (answer.status_code, answer.json()) == (200, {"result": True})
    assert load(out)["calls"] == []


def test_a_full_recording_prepares_nothing_for_later_calls(portal, tmp_path, monkeypatch):
    out = tmp_path / "max.json"
    monkeypatch.setattr(proxy_module, "MAX_CALLS", 1)
    built = []
    real_entry = proxy_module.rec.entry
    monkeypatch.setattr(proxy_module.rec, "entry",
                        lambda **call: built.append(call["method"]) or real_entry(**call))
    proxy = RecordingProxy(f"{portal.url}/rest/1/hookcode99/", out).start()
    try:
        answers = [requests.get(f"{proxy.url}/rest/{method}")
                   for method in ("user.current", "profile", "server.time")]
    finally:
        proxy.stop()
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [call["method"] for call in load(out)["calls"]] == ["user.current"]
    assert built == ["user.current"]


def test_neither_a_redirect_nor_the_upstream_url_shows_a_credential(portal, tmp_path):
    out = tmp_path / "redirect.json"
    host = portal.url.removeprefix("http://")
    proxy = RecordingProxy(f"http://admin:basicpass99@{host}/rest/1/hookcode99/", out).start()
    portal.state["location"] = f"{portal.url}/rest/1/hookcode99/profile?x=1"
    try:
        moved = requests.get(f"{proxy.url}/rest/profile", allow_redirects=False)
    finally:
        proxy.stop()
    assert moved.status_code == 302
    assert moved.headers["Location"] == f"{portal.url}/rest/1/hoo***/profile?x=1"
    assert portal.received[0]["authorization"] is not None  # the URL's login was used
    text = out.read_text()
    for secret in ("hookcode99", "basicpass99", "admin:"):
        assert secret not in text
    assert json.loads(text.splitlines()[0])["upstream"] == f"{portal.url}/rest/1/***/"


def test_a_silent_client_is_let_go(portal, tmp_path, monkeypatch):
    monkeypatch.setattr(proxy_module, "HANDLER_TIMEOUT", 0.2)
    proxy = RecordingProxy(f"{portal.url}/rest/1/hookcode99/", tmp_path / "idle.json").start()
    try:
        with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))) as idle:
            idle.settimeout(30)  # far longer than the handler's timeout
            assert idle.recv(1024) == b""  # the proxy closed the silent connection
    finally:
        proxy.stop()


def test_a_full_recording_says_so_once_and_counts_the_rest(portal, tmp_path, monkeypatch,
                                                          caplog):
    """An hour of calls past the limit must not fill the log: one warning when the file is
    full, one count when the recording ends."""
    monkeypatch.setattr(proxy_module, "MAX_CALLS", 1)
    proxy = RecordingProxy(f"{portal.url}/rest/1/hookcode99/", tmp_path / "full.json").start()
    with caplog.at_level(logging.WARNING, logger="b24emu.record"):
        try:
            for _ in range(6):
                assert requests.get(f"{proxy.url}/rest/server.time").status_code == 200
        finally:
            proxy.stop()
    lines = [record.getMessage() for record in caplog.records
             if record.name.startswith("b24emu.record")]
    assert len([line for line in lines if line.startswith("recording full")]) == 1
    assert any(line.startswith("5 calls were forwarded but not recorded") for line in lines)


def test_a_short_password_does_not_mangle_a_redirect(portal, tmp_path):
    """A secret too short to be searched for by value (here a one-character password) is left
    alone elsewhere in the `Location`; the webhook code in its path is still masked."""
    host = portal.url.removeprefix("http://")
    proxy = RecordingProxy(f"http://u:1@{host}/rest/1/hookcode99/", tmp_path / "r.json").start()
    portal.state["location"] = f"{portal.url}/rest/1/hookcode99/profile?x=10"
    try:
        moved = requests.get(f"{proxy.url}/rest/profile", allow_redirects=False)
    finally:
        proxy.stop()
    assert moved.headers["Location"] == f"{portal.url}/rest/1/hoo***/profile?x=10"


def test_at_most_two_calls_are_prepared_for_the_file_at_once_and_every_one_is_recorded(
        portal, tmp_path, monkeypatch):
    """Each entry being built holds a copy of its answer (up to 32 MB): at most
    `MAX_RECORDING_AT_ONCE` are built at the same time; a third call waits its turn (its
    answer with it) and is recorded too, not dropped."""
    import threading

    out = tmp_path / "slots.json"
    inside, most, release = [0], [0], threading.Event()
    lock = threading.Lock()
    real_entry = proxy_module.rec.entry

    def slow_entry(**call):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        release.wait(10)
        try:
            return real_entry(**call)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(proxy_module.rec, "entry", slow_entry)
    proxy = RecordingProxy(f"{portal.url}/rest/1/hookcode99/", out).start()
    answers: list = []
    try:
        callers = [threading.Thread(target=lambda method=method: answers.append(
            requests.get(f"{proxy.url}/rest/{method}", timeout=30).status_code))
            for method in ("user.current", "profile", "server.time")]
        for caller in callers:
            caller.start()
        pause = threading.Event()  # never set: a wait on it is a nap
        for _ in range(1000):
            if inside[0] >= 2:
                break
            pause.wait(0.01)
        pause.wait(0.3)  # time for the third to get in, were it let in
        assert inside[0] == 2
        release.set()
        for caller in callers:
            caller.join(30)
    finally:
        release.set()
        proxy.stop()
    assert answers == [200, 200, 200] and most[0] == proxy_module.MAX_RECORDING_AT_ONCE == 2
    assert sorted(call["method"] for call in load(out)["calls"]) == [
        "profile", "server.time", "user.current"]
