"""The stub format, validated with marshmallow: the same schema for fixtures, the control API,
the CLI and `stubs import`.

    {"method": "crm.deal.get", "params": {"ID": 5},
     "result": {"ID": "{{params.ID}}", "TITLE": "Deal {{params.ID}}"}}
    {"method": "crm.deal.get", "error": "NOT_FOUND", "error_description": "Not found",
     "status": 400}
    {"method": "tasks.task.add", "sequence": [
        {"times": 2, "error": "QUERY_LIMIT_EXCEEDED", "status": 503},
        {"result": {"task": {"id": "{{hit}}"}}}]}

`load_stub` returns the normalized form the store keeps: every answer in `answers` (a single
answer is a sequence of one), `scope` filled in.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

METHOD_RE = r"^[A-Za-z0-9_.]+$"
CODE_RE = r"^[A-Za-z0-9_.:-]+$"
SCOPE_RE = r"^[a-z0-9_.]*$"
MAX_LATENCY = 60.0  # seconds a stub may wait before answering (real time, like a fault)
MAX_SEQUENCE = 100
MAX_EVENTS = 20
ANSWER_FIELDS = ("result", "error", "error_description", "status", "total", "next", "list")
NO_SCOPE = ""  # a stub that needs no scope (like the `_global` methods)


MAX_DEPTH = 100  # nesting of a result, params or event data (deeper ones failed every call)


def _shallow(value) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH levels (answering it would fail with a 500)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValidationError(f"nested deeper than {MAX_DEPTH} levels")
            stack.extend((child, depth + 1)
                         for child in (item.values() if isinstance(item, dict) else item))


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class _Number(fields.Float):
    """A JSON number, not a string or boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class AnswerSchema(_Strict):
    """One answer: a result (any JSON) or an error; `times` counts calls in a sequence."""

    result = fields.Raw(allow_none=True, validate=_shallow)
    error = fields.String(validate=[validate.Length(min=1, max=200), validate.Regexp(CODE_RE)])
    error_description = fields.String(validate=validate.Length(max=10000))
    status = fields.Integer(strict=True, validate=validate.Range(min=200, max=599))
    total = fields.Integer(strict=True, validate=validate.Range(min=0))
    next = fields.Integer(strict=True, validate=validate.Range(min=0))
    list = fields.Boolean(allow_none=True)
    times = fields.Integer(strict=True, validate=validate.Range(min=1, max=1_000_000_000))

    @validates_schema
    def _result_or_error(self, data, **kwargs):
        if ("result" in data) == ("error" in data):
            raise ValidationError("give either a result or an error", "result")
        if "error" not in data and ("error_description" in data):
            raise ValidationError("only with an error", "error_description")
        if "error" in data and any(key in data for key in ("total", "next", "list")):
            raise ValidationError("an error has no paging", "error")
        if "error" in data and data.get("status", 400) < 400:
            raise ValidationError("an error needs a status of 400 or more", "status")
        if "result" in data and data.get("status", 200) != 200:
            raise ValidationError("a result is answered with 200", "status")


class EventSchema(_Strict):
    """An event the stub fires when it answers (delivered by the events module)."""

    event = fields.String(required=True, validate=[validate.Length(min=1, max=200),
                                                   validate.Regexp(r"^[A-Za-z0-9_.]+$")])
    data = fields.Raw(load_default=dict, validate=_shallow)


class StubSchema(AnswerSchema):
    """A whole stub: what it matches and what it answers."""

    method = fields.String(required=True, validate=[validate.Length(min=1, max=200),
                                                    validate.Regexp(METHOD_RE)])
    params = fields.Dict(keys=fields.String(), load_default=dict, validate=_shallow)
    scope = fields.String(load_default=None, allow_none=True,
                          validate=[validate.Length(max=100), validate.Regexp(SCOPE_RE)])
    override = fields.Boolean(load_default=False)
    latency = _Number(load_default=0.0, allow_nan=False,
                      validate=validate.Range(min=0, max=MAX_LATENCY))
    sequence = fields.List(fields.Nested(AnswerSchema),
                           validate=validate.Length(min=1, max=MAX_SEQUENCE))
    events = fields.List(fields.Nested(EventSchema), load_default=list,
                         validate=validate.Length(max=MAX_EVENTS))
    id = fields.Integer(strict=True, validate=validate.Range(min=1))  # ignored: kept on export
    hits = fields.Integer(strict=True)  # ignored: kept on export
    source = fields.String()  # ignored: kept on export
    created_at = fields.Raw()  # ignored: kept on export

    @validates_schema
    def _result_or_error(self, data, **kwargs):
        answer = {key: data[key] for key in (*ANSWER_FIELDS, "times") if key in data}
        if "sequence" in data:
            if answer:
                raise ValidationError("give the answers in `sequence` or at the top, not both",
                                      "sequence")
            return
        if "times" in answer:
            raise ValidationError("only inside `sequence`", "times")
        super()._result_or_error(answer, **kwargs)


def default_scope(method: str) -> str:
    """The scope a stub needs unless it names one: the method name before the first dot."""
    return method.lower().partition(".")[0]


def normalize(data: dict) -> dict:
    """A validated stub in the stored form: lower-case method, scope, list of answers."""
    answers = data.get("sequence") or [{key: data[key] for key in ANSWER_FIELDS if key in data}]
    scope = data.get("scope")
    return {
        "method": data["method"].lower(),
        "params": data.get("params") or {},
        "scope": default_scope(data["method"]) if scope is None else scope,
        "override": bool(data.get("override")),
        "latency": float(data.get("latency") or 0.0),
        "answers": [dict(answer) for answer in answers],
        "events": [dict(event) for event in data.get("events") or []],
    }


def load_stub(data) -> dict:
    """Validate one stub document; raises marshmallow's ValidationError."""
    if not isinstance(data, dict):
        raise ValidationError("a stub must be a JSON object")
    return normalize(StubSchema().load(data))
