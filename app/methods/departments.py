"""`department.get`: the company structure of the portal's fixture (scope `department`;
api-reference/departments/department-get.md).

Each department is `{"ID", "NAME", "SORT", "PARENT", "UF_HEAD"}` with ids as strings and SORT a
number, as the docs' example shows; the root department has no `PARENT` and a department without
a head no `UF_HEAD`. Parameters are read case-insensitively at the top level: `ID`, `NAME` (the
full name), `PARENT`, `UF_HEAD` filter (an array value means any of them; the list engine's
prefixes work too, e.g. `>ID` as b24pysdk's `as_list_fast` sends it); `sort` names the field
to sort by (ID, NAME, SORT, PARENT, UF_HEAD; default ID) and `order` is ASC or DESC. Since
`sort` and the `SORT` filter share one upper-cased name, a numeric `sort` filters by SORT.
Paging is the list engine's: 50 a page from `start`, `start=-1` without the count.
"""

from __future__ import annotations

from b24emu import php
from b24emu.methods import listing
from b24emu.methods.registry import Call, method
from b24emu.rest.envelope import Page

FILTER_FIELDS = ("ID", "NAME", "PARENT", "UF_HEAD")
SORT_FIELDS = ("ID", "NAME", "SORT", "PARENT", "UF_HEAD")


def department_object(row: dict) -> dict:
    """A department as department.get answers it."""
    department = {"ID": str(row["id"]), "NAME": row["name"] or "", "SORT": row["sort"]}
    if row["parent"] is not None:
        department["PARENT"] = str(row["parent"])
    if row["head"] is not None:
        department["UF_HEAD"] = str(row["head"])
    return department


def _filters(key) -> bool:
    """ID, NAME, PARENT, UF_HEAD, or a prefixed field (`>ID`: b24pysdk's as_list_fast)."""
    if not isinstance(key, str):
        return False
    field = key.lstrip("!=<>%@")
    return field in FILTER_FIELDS or (field == "SORT" and field != key)


@method("department.get", scope="department",
        params=("sort", "order", "ID", "NAME", "SORT", "PARENT", "UF_HEAD", "START"))
def department_get(call: Call) -> Page:
    """The portal's departments matching ID, NAME, PARENT, UF_HEAD, sorted, 50 a page."""
    params = call.params
    conditions = {key: value for key, value in params.items()
                  if _filters(key) and value is not None}
    sort, order = params.get("SORT"), php.to_str(params.get("ORDER")).strip().upper()
    field = php.to_str(sort).strip().upper() if sort is not None else "ID"
    if field not in SORT_FIELDS:
        if sort is not None and php.to_str(sort).strip().lstrip("-").isdigit():
            conditions["SORT"] = sort
        field = "ID"
    rows = call.emulator.portals.departments(call.caller.portal)
    start = call.start if call.start is not None else params.get("START")
    return listing.list_page([department_object(row) for row in rows], filter=conditions,
                             order={field: "DESC" if order == "DESC" else "ASC"}, start=start,
                             errors=listing.LENIENT)
