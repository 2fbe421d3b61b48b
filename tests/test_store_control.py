"""The control plane's storage: shared clock, faults, journal and its cap, portals by host."""

from __future__ import annotations

import random

import pytest
from b24emu import create_app
from b24emu.store.control import ClockState, ControlStore, JournalFilter
from b24emu.store.db import Database

from tests.conftest import T0


def test_clock_state_is_shared_through_the_database(emulator, app, settings, clock):
    emulator.control.set_clock(ClockState(frozen_at=T0 + 3600))
    other = create_app(settings, clock=clock).extensions["b24emu"]  # a second worker
    other.sync()
    assert other.clock.now() == T0 + 3600 and other.clock.frozen
    clock.advance(10)  # frozen: the base clock moving changes nothing
    assert other.clock.now() == T0 + 3600
    emulator.control.set_clock(ClockState(offset=-60))
    other.sync()
    assert other.clock.now() == clock.now() - 60 and not other.clock.frozen


def test_rest_envelope_reads_the_shifted_clock(emulator, rest):
    emulator.control.set_clock(ClockState(frozen_at=T0 + 86400))
    body = rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x"}).get_json()
    assert body["time"]["start"] == T0 + 86400
    assert body["time"]["date_start"] == "2026-01-02T00:00:00+00:00"


def arm(emulator, **overrides):
    fault = {"method": "im.notify.personal.add", "error": "QUERY_LIMIT_EXCEEDED",
             "description": "Too many requests", "status": 503, "latency": 0.0, "times": None,
             "probability": 1.0, "now": T0}
    return emulator.control.add_fault("default", **{**fault, **overrides})


def test_a_fault_for_the_next_n_calls_then_normal_answers(emulator, rest):
    arm(emulator, times=2)
    statuses = [rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x"})
                for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].get_json() == {"error": "QUERY_LIMIT_EXCEEDED",
                                      "error_description": "Too many requests"}
    assert emulator.control.faults("default") == []


def test_a_fault_leaves_other_methods_and_portals_alone(emulator, rest):
    arm(emulator)
    assert rest.webhook("im.notify.system.add", {"USER_ID": 2, "MESSAGE": "x"}).status_code == 200
    assert emulator.control.take_fault("other", "im.notify.personal.add") is None
    assert rest.webhook("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x"}).status_code == 503


def test_a_fault_fires_after_authentication(emulator, rest):
    arm(emulator, method="*", error="expired_token", description="expired", status=401)
    response = rest.webhook("im.notify.personal.add", {"USER_ID": 2}, code="wrong")
    assert response.get_json()["error"] == "INVALID_CREDENTIALS"


def test_probability_draws_decide_and_unfired_draws_cost_nothing(emulator):
    fault = arm(emulator, probability=0.5, times=1)
    rng = random.Random(7)
    take = emulator.control.take_fault
    draws = [take("default", "im.notify.personal.add", rng) for _ in range(20)]
    fired = [draw for draw in draws if draw is not None]
    assert len(fired) == 1 and fired[0]["id"] == fault["id"]


def test_batch_commands_each_count_as_a_call(emulator, rest):
    arm(emulator, times=1)
    body = rest.webhook("batch", {"cmd": {
        "a": "im.notify.personal.add?USER_ID=2&MESSAGE=one",
        "b": "im.notify.personal.add?USER_ID=2&MESSAGE=two"}}).get_json()["result"]
    assert body["result_error"]["a"]["error"] == "QUERY_LIMIT_EXCEEDED"
    assert isinstance(body["result"]["b"], int)


def test_every_rest_call_is_journaled_with_secrets_masked(emulator, client):
    client.post("/rest/1/devtoken/im.notify.personal.add.json", json={"USER_ID": 2})
    client.post("/rest/im.notify.personal.add.json",
                json={"USER_ID": 2, "MESSAGE": "hi", "auth": "devaccesstoken"})
    newest, oldest = emulator.control.journal("default")
    assert oldest["path"] == "/rest/1/dev***/im.notify.personal.add.json"
    assert (oldest["status"], oldest["error"], oldest["user_id"]) == (400, "MESSAGE_EMPTY", 1)
    assert newest["params"] == {"USER_ID": 2, "MESSAGE": "hi", "auth": "dev***"}
    assert (newest["auth_type"], newest["credential"]) == ("oauth", "local.emulator.app")
    stored = emulator.notifications.for_recipient("default", 2)[0]
    assert stored["request_id"] == newest["request_id"]
    assert emulator.control.journal_count("default", JournalFilter(status=400)) == 1


def test_the_journal_keeps_at_most_its_cap(settings, clock):
    app = create_app(settings.with_overrides(journal_max=5), clock=clock)
    client = app.test_client()
    for _ in range(12):
        client.get("/rest/1/devtoken/server.time.json")
    control = app.extensions["b24emu"].control
    assert control.journal_count("default") == 5


def test_the_journal_cap_holds_across_portals(emulator):
    store = ControlStore(emulator.database, journal_max=100)
    for number in range(1, 700):
        store.record({"portal": "ab"[number % 2], "method": "m", "status": 200})
    assert store.journal_count("a") <= 100 + 63 and store.journal_count("b") <= 100 + 63


def test_journal_size_zero_turns_the_journal_off(emulator):
    store = ControlStore(emulator.database, journal_max=0)
    assert store.record({"portal": "default", "method": "m"}) == 0
    assert store.journal_count("default") == 0


