"""The consistency sample's draw from the key index (pure): uniform over a stream of unknown
length, in one pass, keeping only the sample in memory."""

from __future__ import annotations

import random
from collections import Counter

from engine.actions.traffic.sample import uniform_keys


def test_every_row_is_as_likely_to_be_drawn() -> None:
    rng = random.Random(7)
    drawn: Counter[int] = Counter()
    for _ in range(4000):
        drawn.update(uniform_keys(iter(range(20)), 5, rng))
    # each row is drawn 5/20 of the time: 1000 of 4000, within a few standard deviations
    assert all(850 < drawn[row] < 1150 for row in range(20)), drawn


def test_a_short_stream_is_drawn_whole_and_once() -> None:
    assert sorted(uniform_keys(iter(range(3)), 5, random.Random(1))) == [0, 1, 2]


def test_the_same_seed_draws_the_same_rows() -> None:
    rows = [(f"user-{n % 3}", f"e{n}") for n in range(1000)]
    first = uniform_keys(iter(rows), 10, random.Random(42))
    assert first == uniform_keys(iter(rows), 10, random.Random(42)) and len(set(first)) == 10
