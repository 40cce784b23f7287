"""Verify who acts (engine/state/identity.py says what each part means and who vouches for it).

The OS user comes from the kernel: this process's uid, or the control-socket peer's uid that
the server read with SO_PEERCRED. The AWS identity comes from STS: this process's own
credentials (GetCallerIdentity, asked once per engine), or a detached engine's caller's signed
proof, replayed to the engine's own STS endpoint. On a rehearsal a caller may add `--as NAME`,
a stand-in that is recorded as not verified; a real account refuses it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import threading
from collections.abc import Callable
from typing import Any

from engine.aws.caller_identity import ProofRefused, own_arn, verify_proof
from engine.core.commands import Caller
from engine.core.outcome import BadRequest, CommandRefused
from engine.state.identity import Identity

OWN_ARN_SECONDS = 5.0  # how long a command waits for STS to name this process's credentials
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


def os_user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry (a container): its number
        return str(uid)


class Verifier:
    """One engine's identity checks; its own STS identity is asked once and kept."""

    def __init__(self, clients: Callable[[], Callable[[str], Any]], real_account: bool) -> None:
        self._clients = clients
        self._real_account = real_account
        self._own: str | None = None
        self._asked = False

    def own_arn(self, ask: bool = True) -> str | None:
        """This process's STS identity (None: the target could not say; or, `ask` False,
        not asked yet: the run's own thread never waits on STS)."""
        if not self._asked and ask:
            answer: dict[str, str] = {}

            def ask_sts() -> None:
                # an identity nobody verified is shown as such, never guessed
                with contextlib.suppress(Exception):
                    answer["arn"] = own_arn(self._clients()("sts"))

            # robust: a hung STS endpoint costs a command seconds, once, never a frozen screen
            asking = threading.Thread(target=ask_sts, name="sts-identity", daemon=True)
            asking.start()
            asking.join(OWN_ARN_SECONDS)
            self._own, self._asked = answer.get("arn"), True
        return self._own

    def verify(self, caller: Caller | None, ask: bool = True) -> Identity:
        """`ask` False: no STS call (what is known already), for the run's own thread."""
        caller = caller or Caller()
        uid = os.getuid() if caller.peer_uid is None else caller.peer_uid
        if caller.proof is not None:
            try:
                sts = self._clients()("sts")
                arn: str | None = verify_proof(caller.proof, sts.meta.endpoint_url)
            except ProofRefused as exc:
                raise CommandRefused(f"who acts could not be verified: {exc}") from None
        elif caller.peer_uid is not None:
            arn = None  # a socket peer that sent no proof: its OS user only
        else:
            arn = self.own_arn(ask)
        stand_in = caller.rehearsal_as
        if stand_in is not None:
            if self._real_account:
                raise CommandRefused(
                    "--as is a rehearsal-only identity; on a real account who acts is the STS "
                    "identity of the credentials used"
                )
            if not _NAME.match(stand_in):
                raise BadRequest(f"--as {stand_in!r}: letters, digits, _ . @ - (up to 64)")
        user = os_user_name(uid)
        principal = arn if self._real_account and arn else f"os:{stand_in or user}"
        return Identity(
            os_user=user,
            uid=uid,
            arn=arn,
            rehearsal_as=stand_in,
            principal=principal,
            via="process" if caller.peer_uid is None else "socket",
        )
