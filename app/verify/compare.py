"""Replay recorded calls against the emulator and compare the answers' shapes.

Each call is sent as it was recorded (HTTP method, query, content type, body) with the
emulator's own credentials: a webhook recording goes to the emulator's webhook URL, an OAuth
recording carries the emulator's access token as `auth`. What is compared:

- the HTTP status;
- for errors, the code and the description (values);
- for results, the type of `result` and, recursively, the keys of every object with the JSON
  type of each value (`string`, `number`, `boolean`, `null`, `array`, `object`), list items
  position by position; the top-level keys (`next`, `total`); the keys of `time`.

Values that must differ between two portals (ids, times, dates, texts) are compared by type
only. PHP writes an empty map as `[]`, so an empty array and an object are the same type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import requests

MAX_DIFFERENCES_PER_CALL = 50


@dataclass
class Difference:
    """One place where the emulator's answer is shaped differently from the portal's."""

    path: str
    portal: str
    emulator: str

    def text(self) -> str:
        """`result.ID: portal string, emulator number`."""
        if self.emulator == "missing":
            return f"{self.path}: only in the portal ({self.portal})"
        if self.portal == "missing":
            return f"{self.path}: only in the emulator ({self.emulator})"
        return f"{self.path}: portal {self.portal}, emulator {self.emulator}"


@dataclass
class CallReport:
    """The outcome of one replayed call."""

    index: int
    method: str
    portal_status: int
    emulator_status: int | None
    differences: list[Difference] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"index": self.index, "method": self.method, "portal_status": self.portal_status,
                "emulator_status": self.emulator_status,
                "differences": [{"path": d.path, "portal": d.portal, "emulator": d.emulator,
                                 "text": d.text()} for d in self.differences]}


def json_type(value) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _kind(value) -> str:
    """The type used for comparing: an empty array counts as an (empty) object."""
    kind = json_type(value)
    return "object" if kind == "array" and not value else kind


def compare_shapes(portal, emulator, path: str, out: list[Difference]) -> None:
    """Append the differences between two values' shapes."""
    if len(out) >= MAX_DIFFERENCES_PER_CALL:
        return
    portal_kind, emulator_kind = _kind(portal), _kind(emulator)
    if isinstance(portal, list) and isinstance(emulator, list):
        for index, (left, right) in enumerate(zip(portal, emulator, strict=False)):
            compare_shapes(left, right, f"{path}[{index}]", out)
        return
    if portal_kind == "object" and emulator_kind == "object":
        left = _as_mapping(portal)
        right = _as_mapping(emulator)
        for key in left:
            if key not in right:
                out.append(Difference(f"{path}.{key}", json_type(left[key]), "missing"))
        for key in right:
            if key not in left:
                out.append(Difference(f"{path}.{key}", "missing", json_type(right[key])))
        for key in left:
            if key in right:
                compare_shapes(left[key], right[key], f"{path}.{key}", out)
        return
    if portal_kind != emulator_kind:
        out.append(Difference(path, json_type(portal), json_type(emulator)))


def _as_mapping(value) -> dict:
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    return {str(index): item for index, item in enumerate(value)}


