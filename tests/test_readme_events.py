"""The README's "Events" example, taken from the README itself, runs as a user's suite would."""

from __future__ import annotations

import re

from tests.conftest import ROOT

pytest_plugins = ["pytester"]


def events_example() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Events\n")
    section = readme[start:readme.index("\n## ", start + 1)]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_events_example_passes_in_a_fresh_process(pytester):
    example = events_example()
    assert "b24emu.fire_event(" in example and "event.bind" in example
    pytester.makepyfile(test_events_example=example)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
