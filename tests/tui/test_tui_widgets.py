"""Pure rendering helpers of the console's widgets."""

from __future__ import annotations

from tui.widgets.error_rate import strip_text


def test_error_rate_strip_reads_flat_at_zero_and_tall_over_the_limit() -> None:
    flat = strip_text([0.0] * 10, limit=1.0, width=40).plain.splitlines()
    assert flat[0] == "error rate %  now 0.00 · max 0.00 · limit 1"
    assert flat[1] == "▁" * 10  # zero is the floor, not the maximum of its own data
    rising = strip_text([0.0, 0.5, 1.0, 2.0, 4.0], limit=1.0, width=40)
    bars = rising.plain.splitlines()[1]
    assert bars == "▁▂▃▅█"  # fixed scale: 2 x limit, or the highest value when above
    red = [span for span in rising.spans if "red" in str(span.style)]
    assert [rising.plain[s.start : s.end] for s in red] == ["▅", "█"]  # only over the limit
    assert len(strip_text([0.1] * 100, limit=1.0, width=30).plain.splitlines()[1]) == 30


def test_ids_are_shortened_from_the_middle() -> None:
    from tui.format import fit_middle

    a = fit_middle("delete-deprecated-functions", 19)
    b = fit_middle("delete-deprecated-tables", 19)
    assert len(a) == len(b) == 19 and a != b
    assert a == "delete-de…functions" and b == "delete-de…ed-tables"
    assert fit_middle("inventory", 19) == "inventory"
