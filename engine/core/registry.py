"""Discovery of named plug-ins (actions, checks) from the modules of a package."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any


def discover(package_name: str, package_path: Iterable[str], attr: str) -> Mapping[str, Any]:
    """Collect every `attr` tuple of the package's modules, sub-packages included (one folder per
    family of actions), into a read-only name->item map."""
    found: dict[str, Any] = {}
    for info in pkgutil.walk_packages(list(package_path), prefix=f"{package_name}."):
        module = importlib.import_module(info.name)
        for item in getattr(module, attr, ()):
            if item.name in found:
                raise RuntimeError(f"{attr[:-1].lower()} {item.name!r} registered twice")
            found[item.name] = item
    return MappingProxyType(found)
