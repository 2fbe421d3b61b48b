"""Input of the control API: marshmallow schemas for query strings and JSON bodies, and helpers.

Every bad value is answered 400 ``{"error": "invalid_parameter", "error_description":
"<field>: <message>"}``; a query parameter the endpoint does not know is refused the same way
(a typo in a filter of `DELETE /_emulator/notifications` must not delete everything).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from flask import current_app, jsonify, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

MAX_INT = 2**63 - 1  # SQLite INTEGER; larger values would overflow the driver
MAX_TEXT = 10000  # longest filter text accepted
MAX_UNIX = 253_402_300_799.0  # 9999-12-31T23:59:59Z
PERSONAL, SYSTEM = 2, 4
TYPE_NAMES = {"personal": PERSONAL, "system": SYSTEM}


class ControlError(Exception):
    """An error of the control API itself: `{"error", "error_description"}` with a status."""

    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status, self.code, self.description = status, code, description

    def response(self):
        """The JSON answer."""
        response = jsonify(error=self.code, error_description=self.description)
        response.status_code = self.status
        return response


def invalid(field: str, message: str) -> ControlError:
    """400 invalid_parameter naming the field."""
    return ControlError(400, "invalid_parameter", f"{field}: {message}")


def emulator():
    """The running emulator."""
    return current_app.extensions["b24emu"]


def selected_portal() -> str:
    """`?portal=` (404 portal_not_found if unknown), else the portal of the request's Host."""
    emu = emulator()
    name = request.args.get("portal")
    if name is None or name == "":
        return emu.portal_for_host(request.host)
    if len(name) > 200 or "\x00" in name or emu.portals.portal(name) is None:
        raise ControlError(404, "portal_not_found", f"No portal named {name[:200]!r}")
    return name


def flatten(messages, prefix: str = "") -> list[str]:
    """marshmallow's error dict as `field: message` lines."""
    if isinstance(messages, str):
        return [f"{prefix or 'body'}: {messages}"]
    if isinstance(messages, list):
        return [line for item in messages for line in flatten(item, prefix)]
    lines = []
    for key, value in messages.items():
        if key == "_schema":
            path = prefix
        elif isinstance(key, int):
            path = f"{prefix}[{key}]"
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        lines.extend(flatten(value, path))
    return lines


def load_args(schema: Schema) -> dict:
    """The query string validated by `schema` (one value per name; repeats refused)."""
    data = {}
    for key in request.args:
        values = request.args.getlist(key)
        if len(values) > 1:
            raise invalid(key, "give this parameter once")
        data[key] = values[0]
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ControlError(400, "invalid_parameter", "; ".join(flatten(error.messages))) from None


