"""Where events may be delivered: loopback, and the hosts named in B24EMU_EVENT_HOSTS.

A portal refuses handler URLs without a host or with another scheme than http/https. The emulator
also refuses any host that is not loopback or explicitly allowed, so it can never be used to send
requests into a network. The check runs at `event.bind` and again before every delivery.

The host checked is also the one the HTTP client connects to: an address part (between `//` and
the path) with a user name, password, backslash, space or control character is refused, since
parsers disagree on where such a host ends (`http://evil.example\\@127.0.0.1/` is 127.0.0.1 to
`urlsplit` and evil.example to `requests`), and the host `requests` prepares must be the one
checked.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import requests
from b24emu.rest import errors

LOOPBACK_NAMES = frozenset({"localhost"})
MAX_URL_LENGTH = 2048  # longer handler URLs are refused (the emulator keeps each one it binds)
# In an address part: userinfo (@), a backslash, whitespace or a control character.
_UNSAFE_AUTHORITY = re.compile(r"[@\\\s\x00-\x1f\x7f]")


def allowed_hosts(setting: str) -> frozenset[str]:
    """B24EMU_EVENT_HOSTS as a set of lower-case host names (or IP literals)."""
    return frozenset(part.strip().lower().strip("[]") for part in setting.split(",")
                     if part.strip())


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (an IP literal, or the name `localhost`)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_handler_url(url: str, allowed: frozenset[str]) -> str:
    """The handler URL, or the portal's error for it (and the emulator's for a foreign host)."""
    if len(url) > MAX_URL_LENGTH:
        raise errors.wrong_handler_url(f": longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise errors.wrong_handler_url() from None
    if parts.scheme.lower() not in ("http", "https"):
        raise errors.unsupported_protocol()
    if not host:
        raise errors.wrong_handler_url()
    if _UNSAFE_AUTHORITY.search(_raw_authority(url)) or _UNSAFE_AUTHORITY.search(parts.netloc):
        raise errors.wrong_handler_url(
            ": the emulator refuses a user name, password, backslash, space or control"
            " character in a handler's address")
    if not (is_loopback(host) or host in allowed):
        raise errors.wrong_handler_url(
            f": the emulator delivers events only to loopback addresses and to the hosts in"
            f" B24EMU_EVENT_HOSTS, not to {host[:100]!r}")
    if _connected_host(url) not in _spellings(host):
        raise errors.wrong_handler_url(
            f": the HTTP client would not connect to {host[:100]!r} with this URL")
    return url


def redact(url: str) -> str:
    """The URL with any user name and password in its address part replaced by `***` (for the
    journal and the log; such URLs are refused, but one bound before could still be queued)."""
    start = url.find("//")
    if start < 0:
        return url
    authority = _raw_authority(url)
    if "@" not in authority:
        return url
    end = start + 2 + len(authority)
    return url[:start + 2] + "***@" + authority.rpartition("@")[2] + url[end:]


def _raw_authority(url: str) -> str:
    """What follows the first `//` up to the path, query or fragment, as written (a backslash
    does not end it here, so it is seen)."""
    start = url.find("//")
    if start < 0:
        return ""
    rest = url[start + 2:]
    ends = [index for index in (rest.find(mark) for mark in "/?#") if index >= 0]
    return rest[:min(ends)] if ends else rest


def _connected_host(url: str) -> str | None:
    """The host `requests` connects to for this URL (None when it refuses the URL)."""
    try:
        prepared = requests.Request("POST", url).prepare().url or ""
        return (urlsplit(prepared).hostname or "").lower() or None
    except (requests.RequestException, ValueError, UnicodeError):
        return None


def _spellings(host: str) -> set[str]:
    """The host as checked, and as its IDNA form (requests sends a Unicode name that way)."""
    names = {host}
    try:
        names.add(host.encode("idna").decode("ascii"))
    except UnicodeError:
        pass
    return names
