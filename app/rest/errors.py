"""Bitrix24 errors as data: code, description and HTTP status (spec Part A 3-4, B 1.3, 4.3, 6).

Anything raised as a `BitrixError` is answered as ``{"error", "error_description"}`` with its
status and no ``time`` key; the one place that does that is `b24emu.rest.envelope.error_response`.
"""

from __future__ import annotations


class BitrixError(Exception):
    """An error a portal answers with; `extra` holds additional body keys (e.g. `argument`)."""

    def __init__(self, code: str, description: str, status: int = 400, **extra):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status
        self.extra = extra

    def body(self) -> dict:
        """The JSON body a portal sends for this error."""
        return {"error": self.code, "error_description": self.description, **self.extra}


# The errors any method may answer, as the docs' table lists them (_includes/system-errors.md):
# code -> (description, status). Part A 3 keeps 401 for the auth codes the docs list as 403
# (INVALID_CREDENTIALS, insufficient_scope): see AUTH_STATUS_CODES.
SYSTEM_ERRORS: dict[str, tuple[str, int]] = {
    "INTERNAL_SERVER_ERROR": ("Internal server error", 500),
    "ERROR_UNEXPECTED_ANSWER": ("Server returned an unexpected response", 500),
    "QUERY_LIMIT_EXCEEDED": ("Too many requests", 503),
    "ERROR_BATCH_METHOD_NOT_ALLOWED": ("Method is not allowed for batch usage", 405),
    "ERROR_BATCH_LENGTH_EXCEEDED": ("Max batch length exceeded", 400),
    "NO_AUTH_FOUND": ("Wrong authorization data", 401),
    "INVALID_REQUEST": ("Https required", 400),
    "OVERLOAD_LIMIT": ("REST API is blocked due to overload", 503),
    "ACCESS_DENIED": ("REST API is available only on commercial plans", 403),
    "INVALID_CREDENTIALS": ("Invalid request credentials", 403),
    "ERROR_MANIFEST_IS_NOT_AVAILABLE": ("Manifest is not available", 404),
    "insufficient_scope": (
        "The request requires higher privileges than provided by the webhook token", 403),
    "expired_token": ("The access token provided has expired", 401),
    "user_access_error": ("The user does not have access to the application", 403),
    "PORTAL_DELETED": ("Portal was deleted", 500),
}
# Auth errors answer 401 whatever the docs' table says (Part A 3: the server code's status, and
# the one SDKs refresh tokens on).
AUTH_STATUS_CODES = frozenset({"NO_AUTH_FOUND", "INVALID_CREDENTIALS", "insufficient_scope",
                               "expired_token"})


def method_not_found() -> BitrixError:
    """Unknown method: looked up before authentication (B 1.3 row 0)."""
    return BitrixError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)


def no_auth_found() -> BitrixError:
    """No credentials in the request at all (B 6.2 step 7)."""
    return BitrixError("NO_AUTH_FOUND", "Wrong authorization data", 401)


def invalid_credentials() -> BitrixError:
    """Webhook user or code wrong (B 6.2 step 3; 401 as the code sends it, Part A 3)."""
    return BitrixError("INVALID_CREDENTIALS", "Invalid request credentials", 401)


def invalid_token() -> BitrixError:
    """An OAuth access token the portal does not know (B 6.3)."""
    return BitrixError("invalid_token", "Unable to get application by token", 401)


def expired_token() -> BitrixError:
    """An OAuth access token past its expiry on the emulator's clock (B 6.3)."""
    return BitrixError("expired_token", "The access token provided has expired", 401)


def application_not_found() -> BitrixError:
    """The token's application is missing or inactive (B 6.3)."""
    return BitrixError("APPLICATION_NOT_FOUND", "Application not found", 401)


def authorization_error() -> BitrixError:
    """Valid credentials of an inactive user (B 6.2 step 6)."""
    return BitrixError("authorization_error", "Unable to authorize user", 401)


def insufficient_scope(auth_type: str) -> BitrixError:
    """The method's scope is not granted to the webhook or token (B 6.2-6.3)."""
    provider = "webhook token" if auth_type == "apauth" else "access token"
    description = f"The request requires higher privileges than provided by the {provider}"
    return BitrixError("insufficient_scope", description, 401)


def internal_server_error() -> BitrixError:
    """An unexpected failure, answered as the cloud front-end does (B 7.3)."""
    return BitrixError("INTERNAL_SERVER_ERROR", "Internal server error", 500)