def load_body(schema: Schema, *, required: bool = False) -> dict:
    """The JSON body validated by `schema`; an empty body is `{}` unless required."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise invalid("body", "a JSON object is required")
        data = {}
    else:
        data = request.get_json(force=True, silent=True)
        if data is None and raw.strip() != b"null":
            raise invalid("body", "not valid JSON")
        if not isinstance(data, dict):
            raise invalid("body", "must be a JSON object")
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ControlError(400, "invalid_parameter", "; ".join(flatten(error.messages))) from None


def one(lookup, text_id: str, what: str, portal: str):
    """The row `lookup(portal, id)` finds for a path id, or 404 `not_found` (an id that cannot
    be a row id, e.g. not digits or too long, is not found either, never a 500)."""
    row = lookup(portal, int(text_id)) if text_id.isdigit() and len(text_id) <= 18 else None
    if row is None:
        raise ControlError(404, "not_found", f"No {what} {text_id[:40]} in {portal!r}")
    return row


def page(items: list, total: int, limit: int, offset: int) -> dict:
    """The list envelope."""
    return {"items": items, "total": total, "limit": limit, "offset": offset,
            "next": offset + limit if offset + limit < total else None}


def to_unix(value, zone) -> float:
    """A `since`/`set` value (float or datetime; naive means the portal's zone) as unix seconds."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).timestamp()
    return float(value)


def iso(timestamp: float, zone) -> str:
    """An instant as ISO 8601 in the portal's zone (seconds, like a portal's `date('c')`)."""
    return datetime.fromtimestamp(int(timestamp), zone).isoformat(timespec="seconds")


# --- fields -----------------------------------------------------------------------------------


class Instant(fields.Field):
    """Unix seconds (a number) or an ISO 8601 date-time; a naive one is in the portal's zone."""

    default_error_messages = {"invalid": "Not unix seconds or an ISO 8601 date-time."}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str) and 0 < len(value) <= 64 and "\x00" not in value:
            number = _number(value)
            if number is None:
                moment = _moment(value)
                if moment is None:
                    raise self.make_error("invalid")
                if moment.tzinfo is None:
                    if not 0 <= moment.replace(tzinfo=UTC).timestamp() <= MAX_UNIX - 86400:
                        raise self.make_error("invalid")
                    return moment  # naive: the caller applies the portal's zone
                number = moment.timestamp()
        else:
            raise self.make_error("invalid")
        if not math.isfinite(number) or not 0 <= number <= MAX_UNIX:
            raise self.make_error("invalid")
        return number


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _moment(value: str) -> datetime | None:
    text = value.strip().replace("Z", "+00:00")
    if "T" in text:  # "+01:00" sent unencoded in a query string arrives as " 01:00"
        text = re.sub(r" (\d\d:?\d\d)$", r"+\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class NotifyType(fields.Field):
    """`personal`, `system` or the stored integer (1 confirm, 2 personal, 4 system)."""

    default_error_messages = {"invalid": "Must be personal, system or an integer 1..4."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = str(value).strip().lower()
        if text in TYPE_NAMES:
            return TYPE_NAMES[text]
        if text.isdigit() and len(text) < 3 and 1 <= int(text) <= 4:
            return int(text)
        raise self.make_error("invalid")


class StrictFloat(fields.Float):
    """A JSON number (not a string, not a boolean)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _text(**kwargs):
    return fields.String(validate=validate.Length(max=MAX_TEXT), **kwargs)


def _id(minimum: int = 1, **kwargs):
    return fields.Integer(strict=False, validate=validate.Range(min=minimum, max=MAX_INT),
                          **kwargs)


class _Query(Schema):
    """Every query string may carry `portal` (selection) and `token` (access)."""

    class Meta:
        unknown = RAISE

    portal = fields.String(load_only=True)
    token = fields.String(load_only=True)


class _Paging(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_INT))


class NotificationFilterQuery(_Query):
    """Filters of /_emulator/notifications (list, count, delete, mark read)."""

    recipient = _id()
    sender = _id(minimum=0)
    tag = _text()
    stored_tag = _text()
    sub_tag = _text()
    stored_sub_tag = _text()
    type = NotifyType()
    read = fields.Boolean()
    since = Instant()
    text = _text()
    after_id = _id(minimum=0)


class NotificationListQuery(NotificationFilterQuery, _Paging):
    """Filters plus paging."""


class JournalQuery(_Query, _Paging):
    """Filters of /_emulator/journal."""

    method = _text()
    status = fields.Integer(validate=validate.Range(min=100, max=599))
    error = _text()
    request_id = _text()
    user = _id(minimum=0)
    since = Instant()


class PortalQuery(_Query):
    """Endpoints that take no filter."""


class ReadBody(Schema):
    class Meta:
        unknown = RAISE

    read = StrictBoolean(load_default=True)


class ResetBody(Schema):
    class Meta:
        unknown = RAISE

    scope = fields.String(load_default="all", validate=validate.OneOf(["all", "data"]))


class FaultBody(Schema):
    """POST /_emulator/faults."""

    class Meta:
        unknown = RAISE

    method = fields.String(required=True, validate=[
        validate.Length(min=1, max=200), validate.Regexp(r"^(\*|[A-Za-z0-9_.]+)$")])
    error = fields.String(load_default=None, allow_none=True, validate=[
        validate.Length(min=1, max=200), validate.Regexp(r"^[A-Za-z0-9_.:-]+$")])
    description = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=MAX_TEXT))
    status = fields.Integer(load_default=None, allow_none=True, strict=True,
                            validate=validate.Range(min=200, max=599))
    latency = StrictFloat(load_default=0.0, allow_nan=False,
                           validate=validate.Range(min=0, max=300))
    times = fields.Integer(load_default=None, allow_none=True, strict=True,
                           validate=validate.Range(min=1, max=1_000_000_000))
    probability = StrictFloat(load_default=1.0, allow_nan=False,
                               validate=validate.Range(min=0, max=1))

    @validates_schema
    def _something_to_do(self, data, **kwargs):
        if not data.get("error") and not data.get("latency"):
            raise ValidationError("give an error code, a latency > 0, or both", "error")


class ClockBody(Schema):
    """POST /_emulator/clock: set, then advance, then freeze."""

    class Meta:
        unknown = RAISE

    set = Instant()
    advance = StrictFloat(allow_nan=False, validate=validate.Range(min=-MAX_UNIX, max=MAX_UNIX))
    freeze = StrictBoolean()
