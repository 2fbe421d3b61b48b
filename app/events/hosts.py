"""Where events may be delivered: loopback, and the hosts named in B24EMU_EVENT_HOSTS.

A portal refuses handler URLs without a host or with another scheme than http/https. The emulator
also refuses any host that is not loopback or explicitly allowed, so it can never be used to send
requests into a network. The check runs at `event.bind` and again before every delivery.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from b24emu.rest import errors

LOOPBACK_NAMES = frozenset({"localhost"})
MAX_URL_LENGTH = 2048  # longer handler URLs are refused (the emulator keeps each one it binds)


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
    if not (is_loopback(host) or host in allowed):
        raise errors.wrong_handler_url(
            f": the emulator delivers events only to loopback addresses and to the hosts in"
            f" B24EMU_EVENT_HOSTS, not to {host[:100]!r}")
    return url
