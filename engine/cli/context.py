"""What a CLI command is given: its parsed flags, typed (`CliContext`), the Workspace they name
(built once, on first use) and the detached engine of that journal, if one runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field, fields

from engine.control.client import RemoteEngine
from engine.core.commands import Caller, StsProof
from engine.run.engine import Engine
from engine.session.journals import operator_name
from engine.session.workspace import Workspace, WorkspaceOptions

# absent unless given (argparse.SUPPRESS)
THROTTLE_FLAGS = ("rate", "in_flight", "segments", "capacity_share")
# the flags that name the run again in a command told to the operator (`runbook run ...`)
HINT_FLAGS = (
    "runbook",
    "journal",
    "state_profile",
    "endpoint_url",
    "profile",
    "region",
    "read_timeout",
    "mapping_overrides",
)


@dataclass
class CliContext:
    command: str | None  # None: the console
    args: argparse.Namespace  # the command's own arguments (gate, item, phase, --yes, ...)
    target: WorkspaceOptions  # the flags every command takes: runbook, journal, target, ...
    argv: list[str]  # as given (a detached engine is started with the same)
    by: str | None = None  # --by, for the commands that have it
    detached_child: bool = False  # this process is the detached engine (`run --detach`)
    throttle: dict[str, float | int | None] = field(default_factory=dict)  # the flags given
    remote: RemoteEngine | None = None  # the detached engine of this journal, if one runs
    opened: Workspace | None = field(default=None, repr=False)

    @classmethod
    def of(cls, args: argparse.Namespace, argv: list[str]) -> CliContext:
        given = vars(args)
        target = WorkspaceOptions(**{f.name: given[f.name] for f in fields(WorkspaceOptions)})
        return cls(
            command=args.command,
            args=args,
            target=target,
            argv=argv,
            by=args.by,
            detached_child=args.detached_child,
            throttle={name: given[name] for name in THROTTLE_FLAGS if name in given},
        )

    @property
    def operator(self) -> str:
        """Who acts: --by, else --operator, else $USER (`run` has no --by)."""
        return self.by or operator_name(self.target.operator)

    def caller(self) -> Caller:
        """Who acts beyond --by: the rehearsal stand-in (--as), if any; the engine verifies
        the rest (a detached engine's client adds its STS proof, `sts_proof`)."""
        return Caller(rehearsal_as=getattr(self.args, "as_name", None))

    def sts_proof(self) -> StsProof | None:
        """This side's STS identity, signed, for a detached engine to verify."""
        return self.workspace().sts_proof()

    def workspace(self) -> Workspace:
        if self.opened is None:
            self.opened = Workspace(self.target)
        return self.opened

    def drive(self, operation: str, body: Callable[[Engine], int]) -> int:
        """`body` with the run's Engine, under the journal's lock."""
        ws = self.workspace()
        ws.acquire(operation)
        try:
            return body(ws.open(create=operation == "run"))
        finally:
            ws.release()

    def target_flags(self) -> str:
        """The flags that name this run, for a command told to the operator."""
        parts: list[str] = []
        for name in HINT_FLAGS:
            value = getattr(self.target, name)
            if value:
                parts += [f"--{name.replace('_', '-')}", str(value)]
        return " ".join(parts)

    def resume_hint(self) -> str:
        return f"runbook run {self.target_flags()}".rstrip()