def compare_answers(status: int, portal, emulator_status: int, emulator) -> list[Difference]:
    """Every difference between a recorded answer and the emulator's."""
    out: list[Difference] = []
    if status != emulator_status:
        out.append(Difference("status", str(status), str(emulator_status)))
    if not isinstance(portal, dict) or not isinstance(emulator, dict):
        if json_type(portal) != json_type(emulator):
            out.append(Difference("body", _body_kind(portal), _body_kind(emulator)))
        return out
    portal_error, emulator_error = "error" in portal, "error" in emulator
    if portal_error or emulator_error:
        for key in ("error", "error_description"):
            if portal.get(key) != emulator.get(key):
                out.append(Difference(key, _quoted(portal.get(key)), _quoted(emulator.get(key))))
        if portal_error != emulator_error:
            out.append(Difference("result", "missing" if portal_error else
                                  json_type(portal.get("result")),
                                  "missing" if emulator_error else
                                  json_type(emulator.get("result"))))
        return out
    for key in portal:
        if key not in emulator:
            out.append(Difference(key, json_type(portal[key]), "missing"))
    for key in emulator:
        if key not in portal:
            out.append(Difference(key, "missing", json_type(emulator[key])))
    if "result" in portal and "result" in emulator:
        compare_shapes(portal["result"], emulator["result"], "result", out)
    if isinstance(portal.get("time"), dict) and isinstance(emulator.get("time"), dict):
        compare_shapes(portal["time"], emulator["time"], "time", out)
    for key in ("next", "total"):
        if key in portal and key in emulator and _kind(portal[key]) != _kind(emulator[key]):
            out.append(Difference(key, json_type(portal[key]), json_type(emulator[key])))
    return out[:MAX_DIFFERENCES_PER_CALL]


def _quoted(value) -> str:
    return "missing" if value is None else json.dumps(value, ensure_ascii=False)


def _body_kind(value) -> str:
    return "not JSON" if value is None else json_type(value)


class Replayer:
    """Sends recorded calls to one emulator with its own credentials."""

    def __init__(self, url: str, *, webhook: str = "1/devtoken",
                 token: str = "devaccesstoken",  # noqa: S107 (the default portal's dev token)
                 timeout: float = 60.0, verify: bool | str = True):
        self.url = url.rstrip("/")
        self.webhook = webhook.strip("/")
        self.token = token
        self.timeout = timeout
        self.verify = verify
        self.session = requests.Session()  # REQUESTS_CA_BUNDLE applies (b24emu serve --tls)

    def send(self, call: dict, auth: str) -> requests.Response:
        """One recorded request, with the emulator's credentials."""
        request = call["request"]
        segment = call.get("path_method") or call["method"]
        query = request.get("query") or ""
        if auth == "oauth":
            url = f"{self.url}/rest/{segment}"
            query = "&".join(part for part in (query, f"auth={self.token}") if part)
        else:
            url = f"{self.url}/rest/{self.webhook}/{segment}"
        headers = {"Content-Type": request["content_type"]} if request.get("content_type") else {}
        body = (request.get("body") or "").encode("utf-8")
        method = request.get("http_method") or "POST"
        return self.session.request(method, url + (f"?{query}" if query else ""),
                                    data=body if method != "GET" else None, headers=headers,
                                    timeout=self.timeout, verify=self.verify)


def verify(recording: dict, replayer: Replayer) -> list[CallReport]:
    """Replay every call; a report per call."""
    reports = []
    for index, call in enumerate(recording["calls"], start=1):
        response = replayer.send(call, recording.get("auth", "webhook"))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        differences = compare_answers(call["status"], call.get("response"),
                                      response.status_code, answer)
        reports.append(CallReport(index, call["method"], call["status"], response.status_code,
                                  differences))
    return reports


def table(reports: list[CallReport]) -> str:
    """The readable report: one line per call, one more per further difference."""
    rows = [["#", "METHOD", "PORTAL", "EMULATOR", "DIFFERENCE"]]
    for report in reports:
        texts = [d.text() for d in report.differences] or ["-"]
        rows.append([str(report.index), report.method, str(report.portal_status),
                     str(report.emulator_status), texts[0]])
        rows.extend(["", "", "", "", text] for text in texts[1:])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths,
                                                                     strict=True)), row[4]])
             .rstrip() for row in rows]
    different = sum(1 for report in reports if report.differences)
    lines.append(f"{len(reports)} calls replayed, {different} with differences")
    return "\n".join(lines)


def as_json(reports: list[CallReport]) -> dict:
    """The report for tools."""
    return {"calls": [report.as_json() for report in reports], "total": len(reports),
            "different": sum(1 for report in reports if report.differences)}
