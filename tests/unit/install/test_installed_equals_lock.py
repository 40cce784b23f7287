"""The environment the suite runs in is the lock, package for package: a resolver that picked
"the newest" on this machine fails here, naming the packages that differ."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parents[3] / "requirements.lock"
NOT_LOCKED = {"pip", "runbook-console"}  # the installer itself, and this project


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            pins[_canonical(match[1])] = match[2]
    return pins


def installed_versions() -> dict[str, str]:
    found = {
        _canonical(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        # pkg_resources, once imported (parliament does), puts setuptools' vendored copies on
        # sys.path: they are setuptools' own files, not installed packages
        if "_vendor" not in Path(str(d.locate_file(""))).parts
    }
    return {name: version for name, version in found.items() if name not in NOT_LOCKED}


def test_the_lock_parser_reads_pins_and_skips_comments() -> None:
    text = "# header\nmoto==5.2.6\n    # via x\nTyping_Extensions==4.1 ; python_version < '4'\n"
    assert locked_versions(text) == {"moto": "5.2.6", "typing-extensions": "4.1"}


def test_every_installed_package_is_the_locked_version() -> None:
    locked, installed = locked_versions(LOCK.read_text()), installed_versions()
    assert locked, f"{LOCK} holds no pins"
    differ = {
        name: (installed.get(name), locked.get(name))
        for name in sorted(set(locked) | set(installed))
        if installed.get(name) != locked.get(name)
    }
    assert not differ, (
        "installed (left) differs from requirements.lock (right); install with the README's "
        f"command, or refresh the lock on purpose with `bash .ci/relock`: {differ}"
    )
