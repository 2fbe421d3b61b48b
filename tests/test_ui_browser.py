"""The inbox page in a real browser: headless Chromium against the real server.

Chromium comes from PATH (chromium, chromium-browser, google-chrome) or B24EMU_CHROMIUM, driven by
Playwright; `make test` installs Debian's package first when none is found (see
tests/prerequisites.py). Nothing is downloaded by the tests. Each test starts `b24emu serve`
(gunicorn, two worker processes on one SQLite file), so live updates cross processes as they do
in use. The first test saves `test-artifacts/inbox.png` for a person to look at.
"""

from __future__ import annotations

import re
import sqlite3
import time

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from tests import prerequisites
from tests.conftest import ROOT
from tests.test_server import Server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
HOOK = "/rest/1/devtoken/"
BOB = 2
WAIT_MS = 15000
UNREAD = re.compile(r"(^|\s)unread(\s|$)")
WAS_UNREAD = re.compile(r"(^|\s)was-unread(\s|$)")

FULL_ATTACH = {
    "COLOR": "#29619b",
    "BLOCKS": [
        {"MESSAGE": "Pipeline [B]green[/B] on [url=https://ci.example/42]run 42[/url]"},
        {"LINK": {"NAME": "Build log", "LINK": "https://ci.example/42/log",
                  "DESC": "1,204 lines"}},
        {"USER": {"NAME": "Anna Admin", "USER_ID": 1}},
        {"GRID": [{"NAME": "Branch", "VALUE": "main", "DISPLAY": "LINE"},
                  {"NAME": "Duration", "VALUE": "3m 12s", "DISPLAY": "LINE"}]},
        {"IMAGE": {"NAME": "coverage.svg", "LINK": "{base}/_emulator/ui/static/bell.svg",
                   "WIDTH": 96, "HEIGHT": 96}},
        {"FILE": {"NAME": "report.pdf", "LINK": "https://ci.example/42/report.pdf",
                  "SIZE": 1536}},
        {"DELIMITER": {"SIZE": 240, "COLOR": "#c0c0c0"}},
    ],
}
INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'


@pytest.fixture(scope="module")
def browser():
    """Chromium, headless; a clear failure (never a skip) when it is not installed."""
    binary = prerequisites.chromium()
    if binary is None:
        pytest.fail(f"Chromium not found: the inbox page tests need it; "
                    f"{prerequisites.CHROMIUM_HINT}", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "ui.sqlite3", "tests/data/portal.json")
    running.db_path = tmp_path / "ui.sqlite3"
    yield running
    running.stop()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    yield page
    context.close()  # closes the event stream before the server stops
    assert errors == []  # no script error, no refused resource, no CSP violation


def notify(server, message: str, user: int = BOB, **params) -> int:
    """Send im.notify.personal.add from user 1 (to Bob by default) over REST; the new id."""
    reply = requests.post(f"{server.base}{HOOK}im.notify.personal.add",
                          json={"USER_ID": user, "MESSAGE": message, **params}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["result"]


def open_inbox(page, server, recipient: int = BOB, mark_read: bool = True):
    page.goto(f"{server.base}/_emulator/ui/?portal=default&recipient={recipient}")
    if not mark_read:
        page.locator("#mark-read").uncheck()
    expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=WAIT_MS)


def item(page, notification_id: int):
    return page.locator(f'.item[data-id="{notification_id}"]')


def is_read(server, notification_id: int) -> bool | None:
    with sqlite3.connect(server.db_path) as conn:
        row = conn.execute("SELECT is_read FROM notifications WHERE id = ?",
                           (notification_id,)).fetchone()
    return None if row is None else bool(row[0])


