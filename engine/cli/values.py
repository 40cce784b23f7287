"""Flag value checks: a bad value is one line naming what is wrong (argparse adds the flag)."""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from engine.aws.target import READ_TIMEOUT_RANGE
from engine.core.clock import MAX_TIME_SCALE
from engine.state.s3_location import is_s3_url, parse_s3_url

Number = TypeVar("Number", int, float)


def _in_range(
    text: str, kind: Callable[[str], Number], noun: str, ok: Callable[[Number], bool], must: str
) -> Number:
    """`text` as `kind`, or `not a <noun>: ...`; a value failing `ok` is `must be <must>, ...`."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a {noun}: {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {must}, not {text!r}")
    return value


def time_scale(text: str) -> float:
    """--time-scale: a finite number above 0 (nan and inf would be stored and break every wait),
    at most MAX_TIME_SCALE (a 300-digit scale is no clock anyone can read)."""
    return _in_range(
        text,
        float,
        "number",
        lambda v: math.isfinite(v) and 0 < v <= MAX_TIME_SCALE,
        f"above 0 and at most {MAX_TIME_SCALE:,.0f}",
    )


REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")  # us-east-1, us-gov-west-1, ap-southeast-2


def region(text: str) -> str:
    """--region: an AWS region name, as AWS spells them."""
    if not REGION.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"not an AWS region: {text!r} (for example us-east-1 or eu-west-2)"
        )
    return text


def endpoint_url(text: str) -> str:
    """--endpoint-url: an http(s) URL with a host (botocore would take garbage and fail late)."""
    url = urlparse(text)
    try:
        port_ok = url.port is None or 0 < url.port < 65536
    except ValueError:
        port_ok = False
    if url.scheme not in ("http", "https") or not url.hostname or not port_ok:
        raise argparse.ArgumentTypeError(
            f"not an http(s) endpoint URL: {text!r} (for example http://127.0.0.1:5000)"
        )
    return text


def account(text: str) -> str:
    """iam-policy --account: a 12-digit AWS account id, or * for any."""
    if text != "*" and not re.fullmatch(r"\d{12}", text):
        raise argparse.ArgumentTypeError(f"not an AWS account id (12 digits, or *): {text!r}")
    return text


def read_timeout(text: str) -> float:
    """--read-timeout: seconds a client waits for an answer, 1 to 3600."""
    low, high = READ_TIMEOUT_RANGE
    return _in_range(
        text,
        float,
        "number of seconds",
        lambda v: math.isfinite(v) and low <= v <= high,
        f"from {low:g} to {high:g} seconds",
    )


def name(text: str) -> str:
    """--by: who did it; a blank name records nobody."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name who acts (not blank)")
    return text


_STAND_IN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")


def stand_in(text: str) -> str:
    """--as: a rehearsal's stand-in approver (os:NAME to the runbook's `approvers`)."""
    if not _STAND_IN.match(text):
        raise argparse.ArgumentTypeError("letters, digits, _ . @ - (up to 64), e.g. --as bob")
    return text


def reason(text: str) -> str:
    """--override: why an unmet item is overridden; a blank reason explains nothing."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must give the reason (not blank)")
    return text


def share(text: str) -> float | None:
    """--capacity-share: a fraction above 0 and at most 1 (0.5, or 50%), or off."""
    value = text.strip().lower()
    if value == "off":
        return None
    scale = 100.0 if value.endswith("%") else 1.0
    fraction = _in_range(
        value.rstrip("%"),
        float,
        "number",
        lambda v: math.isfinite(v) and 0 < v / scale <= 1,
        "a share above 0 and at most 1 (0.5, or 50%), or off",
    )
    return fraction / scale


def percent(text: str) -> float:
    """--error-rate: a percentage from 0 to 100."""
    return _in_range(
        text,
        float,
        "number",
        lambda v: math.isfinite(v) and 0 <= v <= 100,
        "a percentage from 0 to 100",
    )


def positive(text: str) -> float:
    """--app-writes, --seconds: a number above 0."""
    return _in_range(text, float, "number", lambda v: math.isfinite(v) and v > 0, "above 0")


def limit_arg(kind: type[Number]) -> Callable[[str], Number | None]:
    """A throttle value: a number above 0, or `off` (no limit / the runbook's value)."""

    def parse(text: str) -> Number | None:
        if text.strip().lower() == "off":
            return None
        return _in_range(
            text, kind, kind.__name__, lambda v: math.isfinite(v) and v > 0, "above 0 (or off)"
        )

    return parse


def loopback_host(text: str) -> str:
    """--host: loopback only (textual-serve has no authentication)."""
    host = "127.0.0.1" if text == "localhost" else text
    try:
        ok = ipaddress.ip_address(host).is_loopback and ipaddress.ip_address(host).version == 4
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a loopback address: the served console has no authentication, so "
            "it binds to 127.0.0.1 only (tunnel with ssh -L to share it)"
        )
    return host


def port(text: str) -> int:
    """--port: a TCP port from 1 to 65535."""
    return _in_range(text, int, "port number", lambda v: 1 <= v <= 65535, "a port from 1 to 65535")


def journal(text: str) -> Path | str:
    """A journal path, or an S3 journal `s3://bucket/prefix/name.toml` (kept as the URL)."""
    if not is_s3_url(text):
        return Path(text)
    try:
        parse_s3_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def s3_url(text: str) -> str:
    """An S3 journal's URL (state push)."""
    try:
        parse_s3_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
