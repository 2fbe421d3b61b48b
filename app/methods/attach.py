"""ATTACH: how a notification's attachment is decoded, validated and normalized (spec B 3).

A port of ``CIMMessageParamAttach::GetAttachByJson`` and its block setters (Bitrix im module,
``classes/general/im_message_param.php``). The result is what the portal stores and what
``im.notify.get`` returns inside ``params``: ``{"ID", "BLOCKS", "DESCRIPTION", "COLOR"?}``.

Input shapes (B 3.1): a string is decoded the way ``CUtil::JsObjectToPhp($s, true)`` does (see
``js_object_to_php``); an array with ``BLOCKS`` is the full form, any other array is the list of
blocks. Each block's first key among USER, LINK, RICH_LINK, MESSAGE, GRID, IMAGE, FILE, DELIMITER
decides its type; blocks and items that fail their rule are skipped; nothing left means ``None``
(the caller's ATTACH_ERROR). Falsy values ("", "0", [], absent) are the caller's business: they
mean "no attach" and never reach ``normalize_attach`` (``check_attach`` handles that for you).

Decisions where the portal's code and the spec part ways:

* ``ID`` is always ``attach_id``: current code ignores the input ID and uses ``time()``.
* ``COLOR``: "TRANSPARENT" -> "transparent"; absent or "CHAT" -> no COLOR (spec B 3.1; the
  current constructor would store a random colour there too); a valid hex -> kept; anything
  else -> ``pick_color()``, by default a random colour of ``Bitrix\\Im\\Color``'s palette.
* ``COLOR_TOKEN`` (documented, absent from the code found): kept at attach level (full form)
  and on GRID items when it is one of primary|secondary|alert|base, else dropped.
* Where PHP 8 would throw a TypeError (an array where a string is expected, or a GRID item
  that is a string), the portal answers with an internal error; here the value counts as ""
  and the item is skipped.
* String decoding has caps PHP lacks (``MAX_JS_DEPTH``, ``JS_WORK_PER_CHAR``): beyond, ``None``.
* Size: ``attach_json_length`` is the length of the PHP-style JSON (``php.json_dumps``, pure
  ASCII). Where PHP's ``json_encode`` would fail (nesting over 512, NaN) it returns
  ``sys.maxsize``, so the attach is oversize, as ``IsAllowSize()`` then is on a portal.
* Read-side rewriting (``PrepareAttach``: DESCRIPTION "FIRST_MESSAGE") is not done here.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable

from b24emu import php

DEFAULT_MAX_BYTES = 30720  # Part A 5: 30 KB; the cloud's figure is 60000
MAX_JS_DEPTH = 64  # our caps on CUtil::JsObjectToPhp, which has none: nesting levels,
JS_WORK_PER_CHAR = 16  # and how many times each character may be rescanned
_JSON_MAX_DEPTH = 512  # json_encode's default depth
# Bitrix\Im\Color::$colors (newest copy found); getRandomColor picks any of them.
PALETTE = (
    "#df532d", "#64a513", "#4ba984", "#4ba5c3", "#3e99ce", "#8474c8", "#1eb4aa", "#f76187",
    "#58cc47", "#ab7761", "#29619b", "#728f7a", "#ba9c7b", "#e8a441", "#556574", "#909090",
    "#5e5f5e",
)  # fmt: skip
COLOR_TOKENS = ("primary", "secondary", "alert", "base")
_URL_PREFIXES = ("/", "http://", "https://")  # '#^(?:/|https?://)#'
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?")  # '/^#...\b$/D'
_NEWLINE = re.compile(r"\r\n|[\n\x0b\x0c\r\x85\u2028\u2029]")  # '/\R/u'
_SERVICE_SYMBOLS = (("\\n", "\n"), ("\\t", "\t"), ('\\"', '"'), ("\\\\", "\\"))


class AttachError(Exception):
    """A truthy ATTACH that normalizes to nothing."""

    code = "ATTACH_ERROR"
    description = "Incorrect attach params"


class AttachOversize(Exception):
    """A normalized ATTACH whose JSON is longer than the limit."""

    code = "ATTACH_OVERSIZE"
    description = "You have exceeded the maximum allowable size of attach"


class _Undecodable(Exception):
    """A string that js_object_to_php gives up on (see there)."""


def check_attach(value, *, attach_id: int, max_bytes: int, pick_color=None) -> dict | None:
    """The im.notify* ATTACH step: None for a falsy value, else the normalized attach.

    Raises AttachError for a truthy value that normalizes to nothing and AttachOversize when
    its JSON is longer than ``max_bytes`` (im_rest.php: GetAttachByJson, then IsAllowSize).
    """
    if not php.truthy(value):
        return None
    attach = normalize_attach(value, attach_id=attach_id, pick_color=pick_color)
    if attach is None:
        raise AttachError(AttachError.description)
    if attach_json_length(attach) > max_bytes:
        raise AttachOversize(AttachOversize.description)
    return attach


def normalize_attach(
    value, *, attach_id: int, pick_color: Callable[[], str] | None = None
) -> dict | None:
    """CIMMessageParamAttach::GetAttachByJson + its block setters: the normalized attach
    {"ID": attach_id, "BLOCKS": [...], "DESCRIPTION": "...", "COLOR": ...?} or None when the value
    is not an array after decoding or no block survived. pick_color returns a palette colour for an
    invalid COLOR (default: random choice from the Bitrix palette)."""
    try:
        return _normalize(value, attach_id, pick_color or _random_color)
    except RecursionError:  # pre-decoded arrays nested about 1000 deep
        return None


def attach_json_length(attach: dict) -> int:
    """Length of the PHP-style JSON of a normalized attach (pure ASCII, so bytes == characters)."""
    if _nesting_depth(attach) > _JSON_MAX_DEPTH:
        return sys.maxsize
    try:
        return len(php.json_dumps(attach))
    except (ValueError, TypeError, RecursionError):
        return sys.maxsize


def _normalize(value, attach_id: int, pick_color: Callable[[], str]) -> dict | None:
    """GetAttachByJson on any input shape."""
    if isinstance(value, str):
        value = js_object_to_php(value)
    if not isinstance(value, (list, dict)):
        return None
    value = _convert_service_symbols(value)
    blocks, color, token, description = value, "CHAT", None, ""
    if _field(value, "BLOCKS") is not None:  # full form: only it reads COLOR and DESCRIPTION
        blocks = value["BLOCKS"]
        color = value["COLOR"] if _field(value, "COLOR") is not None else "CHAT"
        token = _field(value, "COLOR_TOKEN")
        description = _field(value, "DESCRIPTION")
    attach = {"ID": attach_id, "BLOCKS": [], "DESCRIPTION": _description(description)}
    for data in php.array_values(blocks):
        _add_block(attach, data)
    if not attach["BLOCKS"]:
        return None
    if token in COLOR_TOKENS:
        attach["COLOR_TOKEN"] = token
    stored_color = _attach_color(color, pick_color)
    if stored_color is not None:
        attach["COLOR"] = stored_color
    return attach


def _random_color() -> str:
    """Bitrix\\Im\\Color::getRandomColor."""
    return random.choice(PALETTE)


def _attach_color(color, pick_color: Callable[[], str]) -> str | None:
    """SetColor: the stored COLOR, or None for CHAT (PHP's loose ==, so true is TRANSPARENT)."""
    if _php_eq(color, "TRANSPARENT"):
        return "transparent"
    if _php_eq(color, "CHAT"):
        return None
    return color if _is_hex_color(color) else pick_color()


def _description(value) -> str:
    """SetDescription: newlines to spaces, HTML to BB codes, trimmed."""
    return php.trim(_html_to_bbcode(_one_line(value)))


# --- blocks -------------------------------------------------------------------------------


def _add_block(attach: dict, data) -> None:
    """One element of the blocks list; its first recognised key decides the type."""
    for kind, add in _BLOCK_HANDLERS:
        value = _field(data, kind)
        if value is not None:
            add(attach, value)
            return


def _add_each(kind: str, build: Callable) -> Callable:
    """USER, LINK, RICH_LINK: one object or a list; every valid item is a block of its own."""

    def add(attach: dict, value) -> None:
        for params in _objects(value):
            item = build(params)
            if item is not None:
                attach["BLOCKS"].append({kind: [item]})

    return add


def _add_list(kind: str, build: Callable, *, wrap_object: bool) -> Callable:
    """GRID, IMAGE, FILE: one block holding every valid item, skipped when none is valid."""

    def add(attach: dict, value) -> None:
        items = _objects(value) if wrap_object else php.array_values(value)
        rows = [row for row in map(build, items) if row is not None]
        if rows:
            attach["BLOCKS"].append({kind: rows})

    return add


def _add_message(attach: dict, value) -> None:
    """AddMessage: a string or {TEXT, AS_DESCRIPTION: 'Y'}; trimmed, #BR# -> [BR], not empty."""
    as_description = False
    if _field(value, "TEXT") is not None:
        value, as_description = value["TEXT"], _field(value, "AS_DESCRIPTION") == "Y"
    text = php.trim(value)
    if text == "":
        return
    text = text.replace("#BR#", "[BR]")
    if as_description:
        attach["DESCRIPTION"] = text
    attach["BLOCKS"].append({"MESSAGE": text})


def _add_delimiter(attach: dict, value) -> None:
    """AddDelimiter: always added (any non-null value); SIZE defaults to 200."""
    size = php.intval(_field(value, "SIZE"))
    delimiter = {"SIZE": size if size > 0 else 200}
    if _is_hex_color(_field(value, "COLOR")):
        delimiter["COLOR"] = value["COLOR"]
    attach["BLOCKS"].append({"DELIMITER": delimiter})


def _user(params) -> dict | None:
    """AddUser: NAME required; then NETWORK_ID, USER_ID, CHAT_ID, BOT_ID or LINK."""
    name = _field(params, "NAME")
    if name is None or php.trim(name) == "":
        return None
    user = {"NAME": _one_line(name), "AVATAR_TYPE": "USER"}  # NAME is not trimmed here
    if _field(params, "NETWORK_ID") is not None:
        user["NETWORK_ID"] = _network_id(params["NETWORK_ID"])
    elif php.intval(_field(params, "USER_ID")) > 0:
        user["USER_ID"] = php.intval(params["USER_ID"])
    elif php.intval(_field(params, "CHAT_ID")) > 0:
        user.update(CHAT_ID=php.intval(params["CHAT_ID"]), AVATAR_TYPE="CHAT")
    elif php.intval(_field(params, "BOT_ID")) > 0:
        user.update(BOT_ID=php.intval(params["BOT_ID"]), AVATAR_TYPE="BOT")
    elif _is_url(_field(params, "LINK")):
        user["LINK"] = params["LINK"]
    if _is_url(_field(params, "AVATAR")):
        user["AVATAR"] = params["AVATAR"]
    avatar_type = _field(params, "AVATAR_TYPE")
    if any(_php_eq(avatar_type, kind) for kind in ("CHAT", "USER", "BOT")):
        user["AVATAR_TYPE"] = avatar_type
    return user


def _link_head(params) -> dict | None:
    """AddLink/AddRichLink's common part: the target, NAME and LINK (unchecked after an id)."""
    name = _field(params, "NAME")
    link = {}
    if _field(params, "NETWORK_ID") is not None and name is not None:
        link["NETWORK_ID"] = _network_id(params["NETWORK_ID"])
    elif php.intval(_field(params, "USER_ID")) > 0 and name is not None:
        link["USER_ID"] = php.intval(params["USER_ID"])
    elif php.intval(_field(params, "CHAT_ID")) > 0 and name is not None:
        link["CHAT_ID"] = php.intval(params["CHAT_ID"])
    elif not _is_url(_field(params, "LINK")):
        return None
    if name is not None:
        link["NAME"] = _one_line(php.trim(name))
    if _field(params, "LINK") is not None:
        link["LINK"] = params["LINK"]
    return link


def _link(params) -> dict | None:
    """AddLink: DESC and HTML kept as sent; PREVIEW (with WIDTH/HEIGHT) only without HTML."""
    link = _link_head(params)
    if link is None:
        return None
    for key in ("DESC", "HTML"):
        if _field(params, key) is not None:
            link[key] = params[key]
    if "HTML" not in link and _is_url(_field(params, "PREVIEW")):
        link["PREVIEW"] = params["PREVIEW"]
        _copy_positive(params, link, "WIDTH", "HEIGHT")
    return link


def _rich_link(params) -> dict | None:
    """AddRichLink (undocumented): one-line DESC/HTML, PREVIEW with PREVIEW_SIZE, EXTRA_IMAGE."""
    link = _link_head(params)
    if link is None:
        return None
    for key in ("DESC", "HTML"):
        if _field(params, key) is not None:
            link[key] = _one_line(php.trim(params[key]))
    if _is_url(_field(params, "PREVIEW")):
        size = _field(params, "PREVIEW_SIZE")
        link["PREVIEW"] = params["PREVIEW"]
        link["PREVIEW_SIZE"] = {  # $params['PREVIEW_SIZE'][$key] ?? 0, kept as sent
            key: 0 if _field(size, key) is None else size[key] for key in ("HEIGHT", "WIDTH")
        }
    elif _is_url(_field(params, "EXTRA_IMAGE")):
        link["EXTRA_IMAGE"] = params["EXTRA_IMAGE"]
    return link


def _grid_item(grid) -> dict | None:
    """AddGrid's item: skipped when not LINE and both NAME and VALUE are blank."""
    if not isinstance(grid, dict):
        return None
    display, name, value = grid.get("DISPLAY"), grid.get("NAME"), grid.get("VALUE")
    blank = (name is None and value is None) or (php.trim(name) == php.trim(value) == "")
    if not _php_eq(display, "LINE") and blank:
        return None
    row = {
        "DISPLAY": _grid_display(display),
        "NAME": _one_line(php.trim(name)),
        "VALUE": php.trim(value).replace("#BR#", "[BR]"),
    }
    if grid.get("COLOR_TOKEN") in COLOR_TOKENS:
        row["COLOR_TOKEN"] = grid["COLOR_TOKEN"]
    if _is_hex_color(grid.get("COLOR")):
        row["COLOR"] = grid["COLOR"]
    _copy_positive(grid, row, "WIDTH", "HEIGHT", "USER_ID", "CHAT_ID")
    if _is_url(grid.get("LINK")):
        row["LINK"] = grid["LINK"]
    return row


def _grid_display(display) -> str:
    """DISPLAY: BLOCK, LINE, ROW, TABLE kept; CARD -> LINE, COLUMN -> ROW; else BLOCK."""
    if display is True:  # in_array and == are loose: true equals 'COLUMN', hence ROW
        return "ROW"
    if not isinstance(display, str):
        return "BLOCK"
    if display in ("BLOCK", "LINE", "ROW", "TABLE"):
        return display
    return {"CARD": "LINE", "COLUMN": "ROW"}.get(display, "BLOCK")


def _image(params) -> dict | None:
    """AddImages' item: LINK (URL) required; NAME trimmed, comes first; WIDTH, HEIGHT, PREVIEW."""
    if not _is_url(_field(params, "LINK")):
        return None
    image = {}
    if php.trim(_field(params, "NAME")) != "":
        image["NAME"] = php.trim(params["NAME"])
    image["LINK"] = params["LINK"]
    _copy_positive(params, image, "WIDTH", "HEIGHT")
    if _is_url(params.get("PREVIEW")):
        image["PREVIEW"] = params["PREVIEW"]
    return image


def _file(params) -> dict | None:
    """AddFiles' item: LINK (URL) required; NAME on one line; SIZE > 0."""
    if not _is_url(_field(params, "LINK")):
        return None
    file = {"LINK": params["LINK"]}
    if php.trim(params.get("NAME")) != "":
        file["NAME"] = _one_line(php.trim(params["NAME"]))
    _copy_positive(params, file, "SIZE")
    return file


_BLOCK_HANDLERS = (  # GetAttachByJson's order of tests
    ("USER", _add_each("USER", _user)),
    ("LINK", _add_each("LINK", _link)),
    ("RICH_LINK", _add_each("RICH_LINK", _rich_link)),
    ("MESSAGE", _add_message),
    ("GRID", _add_list("GRID", _grid_item, wrap_object=False)),
    ("IMAGE", _add_list("IMAGE", _image, wrap_object=True)),
    ("FILE", _add_list("FILE", _file, wrap_object=True)),
    ("DELIMITER", _add_delimiter),
)


# --- PHP value helpers --------------------------------------------------------------------


def _field(container, key):
    """``$container[$key]`` where isset() holds, else None (a scalar has no named keys)."""
    return container.get(key) if isinstance(container, dict) else None


def _objects(value) -> list:
    """One object or a list of them (Collection::isAssociative decides)."""
    if isinstance(value, list) or (isinstance(value, dict) and php.is_list_shaped(value)):
        return php.array_values(value)
    return [value]


def _copy_positive(source: dict, target: dict, *keys: str) -> None:
    """Copy ``intval(source[key])`` for each key where it is > 0."""
    for key in keys:
        number = php.intval(source.get(key))
        if number > 0:
            target[key] = number


def _php_eq(value, constant: str) -> bool:
    """PHP 8 ``value == 'CONSTANT'`` for a non-numeric constant: true equals it too."""
    return value is True or (isinstance(value, str) and value == constant)


def _is_url(value) -> bool:
    """preg_match('#^(?:/|https?://)#'): absolute http(s) or a path from the portal root."""
    return isinstance(value, str) and value.startswith(_URL_PREFIXES)


def _is_hex_color(value) -> bool:
    """The #rgb / #rrggbb test used for every COLOR."""
    return isinstance(value, str) and _HEX_COLOR.fullmatch(value) is not None


def _one_line(value) -> str:
    """removeNewLine: every line break (\\R) becomes one space."""
    return _NEWLINE.sub(" ", php.to_str(value))


def _network_id(value) -> str:
    """First character HTML-escaped, then intval of the rest ("N123" -> "N123")."""
    text = php.to_str(value)
    first = {"&": "&amp;", '"': "&quot;", "<": "&lt;", ">": "&gt;"}.get(text[:1], text[:1])
    return first + str(php.intval(text[1:]))


def _convert_service_symbols(value):
    """convertServiceSymbolsForJson: literal \\n, \\t, \\" and \\\\ in strings, in that order."""
    if isinstance(value, str):
        for escaped, char in _SERVICE_SYMBOLS:
            value = value.replace(escaped, char)
        return value
    if isinstance(value, list):  # map(): one Python frame per level, no comprehension frame
        return list(map(_convert_service_symbols, value))
    if isinstance(value, dict):
        return dict(zip(value, map(_convert_service_symbols, value.values()), strict=True))
    return value


def _nesting_depth(value) -> int:
    """How many arrays deep a value goes (iterative: hostile input may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


# --- \Bitrix\Im\Text::convertHtmlToBbCode (DESCRIPTION only) -------------------------------

_COLOR_TAG = r"""<{0}[^>]+color\s*=[\s'"]*#([0-9a-f]{{3}}|[0-9a-f]{{6}})[\s'"]*>(.+?)</{0}[^>]*>"""
_HTML_RULES = tuple(  # (pattern, replacement, tag closing every match, repeat until stable)
    (re.compile(pattern, flags), replacement, closer, repeat)
    for pattern, flags, replacement, closer, repeat in (
        (r"<([busi])[^>a-z]*>(.+?)</(\1)[^>a-z]*>", re.I | re.S, r"[\1]\2[/\1]", "[busi]", True),
        (r"<br\s*/*>", re.I | re.S, "[br]", None, False),
        (r"""<a[^>]+href\s*=\s*('|")(.+?)(?:\1)[^>]*>(.*?)</a[^>]*>""", re.I | re.S,
         r"[url=\2]\3[/url]", "a", False),
        (r"""<a[^>]+href(\s*=\s*)([^'">]+)>(.*?)</a[^>]*>""", re.I | re.S,
         r"[url=\2]\3[/url]", "a", False),
        (_COLOR_TAG.format("font"), re.I, r"[color=#\1]\2[/color]", "font", False),
        (_COLOR_TAG.format("span"), re.I, r"[color=#\1]\2[/color]", "span", False),
        (r"""<font[^>]+size\s*=[\s'"]*(\d+)[\s'"]*>(.+?)</font[^>]*>""", re.I,
         r"[size=\1]\2[/size]", "font", False),
        (r"<div(?:.*?)>(.*?)</div>", re.I, r"\1", "div", True),
        (r"<span(?:.*?)>(.*?)</span>", re.I, r"\1", "span", True),
        (r"<font(?:.*?)>(.*?)</font>", re.I, r"\1", "font", False),
    )
)  # fmt: skip
_CLOSERS = {tag: re.compile(rf"</{tag}", re.I) for tag in ("[busi]", "a", "font", "span", "div")}


def _html_to_bbcode(html: str) -> str:
    """B, U, S, I, BR, A, colour and size to BB codes; DIV, SPAN, FONT unwrapped."""
    html = html.replace("&nbsp;", " ").replace("<hr>", "------[BR]").replace("#BR#", "[BR]")
    if "<" not in html:
        return html
    for pattern, replacement, closer, repeat in _HTML_RULES:
        while True:
            html, count = _sub_before_last_closer(pattern, replacement, closer, html)
            if not (repeat and count):
                break
    return html


def _sub_before_last_closer(pattern, replacement: str, closer: str | None, html: str):
    """pattern.subn on the part of html a match can reach: up to the '>' after the last closer.

    Same result as on the whole string (a match ends with the closer), but a string full of
    openers and no closer after them costs linear time instead of cubic.
    """
    end = len(html)
    if closer is not None:
        last = None
        for last in _CLOSERS[closer].finditer(html):  # noqa: B007 - only the last one counts
            pass
        if last is None:
            return html, 0
        end = html.find(">", last.start()) + 1 or last.start()
    head, count = pattern.subn(replacement, html[:end])
    return head + html[end:], count


# --- CUtil::JsObjectToPhp($s, true) --------------------------------------------------------

_WS = " \t\n\x0b\x0c\r"  # PCRE's \s without /u
# '/[\s]*([{}\[\]\"])[\s]*/' -> '\1', as "drop whitespace runs touching a quote or bracket"
_JS_SPACE = re.compile(rf'(?<![{_WS}])[{_WS}]++(?=[{{}}\[\]"])|(?<=[{{}}\[\]"])[{_WS}]+')
_JS_SPECIAL = re.compile(r"[\"'{}\[\],]")
_JS_UTF16 = re.compile(r"\\u([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})")


def js_object_to_php(text: str):
    """Bitrix's hand-written JS-object parser (``$bSkipNative = true``: no json_decode).

    Lenient: single quotes, bare keys and trailing text are accepted. Scalars stay strings
    ("5", "true", "null"); only ``\\uXXXX`` is unescaped here (the rest by
    convertServiceSymbolsForJson, and ``\\/`` never). Whitespace next to quotes and brackets is
    removed even inside strings, and a bracket inside a string still counts. An unterminated
    object or array is ``False``; empty text is ``None``. Our caps, where PHP has none: more than
    ``MAX_JS_DEPTH`` levels, or rescanning the text more than ``JS_WORK_PER_CHAR`` times, is
    ``None``; so is an array used as a key (a TypeError in PHP 8).
    """
    decoder = _JsDecoder(budget=JS_WORK_PER_CHAR * len(text) + 4096)
    try:
        return decoder.value(text, 0)
    except _Undecodable:
        return None


class _JsDecoder:
    """One JsObjectToPhp call: recursion over pieces, with a budget of characters to scan."""

    def __init__(self, budget: int):
        self.budget = budget

    def value(self, data: str, depth: int):
        """JsObjectToPhp on one piece: an object, an array or a scalar string."""
        self.budget -= len(data)
        if depth > MAX_JS_DEPTH or self.budget < 0:
            raise _Undecodable("too deep or too costly")
        data = php.trim(_JS_SPACE.sub("", data))
        if data[:1] in ("{", "["):
            pieces = _js_split(data)
            if pieces is None:
                return False
            return self._list(pieces, depth) if data[0] == "[" else self._object(pieces, depth)
        if data == "":
            return None
        if data[0] in "\"'":
            data = data[1:-1]
        return _JS_UTF16.sub(_decode_utf16, data) if "\\u" in data else data

    def _list(self, pieces: list[str], depth: int) -> list:
        """An array: every piece, but an empty last one is dropped (so "[]" and "[1,]" work)."""
        items = [self.value(piece, depth + 1) for piece in pieces]
        if items[-1] is None:
            items.pop()
        return items

    def _object(self, pieces: list[str], depth: int):
        """An object of "key:value" pieces, with PHP's key rules ("5" -> 5, null -> "")."""
        result = {}
        for piece in pieces:
            name, colon, raw = piece.partition(":")
            key = self.value(name[1:-1] if name[:1] == '"' else name, depth + 1)
            if isinstance(key, (list, dict)):
                raise _Undecodable("array used as a key")  # PHP 8: "Illegal offset type"
            key = key if isinstance(key, str) else {None: "", False: 0}[key]
            result[php.canonical_int_key(key)] = self.value(raw, depth + 1) if colon else None
        return list(result.values()) if php.is_list_shaped(result) else result


def _js_split(data: str) -> list[str] | None:
    """The comma-separated pieces between data[0] and its closing bracket, or None if unclosed."""
    closer = "}" if data[0] == "{" else "]"
    depth, in_string, delimiter, commas = 0, False, "", []
    for match in _JS_SPECIAL.finditer(data, 1):
        i, char = match.start(), match.group()
        if char in "\"'":
            if data[i - 1] != "\\" and delimiter in ("", char):
                in_string = not in_string
                delimiter = char if in_string else ""
        elif char in "{[":
            depth += 1
        elif char == closer:
            if depth == 0:
                break
            depth -= 1
        elif char in "}]":
            depth -= 1
        elif char == "," and depth == 0 and not in_string:
            commas.append(i)
    else:
        return None
    bounds = [0, *commas, i]
    return [data[start + 1 : stop] for start, stop in zip(bounds, bounds[1:], strict=False)]


def _decode_utf16(match: re.Match) -> str:
    """CUtil::DecodeUtf16: one code unit, read little-endian; BOMs vanish, lone surrogates '?'."""
    unit = int(match.group(1) + match.group(2), 16)
    if unit in (0xFEFF, 0xFFFE):
        return ""
    return "?" if 0xD800 <= unit <= 0xDFFF else chr(unit)
