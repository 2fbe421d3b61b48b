"""The README is the manual: it lists every method the registry answers and every setting."""

from __future__ import annotations

from dataclasses import fields

from b24emu import settings as settings_module
from b24emu.methods import REGISTRY
from b24emu.settings import Settings

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    return README[start:README.index("\n## ", start + 1)]


def test_every_registered_method_is_in_the_supported_methods_table():
    table = section("## Supported methods")
    missing = [entry.name for entry in REGISTRY.all() if f"`{entry.name}`" not in table]
    assert missing == []


def test_every_setting_is_in_the_readme_and_the_settings_docstring():
    table = section("## Settings")
    names = [f"B24EMU_{field.name.upper()}" for field in fields(Settings)]
    assert [name for name in names if f"`{name}`" not in table] == []
    assert [name for name in names if name not in settings_module.__doc__] == []


def test_the_settings_table_gives_each_default_and_flag_as_the_code_has_them():
    from b24emu.settings import FLAGS, SWITCHES

    rows = {}
    for line in section("## Settings").splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`B24EMU_"):
            rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2].strip("`"))
    from b24emu.cli import build_parser

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    setting_flags = {option for action in serve._actions for option in action.option_strings
                     if option not in ("-h", "--help", "--detach", "--wait-timeout",
                                       "--pid-file", "--log-file")}
    assert setting_flags == {flag for flag, _ in rows.values() if flag}  # what serve takes
    defaults = Settings()
    for field in fields(Settings):
        flag, default = rows[f"B24EMU_{field.name.upper()}"]
        assert flag == FLAGS.get(field.name, ""), field.name
        value = getattr(defaults, field.name)
        if value is None:
            assert default == "preset's", field.name
        elif field.name in SWITCHES:
            assert default == ("yes" if value else "no")
        elif isinstance(value, float):
            assert float(default) == value, field.name
        else:
            assert default == ('""' if value == "" else str(value)), field.name
