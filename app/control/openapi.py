"""GET /_emulator/openapi.json: the control API described as OpenAPI 3.1 (a plain dict)."""

from __future__ import annotations

from b24emu.control.api import bp
from flask import jsonify


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _q(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _path_id(name: str = "id") -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _body(schema: dict, required: bool = False) -> dict:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


ERROR = _json(_ref("Error"), "Error of the control API")
BAD = {"400": {**ERROR, "description": "invalid_parameter: a bad filter or body field"}}
NOT_FOUND = {"404": {**ERROR, "description": "not_found / portal_not_found"}}
PORTAL = _q("portal", "Portal name; default: the portal of the request's Host")
PAGING = [_q("limit", "Page size (1..1000)", {"type": "integer", "default": 50}),
          _q("offset", "Items to skip", {"type": "integer", "default": 0})]
NOTIFICATION_FILTERS = [
    PORTAL,
    _q("recipient", "Recipient user id", {"type": "integer"}),
    _q("sender", "Sender user id (0: system)", {"type": "integer"}),
    _q("tag", "Plain TAG as the client sent it"),
    _q("stored_tag", "Stored tag, e.g. MP|a1b2c|build-42"),
    _q("sub_tag", "Plain SUB_TAG"),
    _q("stored_sub_tag", "Stored sub-tag"),
    _q("type", "personal, system or the stored integer"),
    _q("read", "true or false", {"type": "boolean"}),
    _q("since", "Created at or after: unix seconds or ISO 8601 (naive = portal zone)"),
    _q("text", "Message contains (case-insensitive, literal)"),
    _q("after_id", "Only ids greater than this", {"type": "integer"}),
]
JOURNAL_FILTERS = [
    PORTAL,
    _q("method", "REST method name"),
    _q("status", "HTTP status", {"type": "integer"}),
    _q("error", "Error code"),
    _q("request_id", "Request id (also on the notifications it created)"),
    _q("user", "Calling user id", {"type": "integer"}),
    _q("since", "At or after: unix seconds or ISO 8601"),
]


def _page(item: str) -> dict:
    return {"type": "object", "required": ["items", "total", "limit", "offset", "next"],
            "properties": {"items": {"type": "array", "items": _ref(item)},
                           "total": {"type": "integer"}, "limit": {"type": "integer"},
                           "offset": {"type": "integer"},
                           "next": {"type": ["integer", "null"]}}}


def _counter(name: str) -> dict:
    return {"type": "object", "properties": {name: {"type": "integer"}}, "required": [name]}


SCHEMAS = {
    "Error": {"type": "object", "required": ["error", "error_description"],
              "properties": {"error": {"type": "string"},
                             "error_description": {"type": "string"}}},
    "Notification": {"type": "object", "properties": {
        "id": {"type": "integer"}, "portal": {"type": "string"},
        "recipient_id": {"type": "integer"}, "sender_id": {"type": "integer"},
        "type": {"enum": ["personal", "system"]}, "notify_type": {"type": "integer"},
        "module": {"type": "string"}, "event": {"type": "string"},
        "message": {"type": "string"}, "message_out": {"type": "string"},
        "tag": {"type": "string"}, "stored_tag": {"type": "string"},
        "sub_tag": {"type": "string"}, "stored_sub_tag": {"type": "string"},
        "attach": {"type": ["object", "array", "null"]}, "created_at": {"type": "number"},
        "created": {"type": "string", "format": "date-time"}, "read": {"type": "boolean"},
        "read_at": {"type": ["number", "null"]}, "method": {"type": "string"},
        "auth_type": {"type": "string"}, "credential": {"type": "string"},
        "request_id": {"type": ["string", "null"]}}},
    "JournalEntry": {"type": "object", "properties": {
        "id": {"type": "integer"}, "request_id": {"type": "string"}, "at": {"type": "number"},
        "http_method": {"type": "string"}, "path": {"type": "string"},
        "method": {"type": "string"}, "auth_type": {"type": ["string", "null"]},
        "credential": {"type": ["string", "null"]}, "user_id": {"type": ["integer", "null"]},
        "client_ip": {"type": "string"}, "params": {"type": ["object", "null"]},
        "status": {"type": ["integer", "null"], "description": "null: an event delivery "
                                                                 "that got no answer"},
        "error": {"type": ["string", "null"]}, "duration": {"type": "number"}}},
    "Fault": {"type": "object", "properties": {
        "id": {"type": "integer"}, "method": {"type": "string"},
        "error": {"type": ["string", "null"]}, "description": {"type": "string"},
        "status": {"type": ["integer", "null"]}, "latency": {"type": "number"},
        "remaining": {"type": ["integer", "null"]}, "probability": {"type": "number"},
        "hits": {"type": "integer"}, "created_at": {"type": "number"}}},
    "NewFault": {"type": "object", "required": ["method"], "additionalProperties": False,
                 "properties": {
                     "method": {"type": "string", "description": "Method name or *"},
                     "error": {"type": ["string", "null"]},
                     "description": {"type": ["string", "null"]},
                     "status": {"type": ["integer", "null"], "minimum": 200, "maximum": 599},
                     "latency": {"type": "number", "minimum": 0, "maximum": 300},
                     "times": {"type": ["integer", "null"], "minimum": 1},
                     "probability": {"type": "number", "minimum": 0, "maximum": 1}}},
    "Clock": {"type": "object", "properties": {
        "now": {"type": "number"}, "iso": {"type": "string"}, "frozen": {"type": "boolean"},
        "offset": {"type": "number"}}},
    "ClockChange": {"type": "object", "additionalProperties": False, "properties": {
        "set": {"type": ["number", "string"], "description": "Unix seconds or ISO 8601"},
        "advance": {"type": "number"}, "freeze": {"type": "boolean"}}},
    "Portal": {"type": "object", "properties": {
        "name": {"type": "string"}, "domain": {"type": "string"},
        "timezone": {"type": ["string", "null"]},
        "users": {"type": "array", "items": {"type": "object"}},
        "webhooks": {"type": "array", "items": {"type": "object"}},
        "apps": {"type": "array", "items": {"type": "object"}}}},
    "Fixture": {"type": "object", "required": ["users"],
                "description": "A portal, in the format of fixtures/default.json"},
    "StubAnswer": {"type": "object", "description": "A result (any JSON) or an error",
                   "properties": {
                       "result": {}, "error": {"type": "string"},
                       "error_description": {"type": "string"},
                       "status": {"type": "integer", "minimum": 200, "maximum": 599},
                       "total": {"type": "integer"}, "next": {"type": "integer"},
                       "list": {"type": ["boolean", "null"]},
                       "times": {"type": "integer", "minimum": 1}}},
    "NewStub": {"allOf": [_ref("StubAnswer"), {
        "type": "object", "required": ["method"], "properties": {
            "method": {"type": "string"},
            "params": {"type": "object", "description": "Subset of parameters to match"},
            "scope": {"type": ["string", "null"],
                      "description": "Default: the method name before the first dot"},
            "override": {"type": "boolean", "default": False},
            "latency": {"type": "number", "minimum": 0, "maximum": 60},
            "sequence": {"type": "array", "items": _ref("StubAnswer")},
            "events": {"type": "array", "items": {"type": "object", "required": ["event"],
                                                  "properties": {"event": {"type": "string"},
                                                                 "data": {}}}}}}]},
    "Stub": {"allOf": [_ref("NewStub"), {"type": "object", "properties": {
        "id": {"type": "integer"}, "hits": {"type": "integer"},
        "source": {"enum": ["fixture", "api"]}, "created_at": {"type": "number"}}}]},
}

READ_BODY = _body({"type": "object", "properties": {"read": {"type": "boolean",
                                                             "default": True}}})

PATHS = {
    "/_emulator/health": {"get": {
        "summary": "Ready check (open without a token)",
        "responses": {"200": _json({"type": "object", "properties": {
            "status": {"type": "string"}, "schema_version": {"type": "integer"}}})}}},
    "/_emulator/portals": {"get": {
        "summary": "Portals with users, webhooks (with URLs) and apps",
        "responses": {"200": _json({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Portal")}}})}}},
    "/_emulator/methods": {"get": {
        "summary": "REST methods the emulator answers (name, scope, private, parameters)",
        "responses": {"200": _json({"type": "object", "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "scope": {"type": "string"},
                "private": {"type": "boolean"}, "batchable": {"type": "boolean"},
                "params": {"type": "array", "items": {"type": "string"}},
                "summary": {"type": "string"}}}}}})}}},
    "/_emulator/notifications": {
        "get": {"summary": "Notifications, newest first", "parameters":
                NOTIFICATION_FILTERS + PAGING,
                "responses": {"200": _json(_page("Notification")), **BAD, **NOT_FOUND}},
        "delete": {"summary": "Delete matching notifications (no filter: all)",
                   "parameters": NOTIFICATION_FILTERS,
                   "responses": {"200": _json(_counter("deleted")), **BAD, **NOT_FOUND}}},
    "/_emulator/notifications/count": {"get": {
        "summary": "Count matching notifications", "parameters": NOTIFICATION_FILTERS,
        "responses": {"200": _json(_counter("count")), **BAD, **NOT_FOUND}}},
    "/_emulator/notifications/read": {"post": {
        "summary": "Mark matching notifications read/unread (no filter: all)",
        "parameters": NOTIFICATION_FILTERS, "requestBody": READ_BODY,
        "responses": {"200": _json(_counter("changed")), **BAD, **NOT_FOUND}}},
    "/_emulator/notifications/{id}": {
        "get": {"summary": "One notification", "parameters": [_path_id(), PORTAL],
                "responses": {"200": _json(_ref("Notification")), **NOT_FOUND}},
        "delete": {"summary": "Delete one notification", "parameters": [_path_id(), PORTAL],
                   "responses": {"200": _json(_counter("deleted")), **NOT_FOUND}}},
    "/_emulator/notifications/{id}/read": {"post": {
        "summary": "Mark one notification read/unread", "parameters": [_path_id(), PORTAL],
        "requestBody": READ_BODY,
        "responses": {"200": _json(_counter("changed")), **BAD, **NOT_FOUND}}},
    "/_emulator/journal": {
        "get": {"summary": "REST calls, newest first, secrets masked",
                "parameters": JOURNAL_FILTERS + PAGING,
                "responses": {"200": _json(_page("JournalEntry")), **BAD, **NOT_FOUND}},
        "delete": {"summary": "Forget the journal", "parameters": [PORTAL],
                   "responses": {"200": _json(_counter("deleted"))}}},
    "/_emulator/journal/{id}": {"get": {
        "summary": "One journal entry", "parameters": [_path_id(), PORTAL],
        "responses": {"200": _json(_ref("JournalEntry")), **NOT_FOUND}}},
    "/_emulator/reset": {"post": {
        "summary": "data: notifications + journal; all: also faults, limits, fixture reload",
        "parameters": [PORTAL],
        "requestBody": _body({"type": "object", "properties": {
            "scope": {"enum": ["all", "data"], "default": "all"}}}),
        "responses": {"200": _json({"type": "object", "properties": {
            "portal": {"type": "string"}, "scope": {"type": "string"},
            "removed": {"type": "object"}, "reloaded": {"type": "boolean"}}}), **BAD}}},
    "/_emulator/seed": {"post": {
        "summary": "Load or replace the portal a fixture document describes",
        "requestBody": _body(_ref("Fixture"), required=True),
        "responses": {"200": _json({"type": "object", "properties": {
            "portal": {"type": "string"}, "domain": {"type": "string"},
            "users": {"type": "integer"}, "webhooks": {"type": "integer"},
            "apps": {"type": "integer"}}}),
            "400": {**ERROR, "description": "invalid_fixture"}}}},
    "/_emulator/faults": {
        "get": {"summary": "Armed faults", "parameters": [PORTAL],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": _ref("Fault")}}})}},
        "post": {"summary": "Arm a fault", "parameters": [PORTAL],
                 "requestBody": _body(_ref("NewFault"), required=True),
                 "responses": {"201": _json(_ref("Fault"), "Armed"), **BAD}},
        "delete": {"summary": "Disarm every fault", "parameters": [PORTAL],
                   "responses": {"200": _json(_counter("deleted"))}}},
    "/_emulator/faults/{id}": {"delete": {
        "summary": "Disarm one fault", "parameters": [_path_id(), PORTAL],
        "responses": {"200": _json(_counter("deleted")), **NOT_FOUND}}},
    "/_emulator/stubs": {
        "get": {"summary": "Stubs: answers for methods the emulator does not emulate",
                "parameters": [PORTAL],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": _ref("Stub")}}})}},
        "post": {"summary": "Add a stub, or an array of stubs (all or none)",
                 "parameters": [PORTAL],
                 "requestBody": _body({"oneOf": [_ref("NewStub"), {
                     "type": "array", "items": _ref("NewStub")}]}, required=True),
                 "responses": {"201": _json({"oneOf": [_ref("Stub"), {
                     "type": "object", "properties": {
                         "items": {"type": "array", "items": _ref("Stub")}}}]}, "Added"),
                     **BAD}},
        "delete": {"summary": "Remove every stub", "parameters": [PORTAL],
                   "responses": {"200": _json(_counter("deleted"))}}},
    "/_emulator/stubs/{id}": {"delete": {
        "summary": "Remove one stub", "parameters": [_path_id(), PORTAL],
        "responses": {"200": _json(_counter("deleted")), **NOT_FOUND}}},
    "/_emulator/clock": {
        "get": {"summary": "The emulator's time", "responses": {"200": _json(_ref("Clock"))}},
        "post": {"summary": "set, then advance, then freeze",
                 "requestBody": _body(_ref("ClockChange")),
                 "responses": {"200": _json(_ref("Clock")), **BAD}},
        "delete": {"summary": "Back to real time",
                   "responses": {"200": _json(_ref("Clock"))}}},
    "/_emulator/openapi.json": {"get": {
        "summary": "This document", "responses": {"200": _json({"type": "object"})}}},
    "/_emulator/ui/": {"get": {
        "summary": "The inbox page", "parameters": [PORTAL, _q("recipient", "User id"),
                                                    _q("token", "Control token")],
        "responses": {"200": {"description": "HTML",
                              "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    "/_emulator/ui/static/{filename}": {"get": {
        "summary": "Assets of the inbox page",
        "parameters": [{"name": "filename", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The file"}, "404": {"description": "No file"}}}},
    "/_emulator/ui/events": {"get": {
        "summary": "Server-Sent Events of one recipient's notifications",
        "parameters": [PORTAL, _q("recipient", "User id", {"type": "integer"})],
        "responses": {"200": {"description": "event stream", "content": {
            "text/event-stream": {"schema": {"type": "string"}}}}, **BAD, **NOT_FOUND}}},
}

# --- events (b24emu.control.events) -------------------------------------------------------------
SCHEMAS.update({
    "FireEvent": {"type": "object", "required": ["event"], "additionalProperties": False,
                  "properties": {
                      "event": {"type": "string", "description": "e.g. ONCRMDEALUPDATE"},
                      "data": {"description": "The event's data, e.g. {\"FIELDS\": {\"ID\": 5}}"},
                      "portal": {"type": "string"},
                      "user": {"type": ["integer", "null"],
                               "description": "Who caused it; absent: the first admin; null: "
                                              "nobody (no tokens)"},
                      "auth_connector": {"type": "string"}}},
    "Fired": {"type": "object", "properties": {
        "portal": {"type": "string"}, "event": {"type": "string"},
        "deliveries": {"type": "array", "items": {"type": "integer"}},
        "offline": {"type": "integer"}}},
    "Delivery": {"type": "object", "properties": {
        "id": {"type": "integer"}, "event": {"type": "string"},
        "handler_id": {"type": "integer"}, "client_id": {"type": "string"},
        "url": {"type": "string"}, "data": {}, "user_id": {"type": ["integer", "null"]},
        "status": {"enum": ["queued", "sending", "delivered", "failed", "dropped"]},
        "created_at": {"type": "number"}, "sent_at": {"type": ["number", "null"]},
        "duration": {"type": ["number", "null"]},
        "http_status": {"type": ["integer", "null"]},
        "response": {"type": ["string", "null"], "description": "first 1000 characters"},
        "error": {"type": ["string", "null"]}}},
    "EventHandler": {"type": "object", "properties": {
        "id": {"type": "integer"}, "client_id": {"type": "string"}, "event": {"type": "string"},
        "handler": {"type": "string"}, "auth_type": {"type": "integer"},
        "offline": {"type": "boolean"}, "connector_id": {"type": "string"},
        "options": {"type": "object"}}},
    "InstallApp": {"type": "object", "additionalProperties": False, "properties": {
        "handler": {"type": "string", "description": "install handler URL (bound to "
                                                     "ONAPPINSTALL)"},
        "user": {"type": "integer", "description": "installing user (default: first admin)"},
        "version": {"type": "string", "default": "1"},
        "language": {"type": "string", "default": "en"}}},
})
PATHS.update({
    "/_emulator/events": {"post": {
        "summary": "Fire an event at the apps' handlers (delivered in the background)",
        "parameters": [PORTAL], "requestBody": _body(_ref("FireEvent"), required=True),
        "responses": {"202": _json(_ref("Fired"), "Queued"), **BAD, **NOT_FOUND}}},
    "/_emulator/events/deliveries": {"get": {
        "summary": "Event deliveries, newest first",
        "parameters": [PORTAL, _q("event", "Event name"),
                       _q("status", "queued, sending, delivered, failed or dropped")] + PAGING,
        "responses": {"200": _json(_page("Delivery")), **BAD, **NOT_FOUND}}},
    "/_emulator/events/deliveries/{id}": {"get": {
        "summary": "One delivery", "parameters": [_path_id(), PORTAL],
        "responses": {"200": _json(_ref("Delivery")), **NOT_FOUND}}},
    "/_emulator/events/handlers": {"get": {
        "summary": "Handlers the apps bound with event.bind", "parameters": [PORTAL],
        "responses": {"200": _json({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("EventHandler")}}})}}},
    "/_emulator/apps/{client_id}/install": {"post": {
        "summary": "Install (activate) an app and send it ONAPPINSTALL",
        "parameters": [{"name": "client_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}, PORTAL],
        "requestBody": _body(_ref("InstallApp")),
        "responses": {"202": _json(_ref("Fired"), "Queued"), **BAD, **NOT_FOUND}}},
})

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "b24emu control API", "version": "1",
             "description": "The emulator's own endpoints: inspect notifications and the "
                            "request journal, inject faults, move the clock, seed and reset "
                            "portals. Loopback only unless B24EMU_CONTROL_TOKEN is set, then "
                            "`Authorization: Bearer <token>`. Without a token only a known "
                            "Host is answered (localhost, loopback addresses, the portals' "
                            "domains, B24EMU_ALLOWED_HOSTS), else 403 forbidden_host. POST, "
                            "PUT, PATCH and DELETE take an application/json body (else 415 "
                            "unsupported_media_type) or no body and the header "
                            "`X-B24EMU-Control: 1` (else 403 control_header_required); a "
                            "foreign Origin is 403 forbidden_origin."},
    "components": {"schemas": SCHEMAS, "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{}, {"bearer": []}],
    "paths": PATHS,
}


@bp.get("/openapi.json")
def openapi():
    """The document."""
    return jsonify(DOCUMENT)
