"""The fixture format: how a user describes a portal (users, departments, webhooks, OAuth apps
and tokens).

Validated with marshmallow on load; every problem is reported as ``path.to.field: message`` in a
`FixtureError`, never as a traceback. The format is documented in the README ("Fixtures").
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from b24emu import user_fields
from b24emu.stubs.schema import StubSchema, normalize
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate, validates_schema

TOKEN_RE = r"^[A-Za-z0-9._~-]+$"  # noqa: S105 (a pattern, not a secret)
SCOPE_RE = r"^[a-z0-9_.]+$"


class FixtureError(ValueError):
    """A fixture file that cannot be loaded; the message names every bad field."""


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class UserSchema(_Strict):
    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    login = fields.String(load_default=None, validate=validate.Length(min=1, max=50))
    name = fields.String(load_default="")
    last_name = fields.String(load_default="")
    email = fields.String(load_default="")
    active = fields.Boolean(load_default=True)
    admin = fields.Boolean(load_default=False)
    gender = fields.String(load_default="", validate=validate.OneOf(["", "M", "F"]))
    time_zone = fields.String(load_default=None)  # not set: left out of user.get's answer
    date_register = fields.String(load_default="2026-01-01T00:00:00+00:00")
    departments = fields.List(fields.Integer(strict=True), load_default=lambda: [1])
    # Any other documented user field, or any UF_* field, under its API name (upper case).
    extra = fields.Dict(keys=fields.String(), load_default=dict)

    @pre_load
    def _collect_api_fields(self, data, **kwargs):
        """Upper-case keys are user fields as the API spells them: kept together in `extra`."""
        if not isinstance(data, dict):
            return data
        extra = {key: value for key, value in data.items()
                 if isinstance(key, str) and key[:1].isupper()}
        rest = {key: value for key, value in data.items() if key not in extra}
        return {**rest, "extra": extra} if extra else rest

    @validates_schema
    def _api_fields(self, data, **kwargs):
        problems = {key: [message] for key, value in data.get("extra", {}).items()
                    if (message := _user_field_problem(key, value))}
        if problems:
            raise ValidationError(problems)


def _user_field_problem(key: str, value) -> str | None:
    """Why a fixture user's API field is refused, or None."""
    if key in user_fields.FIXTURE_KEYS:
        return f"give it as {user_fields.FIXTURE_KEYS[key]!r}"
    if key not in user_fields.STANDARD_FIELDS and not user_fields.CUSTOM_FIELD.match(key):
        return "not a documented user field (user-scope.md) nor a UF_ field"
    if key in user_fields.DATE_FIELDS and not _iso_or_empty(value):
        return "not an ISO 8601 date or date-time"
    if key == "IS_ONLINE" and value not in ("Y", "N"):
        return 'must be "Y" or "N"'
    if key == user_fields.USER_TYPE and value not in user_fields.USER_TYPES:
        return f"must be one of {', '.join(user_fields.USER_TYPES)}"
    if not key.startswith("UF_") and not isinstance(value, (str, int, float)):
        return "must be a string or a number"
    return None


def _iso_or_empty(value) -> bool:
    if value == "":
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class DepartmentSchema(_Strict):
    """A department of the company structure (department.get; users' UF_DEPARTMENT)."""

    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    name = fields.String(required=True)
    parent = fields.Integer(load_default=None, allow_none=True, strict=True)
    head = fields.Integer(load_default=None, allow_none=True, strict=True)
    sort = fields.Integer(load_default=500, strict=True)


class WebhookSchema(_Strict):
    id = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=1))
    user_id = fields.Integer(required=True, strict=True)
    code = fields.String(required=True, validate=validate.Regexp(TOKEN_RE))
    scopes = fields.List(fields.String(validate=validate.Regexp(SCOPE_RE)), required=True)
    title = fields.String(load_default="")


class TokenSchema(_Strict):
    access_token = fields.String(required=True, validate=validate.Regexp(TOKEN_RE))
    refresh_token = fields.String(load_default=None, validate=validate.Regexp(TOKEN_RE))
    user_id = fields.Integer(required=True, strict=True)
    expires_at = fields.AwareDateTime(required=True)
    scopes = fields.List(fields.String(validate=validate.Regexp(SCOPE_RE)), load_default=None)


class AppSchema(_Strict):
    client_id = fields.String(required=True, validate=validate.Regexp(TOKEN_RE))
    client_secret = fields.String(required=True, validate=validate.Length(min=1))
    name = fields.String(load_default="")
    code = fields.String(load_default="")
    scopes = fields.List(fields.String(validate=validate.Regexp(SCOPE_RE)), required=True)
    active = fields.Boolean(load_default=True)
    application_token = fields.String(load_default=None, validate=validate.Regexp(TOKEN_RE))
    tokens = fields.List(fields.Nested(TokenSchema), load_default=list)