def wait_until(condition, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


def test_inbox_shows_a_users_notifications_like_a_portal(page, server):
    first = notify(server, "Deploy [I]started[/I]")
    attach = {**FULL_ATTACH, "BLOCKS": [
        {"IMAGE": {**block["IMAGE"], "LINK": block["IMAGE"]["LINK"].format(base=server.base)}}
        if "IMAGE" in block else block for block in FULL_ATTACH["BLOCKS"]]}
    second = notify(server, "Build [B]#42[/B] passed[BR]see [url]https://ci.example/42[/url]",
                    TAG="build-42", SUB_TAG="ci|main", ATTACH=attach)
    newest = notify(server, "Coffee is ready")
    requests.post(f"{server.base}/_emulator/notifications/{first}/read",
                  json={"read": True}, timeout=10).raise_for_status()

    open_inbox(page, server, mark_read=False)
    items = page.locator("#feed > .item")
    expect(items).to_have_count(3)
    assert [int(i) for i in items.evaluate_all("all => all.map(e => e.dataset.id)")] == [
        newest, second, first]
    expect(page.locator("#title")).to_have_text("Notifications of Bob Builder")
    expect(page.locator("#unread-count")).to_have_text("2")
    # unread ones carry the marker, the one read before does not
    for unread in (newest, second):
        expect(item(page, unread)).to_have_class(UNREAD)
        expect(item(page, unread).locator(".new-badge")).to_be_visible()
    expect(item(page, first)).not_to_have_class(UNREAD)
    expect(item(page, first)).not_to_have_class(WAS_UNREAD)
    expect(item(page, first).locator(".new-badge")).to_be_hidden()

    card = item(page, second)
    expect(card.locator(".sender-name")).to_have_text("Anna Admin")
    expect(card.locator(".message strong")).to_have_text("#42")
    expect(card.locator(".message a.bb-url")).to_have_attribute("href", "https://ci.example/42")
    expect(card.locator(".message br")).to_have_count(1)
    expect(card.locator(".chip.tag")).to_have_text("tag: build-42")
    expect(card.locator(".chip.sub-tag")).to_have_text("sub-tag: ci|main")
    expect(card.locator(".chip.tag")).to_have_attribute("title", "MP|d41d8|build-42")
    kinds = card.locator(".attach-block").evaluate_all("all => all.map(e => e.dataset.kind)")
    assert kinds == ["message", "link", "user", "grid", "image", "file", "delimiter"]
    blocks = card.locator(".attach")
    expect(blocks.locator('[data-kind="message"] strong')).to_have_text("green")
    expect(blocks.locator('[data-kind="message"] a')).to_have_attribute(
        "href", "https://ci.example/42")
    expect(blocks.locator('[data-kind="link"] a.attach-link-name')).to_have_text("Build log")
    expect(blocks.locator('[data-kind="link"] a.attach-link-name')).to_have_attribute(
        "href", "https://ci.example/42/log")
    expect(blocks.locator('[data-kind="link"] .attach-link-desc')).to_have_text("1,204 lines")
    expect(blocks.locator('[data-kind="user"] .attach-user-name')).to_have_text("Anna Admin")
    expect(blocks.locator('[data-kind="grid"] .grid-name')).to_have_text(["Branch", "Duration"])
    expect(blocks.locator('[data-kind="grid"] .grid-value')).to_have_text(["main", "3m 12s"])
    image = blocks.locator('[data-kind="image"] img')
    expect(image).to_have_attribute("src", f"{server.base}/_emulator/ui/static/bell.svg")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(blocks.locator('[data-kind="image"] figcaption')).to_have_text("coverage.svg")
    expect(blocks.locator('[data-kind="file"] a')).to_have_text("report.pdf")
    expect(blocks.locator('[data-kind="file"]')).to_contain_text("1.5 KB")
    delimiter = blocks.locator('[data-kind="delimiter"]')
    assert delimiter.evaluate("d => [d.style.width, getComputedStyle(d).backgroundColor]") == [
        "240px", "rgb(192, 192, 192)"]
    assert blocks.evaluate("b => getComputedStyle(b).borderLeftColor") == "rgb(41, 97, 155)"

    card.locator(".request-button").click()
    ARTIFACTS.mkdir(exist_ok=True)
    expect(page.locator("#request .journal-entry")).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(ARTIFACTS / "inbox.png"), full_page=True)


def test_one_click_shows_the_request_that_created_it(page, server):
    created = notify(server, "Invoice [B]17[/B] is due", TAG="invoice-17")
    open_inbox(page, server, mark_read=False)
    item(page, created).locator(".request-button").click()
    details = page.locator("#details")
    expect(details).to_be_visible()
    request = page.locator("#request .journal-entry")
    expect(request).to_contain_text("im.notify.personal.add", timeout=WAIT_MS)
    expect(request.locator(".status")).to_have_text("200")
    expect(request).to_contain_text(re.compile(r"POST /rest/1/\S+/im\.notify\.personal\.add"))
    expect(request.locator(".params")).to_contain_text('"MESSAGE": "Invoice [B]17[/B] is due"')
    expect(details.locator(".fields").first).to_contain_text("invoice-17")
    page.locator("#close-details").click()
    expect(details).to_be_hidden()

    # another user of the portal: their own inbox, live as well
    page.locator("#recipient").select_option("1")
    expect(page.locator("#title")).to_have_text("Notifications of Anna Admin")
    expect(page.locator("#empty")).to_be_visible()
    assert "recipient=1" in page.url
    for_anna = notify(server, "for Anna", user=1)
    expect(item(page, for_anna)).to_be_visible(timeout=WAIT_MS)
    expect(item(page, created)).to_have_count(0)


