"""A table or function selector of the runbook, parsed in this one place:
`@all`, `@deprecated`, `@group:NAME`, or a literal name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

GROUP = "@group:"


class Selectable(Protocol):
    name: str
    group: str
    deprecate: bool


@dataclass(frozen=True)
class Selector:
    kind: Literal["all", "deprecated", "group", "name", "unknown"]
    value: str = ""  # the group's name, the literal name, or the unknown selector as written

    @classmethod
    def parse(cls, text: str) -> Selector:
        if text == "@all":
            return cls("all")
        if text == "@deprecated":
            return cls("deprecated")
        if text.startswith(GROUP):
            return cls("group", text[len(GROUP) :])
        if text.startswith("@"):
            return cls("unknown", text)
        return cls("name", text)

    def pick(self, specs: Iterable[Selectable]) -> list[str]:
        """The names it selects (a literal name, or an unknown selector, is taken as it is)."""
        if self.kind == "all":
            return [s.name for s in specs]
        if self.kind == "deprecated":
            return [s.name for s in specs if s.deprecate]
        if self.kind == "group":
            return [s.name for s in specs if s.group == self.value]
        return [self.value]
