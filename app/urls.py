"""The two kinds of URL the `b24emu` command takes, told apart with a one-line explanation.

A *webhook URL* (`https://portal.example/rest/1/<code>/`) is what `b24emu notify` posts to; the
emulator's *base URL* (`http://127.0.0.1:8080`) is what every control command talks to. Giving
one where the other is expected raises `UrlKindError`, whose message names the expected kind,
gives an example and never shows a webhook's secret code.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

BASE_EXAMPLE = "http://127.0.0.1:8080"
WEBHOOK_EXAMPLE = "http://127.0.0.1:8080/rest/1/devtoken/"
_WEBHOOK_PATH = re.compile(r"^(?P<prefix>.*)/rest/(?P<user>\d+)/(?P<code>[^/]+)/?$")
# `/rest/<user>/<code>…`: everything after the user may be the secret (a method may follow it).
_SECRET_PATH = re.compile(r"^(?P<prefix>.*?)/rest/+(?P<user>[^/]+)/+[^/]")
_EMULATOR_PATHS = re.compile(r"/(rest|_emulator|oauth)(/|$)")


class UrlKindError(ValueError):
    """A URL of the wrong kind, or not a URL (exit code 2)."""


def _parts(url: str, source: str):
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlKindError(f"{source} must be an http(s) URL, got {masked(url)!r}")
    return parts


def masked(url: str) -> str:
    """The URL with a webhook's secret code (and whatever follows it) replaced by `…`, and
    without its query (`?auth=…`) or a `user:password@` before the host."""
    parts = urlsplit(url.strip())
    parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    match = _SECRET_PATH.match(parts.path)
    if not match:
        return parts._replace(query="", fragment="").geturl()
    path = f"{match['prefix']}/rest/{match['user']}/…/"
    return parts._replace(path=path, query="", fragment="").geturl()


def webhook_url(url: str, source: str = "--url") -> str:
    """A webhook URL with one trailing slash; UrlKindError for anything else."""
    parts = _parts(url, source)
    if not _WEBHOOK_PATH.match(parts.path):
        kind = ("the emulator's base URL" if parts.path in ("", "/")
                else "no /rest/<user>/<code>/ in it")
        raise UrlKindError(f"{source} takes a webhook URL like {WEBHOOK_EXAMPLE} "
                           f"(`b24emu portals` lists them), got {kind}: {masked(url)}")
    return url.strip().rstrip("/") + "/"


def base_url(url: str, source: str = "--url") -> str:
    """The emulator's base URL without a trailing slash; UrlKindError for a webhook URL."""
    parts = _parts(url, source)
    if _EMULATOR_PATHS.search(parts.path + "/") or parts.query:
        kind = "a webhook URL" if _WEBHOOK_PATH.match(parts.path) else "a URL with a path"
        raise UrlKindError(f"{source} takes the emulator's base URL like {BASE_EXAMPLE} "
                           f"(no /rest/ or /_emulator/ path), got {kind}: {masked(url)}")
    return url.strip().rstrip("/")
