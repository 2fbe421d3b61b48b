"""HTTPS: unmodified b24pysdk (which always builds https:// URLs) against `b24emu serve --tls`."""

from __future__ import annotations

import pytest
import requests
from b24pysdk import BitrixWebhook, Client

from tests.test_server import Server


def test_b24pysdk_over_https_unmodified(tmp_path, monkeypatch):
    tls_dir = tmp_path / "tls"
    server = Server(tmp_path / "tls.sqlite3", "fixtures/default.json", tls_dir=tls_dir)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_dir / "ca.pem"))
        client = Client(BitrixWebhook(domain=f"127.0.0.1:{server.port}",
                                      webhook_token="1/devtoken"))
        notification_id = client.im.notify.personal.add(
            user_id=2, message="over TLS", tag="tls",
            attach={"BLOCKS": [{"MESSAGE": "secure"}]}).result
        assert isinstance(notification_id, int) and not isinstance(notification_id, bool)
        again = client.im.notify.personal.add(user_id=2, message="again", tag="tls").result
        assert again > notification_id
        with pytest.raises(requests.exceptions.ConnectionError):  # no plain HTTP on this port
            requests.get(f"http://127.0.0.1:{server.port}/_emulator/health", timeout=5)
    finally:
        output = server.stop()
    assert f"https://127.0.0.1:{server.port}/rest/1/devtoken/" in output
    assert f"REQUESTS_CA_BUNDLE={tls_dir / 'ca.pem'}" in output


def test_certificates_are_kept_between_runs(tmp_path):
    from b24emu.tls import ensure_certificates

    first = ensure_certificates(tmp_path)
    ca_before = first.ca.read_bytes()
    second = ensure_certificates(tmp_path)
    assert second.ca.read_bytes() == ca_before
    renamed = ensure_certificates(tmp_path, ("emu.test",))
    assert renamed.ca.read_bytes() != ca_before  # new names: a new certificate


def test_b24pysdk_burst_of_60_retries_through_the_rate_limit(tmp_path, monkeypatch):
    tls_dir = tmp_path / "tls"
    server = Server(tmp_path / "burst.sqlite3", "fixtures/default.json",
                    # 30 surplus calls need 15 s of drain to fit: far longer than the burst takes,
                    # so the SDK meets 503s even on a slow machine.
                    {"B24EMU_LOG_LEVEL": "INFO", "B24EMU_RATE_CAPACITY": "30"}, tls_dir=tls_dir)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_dir / "ca.pem"))
        client = Client(BitrixWebhook(domain=f"127.0.0.1:{server.port}",
                                      webhook_token="1/devtoken"))
        ids = [client.im.notify.personal.add(user_id=2, message=f"burst {i}").result
               for i in range(60)]
    finally:
        output = server.stop()
    assert len(set(ids)) == 60 and ids == sorted(ids)
    # The SDK met 503s once the bucket was full and retried them (it retries only on 503).
    assert output.count("=> 503 QUERY_LIMIT_EXCEEDED") >= 1
    assert output.count("im.notify.personal.add => 200") == 60
