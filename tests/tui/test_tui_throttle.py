"""The throttle box's validation (pure): what it sends, and the one line a bad value gets."""

from __future__ import annotations

import pytest

from tui.screens.throttle import (
    MAX_IN_FLIGHT,
    BadThrottle,
    parse_throttle,
    shown,
    shown_share,
)


@pytest.mark.parametrize(
    ("in_flight", "rate", "settings"),
    [
        ("8", "200", {"in_flight": 8, "rate": 200.0, "capacity_share": None}),
        (" 1 ", "12.5/s", {"in_flight": 1, "rate": 12.5, "capacity_share": None}),
        ("", "", {"in_flight": None, "rate": None, "capacity_share": None}),  # the runbook's
        ("off", "OFF", {"in_flight": None, "rate": None, "capacity_share": None}),
        (
            str(MAX_IN_FLIGHT),
            "0.5",
            {"in_flight": MAX_IN_FLIGHT, "rate": 0.5, "capacity_share": None},
        ),
    ],
)
def test_good_values_become_the_throttle_commands_settings(in_flight, rate, settings) -> None:
    assert parse_throttle(in_flight, rate) == settings


@pytest.mark.parametrize(
    ("in_flight", "rate", "said"),
    [
        ("0", "", "writes in flight: a whole number from 1 to 1024"),
        ("-3", "", "writes in flight"),
        ("2.5", "", "writes in flight"),
        ("1025", "", "writes in flight"),
        ("lots", "", "not 'lots'"),
        ("4", "0", "items/s: a number above 0"),
        ("4", "-1", "items/s"),
        ("4", "fast", "not 'fast'"),
        ("4", "nan", "items/s"),
        ("4", "inf", "items/s"),
    ],
)
def test_a_bad_value_is_one_line_and_nothing_is_sent(in_flight, rate, said) -> None:
    with pytest.raises(BadThrottle, match=said) as refused:
        parse_throttle(in_flight, rate)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("share", "fraction"),
    [("50%", 0.5), (" 0.25 ", 0.25), ("100 %", 1.0), ("1", 1.0), ("", None), ("off", None)],
)
def test_a_capacity_share_is_a_fraction_or_a_percentage(share, fraction) -> None:
    assert parse_throttle("", "", share)["capacity_share"] == fraction


@pytest.mark.parametrize("share", ["0", "0%", "150%", "1.5", "-0.2", "half", "nan", "inf"])
def test_a_bad_capacity_share_is_one_line_and_nothing_is_sent(share) -> None:
    with pytest.raises(BadThrottle, match="capacity share: above 0 and at most 1") as refused:
        parse_throttle("4", "10", share)
    assert "\n" not in str(refused.value)


def test_the_box_shows_what_the_engine_applies() -> None:
    assert (shown(None), shown(4), shown(80.0), shown(12.5)) == ("", "4", "80", "12.5")
    assert (shown_share(None), shown_share(0.5), shown_share(0.125)) == ("", "50%", "12.5%")
