"""The 2 requests/second leaky bucket, exactly, on the emulator's clock (spec Part A 10)."""

from __future__ import annotations

import random

import pytest
from b24emu import create_app

LIMITED = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
CALL = "/rest/1/devtoken/im.notify.personal.add?MESSAGE=x"  # 400 USER_ID_EMPTY when admitted


def hit(client, ip: str = "10.0.0.1", path: str = CALL) -> int:
    return client.get(path, environ_base={"REMOTE_ADDR": ip}).status_code


def test_the_51st_request_of_a_burst_is_refused(client):
    statuses = [hit(client) for _ in range(51)]
    assert statuses[:50] == [400] * 50
    assert statuses[50] == 503
    refused = client.get(CALL, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert refused.get_json() == LIMITED and refused.status_code == 503


def test_refused_requests_do_not_fill_the_bucket(client, clock):
    for _ in range(50):
        hit(client)
    assert [hit(client) for _ in range(20)] == [503] * 20
    clock.advance(0.5)  # drains exactly one request
    assert [hit(client), hit(client)] == [400, 503]


def test_steady_state_is_two_per_second(client, clock):
    for _ in range(50):
        hit(client)
    admitted = 0
    for _ in range(80):  # 8 requests per second for 10 seconds (steps exact in binary)
        clock.advance(0.125)
        admitted += hit(client) == 400
    assert admitted == 20


def test_buckets_are_per_client_ip(client):
    for _ in range(50):
        hit(client, "10.0.0.1")
    assert hit(client, "10.0.0.1") == 503
    assert hit(client, "10.0.0.2") == 400


def test_limit_comes_before_method_lookup_and_auth(client):
    for _ in range(50):
        hit(client)
    assert hit(client, path="/rest/no.such.method") == 503
    assert hit(client, path="/rest/1/wrongtoken/im.notify.personal.add") == 503


def test_control_endpoints_are_never_limited(client):
    for _ in range(50):
        hit(client)
    assert hit(client) == 503
    health = client.get("/_emulator/health", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert health.status_code == 200


def test_a_restart_does_not_hand_out_a_fresh_burst(app, settings, clock):
    client = app.test_client()
    for _ in range(50):
        hit(client)
    app.extensions["b24emu"].database.close()
    restarted = create_app(settings, clock=clock).test_client()
    assert hit(restarted) == 503


@pytest.mark.parametrize("overrides, admitted", [
    ({"rate_limit": "enterprise"}, 250),
    ({"rate_limit": "standard", "rate_capacity": 5.0}, 5),
    ({"rate_limit": "off"}, 300),
])
def test_presets_and_overrides(settings, clock, overrides, admitted):
    client = create_app(settings.with_overrides(**overrides), clock=clock).test_client()
    statuses = [hit(client) for _ in range(300)]
    assert statuses.count(400) == admitted


def test_unknown_preset_is_a_clear_error(settings, clock):
    from b24emu.settings import ConfigError

    with pytest.raises(ConfigError, match="unknown rate limit preset 'gold'"):
        create_app(settings.with_overrides(rate_limit="gold"), clock=clock)


def reference_bucket(times: list[float], capacity: float, drain: float) -> list[bool]:
    """An independent model: drain continuously, admit while level + 1 <= capacity."""
    decisions, level, last = [], 0.0, None
    for now in times:
        if last is not None:
            level = max(0.0, level - (now - last) * drain)
        last = now
        ok = level + 1 <= capacity
        level += ok
        decisions.append(ok)
    return decisions


def test_model_check_against_a_reference_bucket(client, clock):
    rng = random.Random(20261122)  # a recorded schedule: bursts, pauses and steady trickles
    times, now = [], clock.now()
    while len(times) < 600:
        # steps exact in binary floating point, so the reference needs no tolerance
        for _ in range(rng.randint(10, 90)):
            now += rng.choice([0.0, 0.0, 0.125, 0.25, 0.5])
            times.append(now)
        now += rng.choice([0.5, 2.0, 8.0, 30.0])
    emulator_says = []
    for when in times:
        clock.set(when)
        emulator_says.append(hit(client, path="/rest/no.such.method") == 404)
    assert emulator_says == reference_bucket(times, 50, 2)
    assert 0 < emulator_says.count(False) < len(times)


def test_drained_buckets_are_deleted_and_a_full_one_is_kept(client, clock, emulator, monkeypatch):
    """One row per client address ever seen would grow without end: a bucket untouched long
    enough to drain from full (25 s for 50 at 2/s) is deleted, which changes no answer."""
    from b24emu.store import limits

    monkeypatch.setattr(limits, "PRUNE_EVERY", 4)
    for index in range(3):
        hit(client, f"10.0.1.{index}")  # at t = 0
    clock.advance(10)
    for _ in range(50):
        hit(client, "10.0.2.1")  # full at t = 10
    clock.advance(15.1)  # t = 25.1: 10.0.1.* drained long ago, 10.0.2.1 still holds 19.8
    for index in range(4):  # one of these four counted calls prunes
        hit(client, f"10.0.3.{index}")
    rows = {row["client_ip"] for row in emulator.database.query(
        "SELECT client_ip FROM rate_buckets")}
    assert rows == {"10.0.2.1", "10.0.3.0", "10.0.3.1", "10.0.3.2", "10.0.3.3"}
    assert [hit(client, "10.0.1.0") for _ in range(51)][-2:] == [400, 503]  # a fresh burst
    assert [hit(client, "10.0.2.1") for _ in range(31)][-2:] == [400, 503]  # 19.8 kept


def test_the_early_check_reads_the_bucket_only_near_its_capacity(tmp_path):
    """`fits` (a call's early check; `admit` decides) answers yes without a read while the
    level this process last counted leaves room; near the capacity it reads the stored bucket,
    so a full one is refused before the call runs. A bucket another worker filled is still
    refused by `admit`."""
    from b24emu.store.db import Database
    from b24emu.store.limits import RateLimit, RateLimiter

    database = Database(str(tmp_path / "bucket.sqlite3"))
    database.migrate()
    limiter = RateLimiter(database, RateLimit(capacity=5, drain=1))
    reads: list[str] = []
    database.db.conn.set_trace_callback(
        lambda sql: reads.append(sql) if sql.startswith("SELECT level") else None)

    def fits() -> bool:
        reads.clear()
        answer = limiter.fits("default", "10.0.0.1", 100.0)
        return answer, len(reads)

    assert fits() == (True, 1)  # nothing counted by this process yet: read
    other = RateLimiter(database, limiter.limit)  # another worker
    assert other.admit("default", "10.0.0.1", 100.0)
    for _ in range(2):
        assert limiter.admit("default", "10.0.0.1", 100.0)
    assert fits() == (True, 0)  # level 3 of 5
    assert limiter.admit("default", "10.0.0.1", 100.0)
    assert fits() == (True, 1)  # level 4: close, read
    assert limiter.admit("default", "10.0.0.1", 100.0)
    assert fits() == (False, 1)  # full
    reads.clear()
    assert other.fits("default", "10.0.0.1", 100.0) and not reads  # it last counted level 1
    assert not other.admit("default", "10.0.0.1", 100.0)  # the deciding check refuses
    reads.clear()
    assert not other.fits("default", "10.0.0.1", 100.0) and reads  # now it knows
