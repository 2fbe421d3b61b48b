"""The documented user fields and which scope reads which (api-reference/user/user-scope.md).

Shared by the fixture format (which fields a fixture user may carry) and the user methods (what
user.get, user.current and user.search answer for a caller's scopes).
"""

from __future__ import annotations

import re

# The `user` scope's fields (user-scope.md "Full user scope version"), in the order a portal
# answers them: the order of the docs' example answers (user-get.md, user-current.md), where
# WORK_PHONE precedes WORK_POSITION and UF_EMPLOYMENT_DATE precedes UF_DEPARTMENT.
USER_FIELDS = (
    "ID", "XML_ID", "ACTIVE", "NAME", "LAST_NAME", "SECOND_NAME", "TITLE", "EMAIL", "LAST_LOGIN",
    "DATE_REGISTER", "TIME_ZONE", "IS_ONLINE", "TIMESTAMP_X", "LAST_ACTIVITY_DATE",
    "PERSONAL_GENDER", "PERSONAL_PROFESSION", "PERSONAL_WWW", "PERSONAL_BIRTHDAY",
    "PERSONAL_PHOTO", "PERSONAL_ICQ", "PERSONAL_PHONE", "PERSONAL_FAX", "PERSONAL_MOBILE",
    "PERSONAL_PAGER", "PERSONAL_STREET", "PERSONAL_CITY", "PERSONAL_STATE", "PERSONAL_ZIP",
    "PERSONAL_COUNTRY", "PERSONAL_MAILBOX", "PERSONAL_NOTES", "WORK_PHONE", "WORK_COMPANY",
    "WORK_POSITION", "WORK_DEPARTMENT", "WORK_WWW", "WORK_FAX", "WORK_PAGER", "WORK_STREET",
    "WORK_MAILBOX", "WORK_CITY", "WORK_STATE", "WORK_ZIP", "WORK_COUNTRY", "WORK_PROFILE",
    "WORK_LOGO", "WORK_NOTES", "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT", "UF_DISTRICT", "UF_SKYPE",
    "UF_SKYPE_LINK", "UF_ZOOM", "UF_TWITTER", "UF_FACEBOOK", "UF_LINKEDIN", "UF_XING",
    "UF_WEB_SITES", "UF_PHONE_INNER", "UF_TIMEMAN", "UF_SKILLS", "UF_INTERESTS",
)
# user-scope.md "Limited user scope versions", column by column.
USER_BASIC_FIELDS = frozenset({
    "ID", "XML_ID", "ACTIVE", "NAME", "LAST_NAME", "SECOND_NAME", "TITLE", "EMAIL",
    "PERSONAL_PHONE", "WORK_PHONE", "WORK_POSITION", "WORK_COMPANY", "IS_ONLINE", "TIME_ZONE",
    "TIMESTAMP_X", "DATE_REGISTER", "LAST_ACTIVITY_DATE", "PERSONAL_PROFESSION",
    "PERSONAL_GENDER", "PERSONAL_BIRTHDAY", "PERSONAL_PHOTO", "PERSONAL_FAX", "PERSONAL_MOBILE",
    "PERSONAL_PAGER", "PERSONAL_STREET", "PERSONAL_MAILBOX", "PERSONAL_CITY", "PERSONAL_STATE",
    "PERSONAL_ZIP", "PERSONAL_COUNTRY", "PERSONAL_NOTES", "WORK_DEPARTMENT", "WORK_WWW",
    "WORK_FAX", "WORK_PAGER", "WORK_STREET", "WORK_MAILBOX", "WORK_CITY", "WORK_STATE",
    "WORK_ZIP", "WORK_COUNTRY", "WORK_PROFILE", "WORK_LOGO", "WORK_NOTES", "UF_DEPARTMENT",
    "UF_DISTRICT", "UF_SKYPE", "UF_SKYPE_LINK", "UF_ZOOM", "UF_TWITTER", "UF_FACEBOOK",
    "UF_LINKEDIN", "UF_XING", "UF_WEB_SITES", "UF_PHONE_INNER", "UF_EMPLOYMENT_DATE",
    "UF_TIMEMAN", "UF_SKILLS", "UF_INTERESTS"})
USER_BRIEF_FIELDS = frozenset({
    "ID", "XML_ID", "ACTIVE", "NAME", "LAST_NAME", "SECOND_NAME", "TITLE", "IS_ONLINE",
    "TIME_ZONE", "PERSONAL_PHOTO", "TIMESTAMP_X", "DATE_REGISTER", "PERSONAL_PROFESSION",
    "PERSONAL_GENDER", "PERSONAL_BIRTHDAY", "PERSONAL_CITY", "PERSONAL_STATE",
    "PERSONAL_COUNTRY", "WORK_POSITION", "WORK_CITY", "WORK_STATE", "WORK_COUNTRY",
    "LAST_ACTIVITY_DATE", "UF_EMPLOYMENT_DATE", "UF_TIMEMAN", "UF_SKILLS", "UF_INTERESTS",
    "UF_DEPARTMENT", "UF_PHONE_INNER"})
# Sent by the `user` scope after the fields (user-get.md's example), not part of the limited lists.
USER_TYPE = "USER_TYPE"
USER_TYPES = ("employee", "extranet", "email")
# A portal answers these even when empty (user-get.md's example: its second user has no other
# field); any other field appears only when the user has a value for it (NULL fields are left out).
ALWAYS_SENT = frozenset({
    "ID", "ACTIVE", "NAME", "LAST_NAME", "EMAIL", "LAST_LOGIN", "DATE_REGISTER", "IS_ONLINE",
    "TIMESTAMP_X", "LAST_ACTIVITY_DATE", "PERSONAL_GENDER", "PERSONAL_BIRTHDAY", "WORK_POSITION",
    "UF_EMPLOYMENT_DATE", "UF_DEPARTMENT", USER_TYPE})
# Date and date-time fields: ISO 8601 in fixtures, the portal's zone in answers.
DATE_FIELDS = frozenset({"LAST_LOGIN", "DATE_REGISTER", "TIMESTAMP_X", "LAST_ACTIVITY_DATE",
                         "PERSONAL_BIRTHDAY", "UF_EMPLOYMENT_DATE"})
# Fields a fixture gives with its own lower-case keys (the original fixture format).
FIXTURE_KEYS = {"ID": "id", "ACTIVE": "active", "NAME": "name", "LAST_NAME": "last_name",
                "EMAIL": "email", "PERSONAL_GENDER": "gender", "TIME_ZONE": "time_zone",
                "DATE_REGISTER": "date_register", "UF_DEPARTMENT": "departments"}
# Any user field a fixture may add: `UF_` and upper-case letters, digits, underscores.
CUSTOM_FIELD = re.compile(r"UF_[A-Z0-9_]+\Z")
STANDARD_FIELDS = frozenset(USER_FIELDS) | {USER_TYPE}


def is_custom(field: str) -> bool:
    """A user field created on the portal (UF_USR_…), not one of the documented ones."""
    return field not in STANDARD_FIELDS and CUSTOM_FIELD.match(field) is not None


def readable(scopes) -> frozenset[str] | None:
    """The standard fields a caller's scopes read: None for all (`user`)."""
    if "user" in scopes:
        return None
    if "user_basic" in scopes:
        return USER_BASIC_FIELDS
    return USER_BRIEF_FIELDS


def reads_custom_fields(scopes) -> bool:
    """Custom fields: the `user` scope, or `user.userfield` added to a limited one
    (user-scope.md: "To access custom fields, add the user.userfield scope")."""
    return "user" in scopes or "user.userfield" in scopes
