"""The wheel, installed as a user installs it: a fresh virtual environment, outside the checkout.

One wheel and one venv per session (about a minute: the wheel is built from a clean copy of the
sources, the venv installs it and its dependencies with pip). A throwaway user project with its
own `app` package then runs the README's pytest example, and `b24emu serve --detach` runs from an
empty folder and answers the README's curl.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT
from tests.test_server import free_port

README = (ROOT / "README.md").read_text(encoding="utf-8")
SOURCES = ("app", "setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in", "LICENSE")
USER_APP = 'def send(message):\n    return f"sent by the user\'s own app: {message}"\n'
USER_TEST = '''from app import send


def test_the_projects_own_app_package():
    assert send("hi") == "sent by the user's own app: hi"
'''
USER_PYPROJECT = '''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "user-project"
version = "1.0"

[tool.setuptools]
packages = ["app"]
'''


def readme_example() -> str:
    """The complete example of the README's pytest section, as printed there."""
    section = README[README.index("## Testing with pytest"):]
    return re.search(r"A complete example.*?```python\n(.*?)```", section, re.S).group(1)


def readme_curl() -> str:
    """The URL of the first-screen curl example."""
    return re.search(r"^curl '(http://127\.0\.0\.1:8080/rest/[^']+)'$", README, re.M).group(1)


def run(*command, cwd: Path, env: dict | None = None, timeout: float = 600):
    done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a clean copy of the sources (no stale build/ folder)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", work / "dist",
        source, cwd=work)
    [built] = (work / "dist").glob("b24emu-*.whl")
    return built


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel (and its dependencies from PyPI) and pytest installed."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    run(sys.executable, "-m", "venv", where, cwd=where.parent)
    run(where / "bin" / "python", "-m", "pip", "install", "--quiet", wheel, "pytest",
        cwd=where.parent)
    return where


def clean_env(venv: Path) -> dict:
    """The environment of a user's shell: the venv first on PATH, nothing of the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("B24EMU_", "PYTHON", "PYTEST", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_wheel_holds_b24emu_only_and_metadata_for_publishing(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(info).decode())
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert {name.split("/")[0] for name in names} == {"b24emu", info.split("/")[0]}
    assert "b24emu/testing/default.json" in names
    sources = {"b24emu/" + path.relative_to(ROOT / "app").as_posix()
               for path in (ROOT / "app").rglob("*.py")}
    assert sources <= set(names), "setup.cfg packages misses " + str(sorted(sources - set(names)))
    assert {"b24emu/control/templates/inbox.html", "b24emu/control/static/inbox.js",
            "b24emu/control/static/inbox.css", "b24emu/control/static/bell.svg"} <= set(names)
    assert (metadata["Name"], metadata["Version"]) == ("b24emu", "0.1.0")
    assert metadata["Summary"].startswith("Offline Bitrix24-compatible REST emulator")
    assert (metadata["License-Expression"] or metadata["License"]) == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == README.strip()
    classifiers = metadata.get_all("Classifier")
    assert "Framework :: Pytest" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "b24emu = b24emu.cli:main" in entry_points
    assert "[pytest11]\nb24emu = b24emu.testing.plugin" in entry_points


def test_a_user_project_with_its_own_app_package_runs_the_readme_example(venv, tmp_path):
    project = tmp_path / "user-project"
    (project / "app").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "app" / "__init__.py").write_text(USER_APP)
    (project / "tests" / "test_own_app.py").write_text(USER_TEST)
    (project / "tests" / "test_notifications.py").write_text(readme_example())
    (project / "pyproject.toml").write_text(USER_PYPROJECT)
    env, python = clean_env(venv), venv / "bin" / "python"

    nothing_called_app = run(python, "-c", "import importlib.util as u; print(u.find_spec('app'))",
                             cwd=tmp_path, env=env)
    assert nothing_called_app.stdout.strip() == "None"

    # `python -m pytest` puts the project first on sys.path: its own `app` and the plugin.
    done = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project, env=env)
    assert done.stdout.strip().splitlines()[-1].startswith("6 passed")

    # The project installed into the same venv: its `app` in site-packages beside b24emu.
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", project, cwd=tmp_path, env=env)
    done = run(venv / "bin" / "pytest", "-q", "-p", "no:cacheprovider", cwd=project, env=env)
    assert done.stdout.strip().splitlines()[-1].startswith("6 passed")

    # ... and the emulator still serves from an empty folder, detached as a CI job starts it.
    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    started = run(venv / "bin" / "b24emu", "serve", "--detach", "--port", port, cwd=empty,
                  env=env)
    assert started.stdout.startswith(f"b24emu: ready at http://127.0.0.1:{port} (pid ")
    try:
        answer = requests.get(readme_curl().replace(":8080", f":{port}"), timeout=10)
        assert answer.status_code == 200
        assert answer.json()["result"] == 1  # as the README shows: the first notification
        assert {"start", "operating_reset_at", "operating"} <= set(answer.json()["time"])
    finally:
        stopped = run(venv / "bin" / "b24emu", "stop", cwd=empty, env=env)
    assert stopped.stdout.startswith("b24emu: stopped pid ")
    assert sorted(path.name for path in empty.iterdir())[:2] == ["b24emu.log", "b24emu.sqlite3"]


def test_python_dash_m_b24emu_is_the_command(venv, tmp_path):
    done = run(venv / "bin" / "python", "-m", "b24emu", "--help", cwd=tmp_path,
               env=clean_env(venv))
    assert done.stdout.startswith("usage: b24emu ")
    where = run(venv / "bin" / "python", "-c", "import b24emu; print(b24emu.__file__)",
                cwd=tmp_path, env=clean_env(venv))
    assert where.stdout.strip().startswith(str(venv))