@pytest.mark.parametrize("host, portal", [
    ("127.0.0.1:8080", "default"), ("localhost", "default"), ("[::1]:8080", "default"),
    ("ACME.localhost:9000", "acme"), ("unknown.example", "default"), ("", "default")])
def test_the_host_name_selects_the_portal(emulator, host, portal):
    emulator.database.db["portals"].insert({"name": "acme", "domain": "acme.localhost"})
    assert emulator.portal_for_host(host) == portal


def test_reset_removes_a_portals_data_only(emulator, rest):
    rest.result("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "x"})
    arm(emulator)
    removed = emulator.control.reset("default", everything=False)
    assert removed == {"notifications": 1, "journal": 1, "event_deliveries": 0,
                       "event_offline": 0}
    assert len(emulator.control.faults("default")) == 1
    emulator.control.reset("default", everything=True)
    assert emulator.control.faults("default") == [] and not emulator.control.snapshot().faults_armed


def test_the_method_list_is_the_registry(client, emulator):
    items = client.get("/_emulator/methods").get_json()["items"]
    by_name = {item["name"]: item for item in items}
    assert set(by_name) == {entry.name for entry in emulator.registry.all()}
    assert by_name["im.notify.personal.add"]["scope"] == "im"
    assert "ATTACH" in by_name["im.notify.personal.add"]["params"]
    assert by_name["im.notify.get"]["private"] is True
    assert by_name["batch"]["batchable"] is False


def test_the_webhook_code_is_masked_where_it_stands_in_the_path(emulator, client):
    """A code that also appears elsewhere in the path ("rest") is masked in its own segment; a
    code shorter than 8 characters shows none of them."""
    emulator.database.db["webhooks"].insert(
        {"portal": "default", "id": 99, "user_id": 1, "code": "rest", "scopes": '["im"]'})
    client.post("/rest/1/rest/im.notify.personal.add.json", json={"USER_ID": 2, "MESSAGE": "x"})
    path = emulator.control.journal("default")[0]["path"]
    assert path == "/rest/1/***/im.notify.personal.add.json"


def _reads_of_control(database, action) -> list[str]:
    """The SQL statements `action` ran on this thread's connection."""
    statements: list[str] = []
    conn = database.db.conn
    conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    return [sql for sql in statements if "FROM control" in sql]


def test_the_control_state_is_read_again_only_after_a_process_changed_it(emulator, settings,
                                                                           clock):
    other = create_app(settings, clock=clock).extensions["b24emu"]  # a second worker
    other.sync()
    assert _reads_of_control(other.database, other.sync) == []  # nothing changed: no SQL
    arm(emulator)  # armed through the first worker: the second one sees it at its next call
    assert _reads_of_control(other.database, other.sync) != []
    assert other.control.snapshot().faults_armed
    emulator.control.set_clock(ClockState(frozen_at=T0 + 60))
    other.sync()
    assert other.clock.now() == T0 + 60
    emulator.control.clear_faults("default")
    assert not other.control.snapshot().faults_armed


def test_a_rest_call_in_another_process_sees_a_fault_armed_before_it(tmp_path):
    """Two processes on one file: the control version is shared through the lock file."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        from b24emu.store.control import ControlStore
        from b24emu.store.db import Database
        database = Database({str(tmp_path / "shared.sqlite3")!r})
        database.migrate()
        control = ControlStore(database)
        before = control.snapshot().faults_armed
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        sys.stdin.readline()  # the parent armed a fault meanwhile
        print(before, control.snapshot().faults_armed)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        from b24emu.store.db import Database

        database = Database(str(tmp_path / "shared.sqlite3"))
        store = ControlStore(database)
        store.add_fault("default", method="*", error="X", description="", status=500,
                        latency=0.0, times=None, probability=1.0, now=T0)
        out, _ = child.communicate("go\n", timeout=60)
    finally:
        child.kill()
    assert out.split() == ["False", "True"]


def test_a_symlinked_path_shares_the_control_version(tmp_path):
    """SQLite opens the real file behind a symlink: a worker that reaches the database through
    one sees a fault armed through the real path (one lock file, one version)."""
    (tmp_path / "real").mkdir()
    real = Database(str(tmp_path / "real" / "emu.sqlite3"))
    real.migrate()
    (tmp_path / "link.sqlite3").symlink_to(tmp_path / "real" / "emu.sqlite3")
    linked = ControlStore(Database(str(tmp_path / "link.sqlite3")))
    assert not linked.snapshot().faults_armed  # read and kept
    ControlStore(real).add_fault("default", method="*", error="X", description="", status=500,
                                 latency=0.0, times=None, probability=1.0, now=T0)
    assert linked.snapshot().faults_armed


def test_a_database_without_a_lock_file_keeps_nothing(tmp_path):
    """A "file:" URI has no lock file and so no version: every read goes to the database, so
    two handles on it never serve each other stale state."""
    uri = f"file:{tmp_path / 'uri.sqlite3'}"
    first, second = Database(uri), Database(uri)
    first.migrate()
    reader = ControlStore(second)
    assert second.control_version() is None and not reader.snapshot().faults_armed
    ControlStore(first).add_fault("default", method="*", error="X", description="", status=500,
                                  latency=0.0, times=None, probability=1.0, now=T0)
    assert reader.snapshot().faults_armed
