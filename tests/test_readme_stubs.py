"""The README's "Stubs, recording and verify" section: its pytest example passes as pasted."""

from __future__ import annotations

import re

from tests.conftest import ROOT

pytest_plugins = ["pytester"]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Stubs, recording and verify"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_stubs_example_passes_in_a_fresh_process(pytester):
    example = readme_example()
    assert "b24emu.stub(" in example
    pytester.makepyfile(test_stubs_example=example)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
