"""The live knobs at a batch boundary: pause holds `Clock.check()`, resume releases it, a stop
wins over a pause, the rate spaces batches out. Real threads, no sleeps as waits."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from engine.control.peer import peer_allowed
from engine.control.throttle import BATCH_ITEMS, OperatorThrottle
from engine.core.clock import Clock, Interrupted
from engine.core.throttle import WriteThrottle


def _until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _batches(clock: Clock, passed: list[float], stop_after: int | None = None) -> threading.Thread:
    """An 'action': checks the clock between batches, records when each batch was admitted."""

    def body() -> None:
        try:
            while stop_after is None or len(passed) < stop_after:
                clock.check(BATCH_ITEMS)
                passed.append(time.monotonic())
        except Interrupted:
            passed.append(-1.0)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def test_pause_holds_at_the_boundary_and_resume_goes_on() -> None:
    holds: list[bool] = []
    throttle = OperatorThrottle(on_hold=lambda: holds.append(throttle.held))
    stop = threading.Event()
    clock = Clock(stop=stop, boundary=throttle.at_boundary)
    assert throttle.pause() and not throttle.pause()  # a second pause changes nothing
    passed: list[float] = []
    thread = _batches(clock, passed, stop_after=3)
    _until(lambda: throttle.held)
    assert passed == [] and holds == [True]  # nothing got past the boundary
    assert throttle.resume()
    thread.join(5)
    assert len(passed) == 3 and not throttle.held and holds == [True, False]


def test_paused_only_once_every_writer_finished_the_batch_it_began() -> None:
    throttle = OperatorThrottle()
    stop = threading.Event()
    clock = Clock(stop=stop, boundary=throttle.at_boundary)
    writing, finish = threading.Event(), threading.Event()

    def segment_mid_batch() -> None:
        clock.check(BATCH_ITEMS)  # let through before the pause: it writes its batch
        writing.set()
        finish.wait(5)
        clock.check(BATCH_ITEMS)  # back at the boundary: held

    first = threading.Thread(target=segment_mid_batch, daemon=True)
    first.start()
    writing.wait(5)
    throttle.pause()
    second = _batches(clock, [], stop_after=1)  # another segment reaches the boundary
    _until(lambda: throttle.waiting == 1)
    assert throttle.paused and not throttle.held  # pausing: the first one still writes
    finish.set()
    _until(lambda: throttle.waiting == 2)
    assert throttle.held
    throttle.resume()
    first.join(5)
    second.join(5)
    assert not first.is_alive() and not second.is_alive()


def test_a_stop_interrupts_a_paused_action() -> None:
    throttle = OperatorThrottle()
    stop = threading.Event()
    clock = Clock(stop=stop, boundary=throttle.at_boundary)
    throttle.pause()
    passed: list[float] = []
    thread = _batches(clock, passed)
    _until(lambda: throttle.held)
    started = time.monotonic()
    stop.set()
    thread.join(5)
    assert passed == [-1.0]  # Interrupted, not a batch
    assert time.monotonic() - started < 1.0


def test_rate_spaces_batches_and_a_change_applies_at_once() -> None:
    throttle = OperatorThrottle()
    throttle.set_throttle(rate=BATCH_ITEMS * 20.0)  # 20 batches a second
    stop = threading.Event()
    clock = Clock(stop=stop, boundary=throttle.at_boundary)
    passed: list[float] = []
    _batches(clock, passed, stop_after=6).join(5)
    gaps = [b - a for a, b in itertools.pairwise(passed)]
    assert min(gaps) >= 0.045  # 1/20 s apart, whatever the loop's own speed
    throttle.set_throttle(rate=BATCH_ITEMS * 0.01)  # one batch per 100 s
    slow: list[float] = []
    thread = _batches(clock, slow, stop_after=1)
    thread.join(0.3)
    assert slow == []  # the next batch is due in 100 s
    throttle.set_throttle(rate=None)  # off: the waiting batch goes at once
    thread.join(2)
    assert len(slow) == 1 and throttle.settings.rate is None


def test_the_rate_paces_writes_only_never_flags_polls_or_reads() -> None:
    """Issue 20, item 11: at 2 items/s four flag updates took 38 s; what writes no item passes
    a boundary at once, and a pause still holds it."""
    throttle = OperatorThrottle()
    throttle.set_throttle(rate=2.0, segments=1)
    stop = threading.Event()
    clock = Clock(stop=stop, boundary=throttle.at_boundary)
    started = time.monotonic()
    for _ in range(200):
        clock.check()  # a flag update, a poll, a scan page read
    assert time.monotonic() - started < 1.0
    clock.check(2)  # the first write batch goes at once; the next is due a second later
    passed: list[float] = []
    writes = threading.Thread(target=lambda: (clock.check(2), passed.append(1.0)), daemon=True)
    writes.start()
    writes.join(0.3)
    assert passed == []  # paced
    throttle.pause()
    reader: list[float] = []
    held = threading.Thread(target=lambda: (clock.check(), reader.append(1.0)), daemon=True)
    held.start()
    _until(lambda: throttle.waiting >= 1)
    assert reader == []  # a pause holds what writes nothing too
    throttle.resume()
    held.join(5)
    writes.join(5)
    assert reader == [1.0] and passed == [1.0]


def test_segments_limits_the_threads_writing_at_once() -> None:
    throttle = OperatorThrottle()
    throttle.set_throttle(segments=1)
    stop = threading.Event()
    clock = Clock(stop=stop, boundary=throttle.at_boundary)
    writing, finish = threading.Event(), threading.Event()

    def first_segment() -> None:
        clock.check(BATCH_ITEMS)  # let through: writes its batch until told
        writing.set()
        finish.wait(5)
        clock.check(BATCH_ITEMS)  # back at a boundary: its slot is free (then it waits its turn)

    first = threading.Thread(target=first_segment, daemon=True)
    first.start()
    writing.wait(5)
    passed: list[float] = []
    second = _batches(clock, passed, stop_after=1)
    second.join(0.3)
    assert passed == []  # one segment at work at a time: the second waits
    finish.set()
    second.join(5)
    assert len(passed) == 1
    throttle.set_throttle(segments=None)
    first.join(5)
    assert not first.is_alive()


def test_in_flight_goes_to_the_write_throttle_when_there_is_one() -> None:
    class Limit:  # the interface writepath's WriteThrottle offers
        def __init__(self) -> None:
            self.calls: list[int | None] = []

        def set_limit(self, k: int) -> int:
            self.calls.append(k)
            return k

        def clear_limit(self) -> None:
            self.calls.append(None)

    limit = Limit()
    applied = OperatorThrottle(limit).set_throttle(in_flight=4)
    assert applied.in_flight == 4 and applied.in_flight_applied and limit.calls == [4]
    recorded = OperatorThrottle(None).set_throttle(in_flight=4, segments=2)
    assert recorded.in_flight == 4 and not recorded.in_flight_applied
    assert "segments 2 at once" in recorded.describe()
    with pytest.raises(ValueError):
        OperatorThrottle().set_throttle(speed=3)


def test_capacity_share_goes_to_the_write_throttle_and_off_gives_the_runbooks_back() -> None:
    throttle = WriteThrottle()
    operator = OperatorThrottle(write_throttle=throttle)
    settings = operator.set_throttle(capacity_share=0.3)
    assert throttle.capacity_share == 0.3 and "capacity share 30%" in settings.describe()
    assert operator.set_throttle(rate=5).capacity_share == 0.3  # the others keep their values
    operator.set_throttle(capacity_share=None)
    assert throttle.capacity_share is None
    with pytest.raises(ValueError):
        operator.set_throttle(capacity_share=1.5)


def test_peer_check_admits_the_same_uid_only() -> None:
    assert peer_allowed(1000, own_uid=1000)
    assert not peer_allowed(1001, own_uid=1000)
    assert not peer_allowed(1000, own_uid=0)  # root's engine: only root


def test_a_pause_holds_inside_a_wait_and_the_waits_time_stands_still() -> None:
    """A watch window's tick (sleep_plan) paused mid-way: the thread is held (counted, so
    the engine says `paused`), the wait does not end while paused, and once resumed it
    still waits the rest of its time: paused time never counts as waited."""
    throttle = OperatorThrottle()
    stop = threading.Event()
    clock = Clock(10.0, stop=stop, boundary=throttle.at_boundary, hold=throttle.in_wait)
    waiting, done = threading.Event(), threading.Event()
    took: list[float] = []

    def body() -> None:
        clock.check()  # the tick's boundary (writes nothing: paused only, never paced)
        waiting.set()
        began = time.monotonic()
        clock.sleep_plan(10.0)  # 1 s of wall time at x10
        took.append(time.monotonic() - began)
        done.set()

    threading.Thread(target=body, daemon=True).start()
    assert waiting.wait(5)
    paused_at = time.monotonic()
    throttle.pause()
    _until(lambda: throttle.held)  # held inside the wait, not only at the next boundary
    assert throttle.waiting == 1
    window = paused_at + 1.5  # past the wait's own end: it must not end while paused
    while time.monotonic() < window:
        assert not done.is_set()
    resumed_at = time.monotonic()
    throttle.resume()
    assert done.wait(5)
    held_for = resumed_at - paused_at
    assert took[0] >= 1.0 + held_for - 0.15  # the paused time was added, not counted
    assert not throttle.held


def test_a_stop_ends_a_paused_wait_and_a_wait_follows_the_clock() -> None:
    throttle = OperatorThrottle()
    stop = threading.Event()
    scale = [1.0]
    clock = Clock(lambda: scale[0], stop=stop, boundary=throttle.at_boundary, hold=throttle.in_wait)
    throttle.pause()
    outcome: list[str] = []

    def body() -> None:
        try:
            clock.sleep_plan(3600.0)
            outcome.append("slept")
        except Interrupted:
            outcome.append("interrupted")

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    _until(lambda: throttle.held)
    stop.set()  # a stop wins over the pause
    thread.join(2)
    assert outcome == ["interrupted"]

    # an hour of plan time at x1, then the operator moves the clock to x360000 mid-wait
    stop.clear()
    throttle.resume()
    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    began = time.monotonic()
    scale[0] = 360_000.0
    thread.join(5)
    assert outcome == ["interrupted", "slept"] and time.monotonic() - began < 1.0