def payload_too_large(limit: int) -> BitrixError:
    """A body over the size limit (emulator rule; a portal's front-end answers 413 too)."""
    return BitrixError(
        "REQUEST_ENTITY_TOO_LARGE", f"Request body is larger than {limit} bytes", 413
    )


def query_limit_exceeded() -> BitrixError:
    """The request-rate bucket is full (Part A 10; 503 as current docs and SDKs expect)."""
    return BitrixError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)


def operation_time_limit() -> BitrixError:
    """The method's operating budget is spent (Part A 11)."""
    return BitrixError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.",
                       429)


def batch_length_exceeded() -> BitrixError:
    """A batch command past the 50th (B 7.4); the batch itself still answers 200."""
    return BitrixError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")


def batch_method_not_allowed() -> BitrixError:
    """A method that may not run inside a batch, such as batch itself (B 7.4; 405 per the docs'
    system errors, though inside a batch only its code and text are seen)."""
    return BitrixError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage",
                       405)


def user_id_empty() -> BitrixError:
    """USER_ID (or TO) is not a positive integer (B 1.3 row 4)."""
    return BitrixError("USER_ID_EMPTY", "User ID can't be empty")


def message_empty() -> BitrixError:
    """MESSAGE is empty after trim (B 1.3 row 5)."""
    return BitrixError("MESSAGE_EMPTY", "Message can't be empty")


def attach_oversize() -> BitrixError:
    """The normalized ATTACH is over the size limit (Part A 5)."""
    return BitrixError(
        "ATTACH_OVERSIZE", "You have exceeded the maximum allowable size of attach"
    )


def attach_error() -> BitrixError:
    """ATTACH is truthy but nothing valid is left of it (Part A 6)."""
    return BitrixError("ATTACH_ERROR", "Incorrect attach params")


def params_error(description: str = "Incorrect params") -> BitrixError:
    """PARAMS_ERROR of the im.notify handlers (B 2.3, 2.5)."""
    return BitrixError("PARAMS_ERROR", description)


def access_denied(message: str) -> BitrixError:
    """An AccessException: "Access denied! " and its message, HTTP 403 (B 2.3, 6.4, 7.5)."""
    return BitrixError("ACCESS_DENIED", f"Access denied! {message}", 403)


def notify_id_error() -> BitrixError:
    """confirm/answer without a positive NOTIFY_ID or ID (B 2.7)."""
    return BitrixError("ID_ERROR", "Notification ID can't be empty")


def notify_value_error() -> BitrixError:
    """confirm without NOTIFY_VALUE; the portal's text has two spaces before "can't" (B 2.7)."""
    return BitrixError("NOTIFY_VALUE_ERROR", "Notification Value  can't be empty")


def answer_text_error() -> BitrixError:
    """answer without ANSWER_TEXT (B 2.7)."""
    return BitrixError("ANSWER_TEXT_ERROR", "ANSWER_TEXT can't be empty")


def last_id_and_last_type() -> BitrixError:
    """im.notify.get with only one of LAST_ID and LAST_TYPE (B 2.8)."""
    return BitrixError("LAST_ID_AND_LAST_TYPE",
                       "Parameters LAST_ID and LAST_TYPE should be used together.")


def last_id_string() -> BitrixError:
    """LAST_ID that is not all digits (B 2.8, 2.9)."""
    return BitrixError("LAST_ID_STRING", "Last notification ID can't be string")


def search_text_error() -> BitrixError:
    """history.search with no type, no date and a short text; "then" is the portal's (B 2.9)."""
    return BitrixError("SEARCH_TEXT_ERROR", "SEARCH_TEXT can't be less then 3 symbols")


def emulated_fault(code: str, description: str, status: int) -> BitrixError:
    """An error a tester asked the emulator to inject (control API faults)."""
    return BitrixError(code, description, status)


def bad_request(description: str) -> BitrixError:
    """A request HTTP itself refuses, e.g. a body shorter than its Content-Length: 400."""
    return BitrixError("BAD_REQUEST", description, 400)


def body_too_complex(description: str) -> BitrixError:
    """A body within the size limit with too many values or parts to decode (emulator rule)."""
    return BitrixError("REQUEST_ENTITY_TOO_LARGE", description, 413)


def uri_too_long(limit: int) -> BitrixError:
    """A request URL over the emulator's limit (a portal's front end refuses long URLs too)."""
    return BitrixError("REQUEST_URI_TOO_LONG", f"Request URL is longer than {limit} bytes", 414)


