"""The one typed boundary between the engine and its front ends: the local Engine, the detached
engine and its client offer the same commands with the same parameters; every control command
is one request model of one table; refusals travel as typed values, never as message text."""

from __future__ import annotations

import inspect
import json
import os

import pytest

from engine.control import protocol
from engine.control.client import RemoteEngine
from engine.control.job_loop import DetachedRun
from engine.control.requests import REQUESTS, Request, Throttle, parse_request
from engine.control.server import ControlServer
from engine.core.commands import ControlCommands, EngineCommands, Refusal
from engine.core.outcome import BadRequest, CommandRefused, NotAllowed
from engine.run.engine import Engine


def _commands(protocol_class: type) -> list[str]:
    return [
        name
        for name, member in vars(protocol_class).items()
        if callable(member) and not name.startswith("_")
    ]


def _parameters(cls: type, name: str) -> list[tuple[str, object]]:
    """A method's parameters (name and default), as the boundary declares them."""
    signature = inspect.signature(getattr(cls, name))
    return [(p.name, p.default) for p in signature.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("name", _commands(EngineCommands))
def test_every_engine_offers_each_engine_command_alike(name: str) -> None:
    declared = _parameters(EngineCommands, name)
    for engine in (Engine, RemoteEngine, DetachedRun):
        assert _parameters(engine, name)[: len(declared)] == declared, engine.__name__


@pytest.mark.parametrize("name", _commands(ControlCommands))
def test_the_detached_engine_and_its_client_offer_each_control_command_alike(name: str) -> None:
    declared = _parameters(ControlCommands, name)
    for engine in (RemoteEngine, DetachedRun):
        assert _parameters(engine, name) == declared, engine.__name__


EXAMPLES: dict[str, dict[str, object]] = {
    "ping": {},
    "status": {},
    "subscribe": {},
    "pause": {"by": "al"},
    "resume": {"by": "al", "approve": "step-a"},
    "stop": {"by": "al"},
    "throttle": {"by": "al", "rate": 10.0, "in_flight": None},
    "tick": {"gate": "g", "item": "i", "by": "al", "note": "n"},
    "untick": {"gate": "g", "item": "i", "by": "al"},
    "evaluate": {"gate": "g"},
    "clock": {"scale": 60.0, "by": "al"},
    "ack": {"step": "s", "by": "al"},
    "decide": {"gate": "g", "go": True, "by": "al", "override": "why"},
    "preview_rollback": {"phase": "phase1"},
    "rollback": {"phase": "phase1", "by": "al"},
}


def test_each_control_command_is_declared_once_in_the_table() -> None:
    assert set(REQUESTS) == set(EXAMPLES)
    for name, model in REQUESTS.items():
        assert issubclass(model, Request) and model.model_fields["cmd"].default == name
        assert "apply" in vars(model), f"{name}: the call it makes is declared with it"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_a_request_reads_back_as_sent(name: str) -> None:
    request = REQUESTS[name].model_validate({"cmd": name, **EXAMPLES[name]})
    line = protocol.encode(request.wire())
    assert parse_request(protocol.decode(line)) == request


def test_a_throttle_sends_only_the_settings_given() -> None:
    request = Throttle(by="al", in_flight=None)  # None: back to the runbook's value
    assert request.wire() == {"cmd": "throttle", "by": "al", "in_flight": None}
    assert parse_request(request.wire()).changes() == {"in_flight": None}


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ({"cmd": "launch"}, "unknown command 'launch'"),
        ({"cmd": "tick", "gate": " ", "item": "i", "by": "al"}, "tick: gate: a non-empty text"),
        (
            {"cmd": "throttle", "by": "al"},
            "throttle: give --rate, --in-flight, --segments and/or --capacity-share",
        ),
        ({"cmd": "throttle", "by": "al", "rate": 0}, "throttle: rate:"),
        ({"cmd": "throttle", "by": "al", "in_flight": True}, "in_flight: a number is needed"),
        ({"cmd": "clock", "scale": "fast", "by": "al"}, "clock: scale:"),
        ({"cmd": "pause", "by": "al", "extra": 1}, "pause: extra:"),
    ],
)
def test_a_malformed_request_is_a_bad_request_naming_the_field(obj: dict, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        parse_request(obj)


@pytest.mark.parametrize("error", [CommandRefused, BadRequest, NotAllowed])
def test_a_refusal_crosses_the_socket_as_the_same_exception(error: type[Exception]) -> None:
    line = protocol.refused(Refusal.of(error("gate-2 is not the gate the run waits at")))
    answer = json.loads(line)
    assert answer["ok"] is False and answer["refusal"]["message"].startswith("gate-2")
    with pytest.raises(error, match=r"^gate-2 is not the gate the run waits at$"):
        protocol.Response.model_validate(answer).result()


def test_the_server_answers_a_line_it_cannot_read_with_a_typed_refusal(tmp_path) -> None:
    server = ControlServer(tmp_path / "s", tmp_path / "j.toml", detached=None)  # type: ignore[arg-type]
    for line, says in ((b"{not json\n", "not JSON"), (b'{"cmd": "pause"}\n', "pause: by:")):
        response = protocol.Response.model_validate_json(server.handle(line, os.getuid()))
        assert not response.ok and response.refusal is not None
        assert response.refusal.kind == "bad_request" and says in response.refusal.message