def test_live_updates_without_reload(page, server):
    old = notify(server, "before the page opened")
    open_inbox(page, server, mark_read=False)
    expect(item(page, old)).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    fresh = notify(server, "arrived [B]live[/B]", TAG="live")
    expect(item(page, fresh)).to_be_visible(timeout=WAIT_MS)
    expect(item(page, fresh).locator(".message")).to_have_text("arrived live")
    expect(page.locator("#feed > .item").first).to_have_attribute("data-id", str(fresh))
    expect(page.locator("#unread-count")).to_have_text("2")

    # the same TAG replaces the earlier notification for this recipient
    replaced = notify(server, "replaced live", TAG="live")
    expect(item(page, replaced)).to_be_visible(timeout=WAIT_MS)
    expect(item(page, fresh)).to_have_count(0)

    deleted = requests.delete(f"{server.base}/_emulator/notifications/{old}",
                              headers={"X-B24EMU-Control": "1"}, timeout=10)
    assert deleted.json() == {"deleted": 1}
    expect(item(page, old)).to_have_count(0, timeout=WAIT_MS)
    requests.post(f"{server.base}/_emulator/notifications/{replaced}/read", json={"read": True},
                  timeout=10).raise_for_status()
    expect(item(page, replaced)).not_to_have_class(UNREAD, timeout=WAIT_MS)
    expect(page.locator("#unread-count")).to_have_text("0")
    assert page.evaluate("window.__sameDocument") is True  # no reload happened


def test_injection_attempt_shows_as_text(page, server):
    stored = notify(server, INJECTION + " [url=javascript:window.__pwned=1]click me[/url]",
                    ATTACH=[{"MESSAGE": "attach " + INJECTION},
                            {"USER": {"NAME": "<b onmouseover=alert(1)>Eve</b>"}},
                            {"GRID": [{"NAME": "<i>k</i>", "VALUE": "[url=javascript:x]v[/url]"}]}])
    open_inbox(page, server, mark_read=False)
    live = notify(server, "live " + INJECTION)
    for notification_id in (stored, live):
        expect(item(page, notification_id)).to_be_visible(timeout=WAIT_MS)
    message = item(page, stored).locator(".message")
    expect(message).to_contain_text(INJECTION)
    expect(message.locator(".refused-link")).to_have_text("click me")
    expect(item(page, live).locator(".message")).to_have_text("live " + INJECTION)
    expect(item(page, stored).locator('[data-kind="message"]')).to_have_text(
        "attach " + INJECTION)
    expect(item(page, stored).locator(".attach-user-name")).to_have_text(
        "<b onmouseover=alert(1)>Eve</b>")
    expect(item(page, stored).locator(".grid-name")).to_have_text("<i>k</i>")
    feed = page.locator("#feed")
    assert feed.locator("script, img[src='x'], b, i").count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    item(page, stored).click()
    expect(page.locator("#stored pre.raw").first).to_have_text(
        INJECTION + " [url=javascript:window.__pwned=1]click me[/url]")
    message.locator(".refused-link").click()
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_a_notification_shown_becomes_read(page, server):
    shown = notify(server, "read me by looking")
    open_inbox(page, server)
    expect(item(page, shown).locator(".new-badge")).to_be_visible()
    wait_until(lambda: is_read(server, shown), "the shown notification read in the database")
    expect(item(page, shown)).not_to_have_class(UNREAD, timeout=WAIT_MS)
    expect(item(page, shown)).to_have_class(WAS_UNREAD)
    expect(page.locator("#unread-count")).to_have_text("0")
    later = notify(server, "arrives while the page is open")
    expect(item(page, later)).to_be_visible(timeout=WAIT_MS)
    wait_until(lambda: is_read(server, later), "a live arrival read once shown")


def test_page_with_a_control_token(browser, tmp_path):
    server = Server(tmp_path / "token.sqlite3", "tests/data/portal.json",
                    {"B24EMU_CONTROL_TOKEN": "s3cret-token"})
    context = browser.new_context()
    try:
        page = context.new_page()
        refused = page.goto(f"{server.base}/_emulator/ui/")
        assert refused.status == 401
        created = notify(server, "behind a token")
        page.goto(f"{server.base}/_emulator/ui/?portal=default&recipient={BOB}&token=s3cret-token")
        expect(page.locator("#live")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
        expect(item(page, created)).to_be_visible(timeout=WAIT_MS)
        later = notify(server, "live behind a token")
        expect(item(page, later)).to_be_visible(timeout=WAIT_MS)
    finally:
        context.close()
        server.stop()