def body_timeout(seconds: float) -> BitrixError:
    """A request body that did not arrive whole in time: 408 (the call is not run)."""
    return BitrixError("REQUEST_TIMEOUT",
                       f"The request body did not arrive within {seconds:g} seconds", 408)


def headers_too_large(description: str) -> BitrixError:
    """Too many or too large request headers: 431."""
    return BitrixError("REQUEST_HEADER_FIELDS_TOO_LARGE", description, 431)


def http_error(status: int, name: str) -> BitrixError:
    """A refusal of the HTTP layer (werkzeug's 4xx) under /rest/, Bitrix-shaped:
    400 "Bad Request" → BAD_REQUEST, 405 → METHOD_NOT_ALLOWED, ..."""
    code = name.upper().replace(" ", "_").replace("-", "_")
    return BitrixError(code, name, status)


# --- events (event.bind and friends: the REST module's Api\\Event) ------------------------


def wrong_auth_type() -> BitrixError:
    """An application-only method called outside an application, e.g. through a webhook."""
    return BitrixError("WRONG_AUTH_TYPE", "Current authorization type is denied for this method",
                       403)


def argument_null(name: str) -> BitrixError:
    """A required argument missing (ArgumentNullException; the body names it)."""
    return BitrixError("ERROR_ARGUMENT", f"Argument '{name}' is null or empty", argument=name)


def argument_error(description: str, name: str) -> BitrixError:
    """An argument with a wrong value (ArgumentException; the body names it)."""
    return BitrixError("ERROR_ARGUMENT", description, argument=name)


def rest_argument_error(description: str) -> BitrixError:
    """RestException::ERROR_ARGUMENT, which names no argument."""
    return BitrixError("ERROR_ARGUMENT", description)


def event_not_found() -> BitrixError:
    """event.bind of an event outside the application's scopes and the basic events."""
    return BitrixError("ERROR_EVENT_NOT_FOUND", "Event not found")


def wrong_handler_url(reason: str = "") -> BitrixError:
    """A handler URL without a host (or, in the emulator, on a host it may not call)."""
    return BitrixError("ERROR_WRONG_HANDLER_URL", "Wrong handler URL" + reason)


def unsupported_protocol() -> BitrixError:
    """A handler URL whose scheme is neither http nor https."""
    return BitrixError("ERROR_UNSUPPORTED_PROTOCOL", "Unsupported handler protocol")


def core_error(description: str) -> BitrixError:
    """RestException::ERROR_CORE, e.g. "Unable to set event handler: Handler already binded"."""
    return BitrixError("ERROR_CORE", description)


def access_denied_plain() -> BitrixError:
    """An AccessException without a message: "Access denied!" (the offline queue methods)."""
    return BitrixError("ACCESS_DENIED", "Access denied!", 403)


# --- the OAuth server (/oauth/token/): same body shape, its own codes and statuses --------


def grant_type_missing() -> BitrixError:
    """No or an unknown grant_type."""
    return BitrixError("invalid_request", "Invalid grant_type parameter or parameter missing")


def unsupported_grant_type() -> BitrixError:
    """A grant type the server does not offer (password, client_credentials …)."""
    return BitrixError("unsupported_grant_type",
                       "Invalid grant_type parameter or parameter missing")


def client_id_missing() -> BitrixError:
    """No client_id at all."""
    return BitrixError("invalid_client", "Client id was not found in the headers or body")


def wrong_client() -> BitrixError:
    """A client_id no application has: HTTP 200, as b24pysdk and b24phpsdk expect."""
    return BitrixError("wrong_client", "Wrong client", 200)


def invalid_client() -> BitrixError:
    """The client_secret does not match the application's."""
    return BitrixError("invalid_client", "The client credentials are invalid")


def not_installed() -> BitrixError:
    """The application is inactive (removed from the portal)."""
    return BitrixError("NOT_INSTALLED", "Application not installed", 401)


def refresh_token_missing() -> BitrixError:
    """grant_type=refresh_token without a refresh_token."""
    return BitrixError("invalid_request", 'No "refresh_token" parameter found')


def invalid_refresh_token() -> BitrixError:
    """Unknown, expired, already used, or another application's refresh token."""
    return BitrixError("invalid_grant", "Invalid refresh token")


def code_missing() -> BitrixError:
    """grant_type=authorization_code without a code."""
    return BitrixError("invalid_request", 'Missing parameter. "code" required')


def invalid_code() -> BitrixError:
    """An authorization code the server never issued (b24emu issues none)."""
    return BitrixError("invalid_grant", "Code doesn't exist or is invalid for the client")