class PortalSchema(_Strict):
    name = fields.String(load_default="default", validate=validate.Regexp(r"^[a-z0-9-]+$"))
    domain = fields.String(load_default="localhost")
    timezone = fields.String(load_default=None)
    users = fields.List(fields.Nested(UserSchema), required=True)
    webhooks = fields.List(fields.Nested(WebhookSchema), load_default=list)
    apps = fields.List(fields.Nested(AppSchema), load_default=list)
    departments = fields.List(fields.Nested(DepartmentSchema), load_default=list)
    stubs = fields.List(fields.Nested(StubSchema), load_default=list)

    @validates_schema
    def _references(self, data, **kwargs):
        """Ids unique; every webhook and token names a user of this portal."""
        errors: dict = {}
        user_ids = [user["id"] for user in data.get("users", [])]
        for index, user_id in enumerate(user_ids):
            if user_ids.index(user_id) != index:
                errors.setdefault("users", {})[index] = {"id": [f"duplicate user id {user_id}"]}
        known = set(user_ids)
        for index, hook in enumerate(data.get("webhooks", [])):
            if hook["user_id"] not in known:
                errors.setdefault("webhooks", {})[index] = {"user_id": ["no such user"]}
        _check_tokens(data.get("apps", []), known, errors)
        _check_departments(data.get("departments", []), data.get("users", []), known, errors)
        if errors:
            raise ValidationError(errors)


def _check_tokens(apps: list, known_users: set, errors: dict) -> None:
    """Tokens name known users and are unique across the portal."""
    seen: set[str] = set()
    for app_index, app in enumerate(apps):
        for token_index, token in enumerate(app["tokens"]):
            path = errors.setdefault("apps", {}).setdefault(app_index, {})
            slot = path.setdefault("tokens", {}).setdefault(token_index, {})
            if token["user_id"] not in known_users:
                slot["user_id"] = ["no such user"]
            if token["access_token"] in seen:
                slot["access_token"] = ["duplicate token"]
            seen.add(token["access_token"])
            if not slot:
                del path["tokens"][token_index]
            if not path["tokens"]:
                del errors["apps"][app_index]
    if not errors.get("apps"):
        errors.pop("apps", None)


def _check_departments(departments: list, users: list, known_users: set, errors: dict) -> None:
    """Department ids unique, parents and heads exist, users' departments are listed."""
    ids = [department["id"] for department in departments]
    for index, department in enumerate(departments):
        slot: dict = {}
        if ids.index(department["id"]) != index:
            slot["id"] = [f"duplicate department id {department['id']}"]
        if department["parent"] is not None and department["parent"] not in ids:
            slot["parent"] = ["no such department"]
        if department["head"] is not None and department["head"] not in known_users:
            slot["head"] = ["no such user"]
        if slot:
            errors.setdefault("departments", {})[index] = slot
    if not departments:
        return  # a portal without a company structure in its fixture: nothing to check against
    for index, user in enumerate(users):
        missing = [number for number in user["departments"] if number not in ids]
        if missing:
            errors.setdefault("users", {}).setdefault(index, {})["departments"] = [
                f"no such department {missing[0]}"]


def parse_fixture(data) -> dict:
    """Validate a fixture document; raise FixtureError listing every bad field."""
    if not isinstance(data, dict):
        raise FixtureError("fixture: the top level must be a JSON object")
    try:
        portal = PortalSchema().load(data)
    except ValidationError as error:
        raise FixtureError("; ".join(_flatten(error.messages))) from None
    _number_webhooks(portal["webhooks"])
    portal["stubs"] = [normalize(stub) for stub in portal["stubs"]]
    return portal


def load_fixture_file(path: str | Path) -> dict:
    """Read and validate a fixture file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise FixtureError(f"{path}: cannot read ({error.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FixtureError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    try:
        return parse_fixture(data)
    except FixtureError as error:
        raise FixtureError(f"{path}: {error}") from None


def _number_webhooks(webhooks: list[dict]) -> None:
    """Give webhooks without an id the next free one (a webhook's id keys its limits)."""
    used = {hook["id"] for hook in webhooks if hook["id"] is not None}
    next_id = 1
    for hook in webhooks:
        if hook["id"] is None:
            while next_id in used:
                next_id += 1
            hook["id"] = next_id
            used.add(next_id)


def _flatten(messages, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict as readable `path: message` lines."""
    if isinstance(messages, list):
        return [f"{prefix or 'fixture'}: {m}" for m in messages if isinstance(m, str)] + [
            line for m in messages if isinstance(m, dict) for line in _flatten(m, prefix)
        ]
    lines = []
    for key, value in messages.items():
        if isinstance(key, int):
            path = f"{prefix}[{key}]"
        elif key == "_schema":
            path = prefix
        else:
            path = f"{prefix}.{key}" if prefix else str(key)
        lines.extend(_flatten(value, path))
    return lines


def slug(text: str) -> str:
    """A portal name from a host name (used for portals picked by host)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "default"
