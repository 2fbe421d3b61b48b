"""The pytest plugin (entry point pytest11): run as a user's suite would, with pytester."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests
from fast_bitrix24 import Bitrix

from tests.conftest import ROOT

pytest_plugins = ["pytester"]

def readme_example() -> str:
    """The complete example of the README's pytest plugin section, taken from the README."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("A complete example (it runs as is with `pytest`")
    return re.search(r"```python\n(.*?)```", readme[start:], re.DOTALL).group(1)


def test_the_readme_example_passes_in_a_fresh_process(pytester):
    example = readme_example()
    assert "def test_build_notification_is_stored(b24emu):" in example
    pytester.makepyfile(test_example=example)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_plugin_is_registered_through_the_entry_point(pytester):
    pytester.makepyfile(test_fixtures="def test_nothing(): pass")
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    listing = result.stdout.str()
    assert "fixtures defined from b24emu.testing.plugin" in listing
    assert "A fresh in-process emulator for this test" in listing
    assert "b24emu_shared -- " in listing
    markers = pytester.runpytest_subprocess("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.b24emu(rate_limit=*"])


def test_each_test_gets_a_fresh_emulator_and_shared_is_reset(pytester):
    pytester.makepyfile(test_isolation='''
        import requests

        seen = []


        def send(emu):
            return requests.post(emu.webhook_url + "im.notify.personal.add",
                                 json={"USER_ID": 2, "MESSAGE": "hi"}).json()["result"]


        def test_one(b24emu):
            seen.append(b24emu.url)
            assert send(b24emu) == 1


        def test_two(b24emu):
            assert b24emu.url not in seen
            assert b24emu.notifications() == [] and send(b24emu) == 1


        def test_shared_one(b24emu_shared):
            seen.append(b24emu_shared.url)
            send(b24emu_shared)
            b24emu_shared.fault("*", "ACCESS_DENIED")
            b24emu_shared.freeze_clock()


        def test_shared_two(b24emu_shared):
            assert b24emu_shared.url == seen[-1]
            assert b24emu_shared.notifications() == []
            assert b24emu_shared.client.faults() == []
            assert b24emu_shared.client.clock()["frozen"] is False
            assert send(b24emu_shared) >= 1
    ''')
    pytester.runpytest("-q", "-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_ini_options_and_an_own_fixture(pytester):
    portal = json.loads((ROOT / "fixtures" / "default.json").read_text())
    portal["users"].append({"id": 7, "name": "Gina", "last_name": "Guest"})
    portal["webhooks"] = [{"user_id": 7, "code": "ginahook", "scopes": ["im"]}]
    portal["apps"] = []
    pytester.makefile(".json", portal=json.dumps(portal))
    pytester.makeini('''
        [pytest]
        b24emu_fixtures = portal.json
        b24emu_rate_limit = standard
        b24emu_clock = frozen
    ''')
    pytester.makepyfile(test_ini='''
        import requests


        def test_own_portal(b24emu):
            assert b24emu.webhook_url.endswith("/rest/7/ginahook/")
            assert b24emu.oauth_token is None
            assert b24emu.client.clock()["frozen"] is True
            codes = [requests.post(b24emu.webhook_url + "im.notify.personal.add",
                                   json={"USER_ID": 1, "MESSAGE": "x"}).status_code
                     for _ in range(51)]
            assert codes == [200] * 50 + [503]
            [note] = b24emu.notifications(limit=1)
            assert note["sender_id"] == 7
    ''')
    pytester.runpytest("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_an_unknown_marker_option_is_a_clear_error(pytester):
    pytester.makepyfile(test_typo='''
        import pytest


        @pytest.mark.b24emu(rate_limt="off")
        def test_typo(b24emu):
            pass
    ''')
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*@pytest.mark.b24emu*rate_limt*"])


def test_fast_bitrix24_against_the_fixture(b24emu):
    client = Bitrix(b24emu.webhook_url, verbose=False)
    first = client.call("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "one"}, raw=True)
    assert isinstance(first["result"], int)
    ids = client.call("im.notify.personal.add",
                      [{"USER_ID": 2, "MESSAGE": f"list {i}", "TAG": f"t{i % 2}"}
                       for i in range(4)])
    assert len(ids) == 4
    # TAG replacement leaves the last of each tag, plus the untagged first one.
    assert [n["message"] for n in b24emu.notifications(recipient=2)] == [
        "list 3", "list 2", "one"]
    assert {entry["method"] for entry in b24emu.journal()} >= {"im.notify.personal.add"}


def test_fast_bitrix24_retries_an_injected_503(b24emu):
    b24emu.fault("im.notify.personal.add", "QUERY_LIMIT_EXCEEDED", times=2)
    client = Bitrix(b24emu.webhook_url, verbose=False)
    reply = client.call("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "late"}, raw=True)
    assert isinstance(reply["result"], int)
    assert [n["message"] for n in b24emu.notifications()] == ["late"]
    assert [e["status"] for e in b24emu.journal(method="im.notify.personal.add")] == [
        200, 503, 503]


def test_the_fixture_object_outside_pytest(tmp_path):
    from b24emu.testing.server import RunningEmulator

    with RunningEmulator.start(db=tmp_path / "x.sqlite3") as emu:
        assert emu.webhook_url == f"{emu.url}/rest/1/devtoken/"
        assert emu.oauth_token == "devaccesstoken"
        assert requests.get(emu.url + "/_emulator/health").json()["status"] == "ready"
        url = emu.url
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_emulator/health", timeout=2)


def test_packaged_default_portal_is_the_repositorys():
    packaged = ROOT / "app" / "testing" / "default.json"
    assert json.loads(packaged.read_text()) == json.loads(
        (ROOT / "fixtures" / "default.json").read_text())


def test_loading_the_plugin_does_not_start_or_import_the_emulator():
    code = ("import sys, b24emu.testing.plugin; print(sorted(m for m in ('flask', 'requests',"
            " 'sqlite_utils', 'marshmallow', 'b24emu.testing.server', 'b24emu.testing.client',"
            " 'b24emu.store') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
