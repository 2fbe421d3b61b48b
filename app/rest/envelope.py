"""What goes back on the wire: the `time` object, PHP-style JSON or XML, and the headers.

Success: ``{"result": …, ["next"], ["total"], "time": {…}}``; error: ``{"error",
"error_description"}`` with no `time` (spec Part A 9, B 4). Flask-free: returns bytes, status and
headers for the route to send.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from xml.sax.saxutils import escape

from b24emu import php
from b24emu.rest.errors import BitrixError

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
XML_CONTENT_TYPE = "text/xml; charset=utf-8"
# Sent with every REST answer (B 6.5).
BASE_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "origin, content-type, accept",
    "X-Content-Type-Options": "nosniff",
}
# A bucket-less budget resets ten minutes after the call (B 4.2 operating_reset_at).
OPERATING_WINDOW_SECONDS = 600


def iso_date(timestamp: float, zone: tzinfo) -> str:
    """PHP date('c'): second precision with the portal's offset."""
    return _iso_second(int(timestamp), zone)


@lru_cache(maxsize=64)
def _iso_second(second: int, zone: tzinfo) -> str:
    """One second's `date('c')`: every call within a second names the same one (two a call)."""
    return datetime.fromtimestamp(second, zone).isoformat(timespec="seconds")


def time_object(*, start: float, finish: float, processing: float, zone: tzinfo,
                operating: float = 0, operating_reset_at: int | None = None) -> dict:
    """The `time` key of a success envelope (B 4.2)."""
    if operating_reset_at is None:
        operating_reset_at = int(start) + OPERATING_WINDOW_SECONDS
    return {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": processing,
        "date_start": iso_date(start, zone),
        "date_finish": iso_date(finish, zone),
        "operating_reset_at": operating_reset_at,
        "operating": operating,
    }


class Page:
    """A paged result: the handler's list plus the `next` and `total` lifted to the top (B 4.1).

    `total` None leaves `total` out (a result without a count; a list called with ``start=-1``
    sends 0, as setNavData does); `next_start` None leaves `next` out (the last page).
    """

    def __init__(self, items, total: int | None = None, next_start: int | None = None):
        self.items = items
        self.total = total
        self.next_start = next_start


def success_body(result, time: dict) -> dict:
    """The success envelope for a handler's result."""
    if isinstance(result, Page):
        body = {"result": result.items}
        if result.next_start is not None:
            body["next"] = result.next_start
        if result.total is not None:
            body["total"] = result.total
    else:
        body = {"result": result}
    body["time"] = time
    return body


def render(body: dict, status: int, transport: str) -> tuple[bytes, int, dict]:
    """Serialize a body as the portal does for the request's transport."""
    if transport == "xml":
        return to_xml(body).encode("utf-8"), status, {**BASE_HEADERS,
                                                      "Content-Type": XML_CONTENT_TYPE}
    return php.json_dumps(body).encode("ascii"), status, {**BASE_HEADERS,
                                                           "Content-Type": JSON_CONTENT_TYPE}


def error_response(error: BitrixError, transport: str = "json") -> tuple[bytes, int, dict]:
    """The one place a BitrixError becomes an answer."""
    return render(error.body(), error.status, transport)


def to_xml(body: dict) -> str:
    """CRestServer::outputXml: `<response>`, integer keys as `<item>`, and no `<?xml …?>` prolog
    (spec B 7.2: the portal's code writes none, and neither does the docs' batch.xml example)."""
    return "<response>" + _xml_value(body) + "</response>"


def _xml_value(value) -> str:
    if isinstance(value, dict):
        return "".join(_xml_element(key, item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return "".join(_xml_element(index, item) for index, item in enumerate(value))
    if value is True:
        return "1"
    if value is None or value is False:
        return ""
    return escape(php.to_str(value), {'"': "&quot;", "'": "&apos;"})


def _xml_element(key, value) -> str:
    tag = "item" if isinstance(php.canonical_int_key(key), int) else str(key)
    return f"<{tag}>{_xml_value(value)}</{tag}>"
