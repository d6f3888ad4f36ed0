"""The mask exchange: a triple buffer that never tears, the age policy (fail closed), and the
output's bounded wait for a frame's own matte (real threads)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bgcam.frame import Frame
from bgcam.live.masks import MaskBuffer, MaskExchange, max_mask_age


def test_mask_buffer_hands_over_without_tearing() -> None:
    buf = MaskBuffer()
    assert buf.acquire() is None
    alpha8, small = np.full((2, 4), 255, np.uint8), np.full((2, 4, 3), 7, np.uint8)
    buf.publish(alpha8, small, 7, 1.5)
    alpha8[:] = 0  # the published matte is a copy, not the refiner's buffer
    got = buf.acquire()
    assert got is not None
    matte, index, t = got
    assert index == 7 and t == 1.5 and matte.alpha8.min() == 255 and matte.small.min() == 7
    buf.publish(np.full((2, 4), 128, np.uint8), small, 8, 1.6)  # the one being read is untouched
    assert matte.alpha8.min() == 255
    got = buf.acquire()
    assert got is not None and got[1] == 8 and got[0].alpha8.min() == 128
    # A new refiner with another working size: the next matte has that size.
    buf.publish(np.full((3, 5), 9, np.uint8), np.zeros((3, 5, 3), np.uint8), 9, 1.7)
    got = buf.acquire()
    assert got is not None and got[0].alpha8.shape == (3, 5) and got[0].small.shape == (3, 5, 3)
    buf.invalidate()
    assert buf.acquire() is None


def test_mask_age_bound() -> None:
    assert max_mask_age(1, 30.0) == pytest.approx(0.2)
    assert max_mask_age(10, 30.0) == pytest.approx(11 / 30)


@pytest.mark.parametrize(
    ("t_frame", "index", "every", "expected"),
    [
        (1.0, 7, 1, "same"),  # the matte of this very frame
        (1.1, 8, 1, "other"),  # one frame later: usable, but not this frame's shrunk copy
        (1.19, 9, 1, "other"),  # just inside 0.2 s
        (1.21, 9, 1, None),  # just outside: refused, the whole frame is blurred
        (0.79, 5, 1, None),  # older frames than the mask: the bound works both ways
        (1.3, 10, 10, "other"),  # segmenting every 10th frame at 30 fps: 11/30 s allowed
    ],
)
def test_the_exchange_hands_out_only_usable_mattes(
    t_frame: float, index: int, every: int, expected: str | None
) -> None:
    ex = MaskExchange()
    image = np.zeros((4, 4, 3), np.uint8)
    assert ex.usable(Frame(image, 7, 1.0), 1, 30.0) is None  # nothing published yet
    ex.publish(np.full((2, 2), 200, np.uint8), np.zeros((2, 2, 3), np.uint8), 7, 1.0)
    got = ex.usable(Frame(image, index, t_frame), every, 30.0)
    if expected is None:
        assert got is None
    else:
        assert got is not None
        matte, same = got
        assert matte.alpha8.min() == 200 and same is (expected == "same")


def test_a_failure_invalidates_the_matte() -> None:
    ex = MaskExchange()
    ex.publish(np.zeros((2, 2), np.uint8), np.zeros((2, 2, 3), np.uint8), 1, 1.0)
    ex.invalidate()
    assert ex.usable(Frame(np.zeros((4, 4, 3), np.uint8), 1, 1.0), 1, 30.0) is None


def _matte(ex: MaskExchange, index: int) -> None:
    ex.publish(np.full((2, 2), 200, np.uint8), np.zeros((2, 2, 3), np.uint8), index, 0.0)


def _wait_in_thread(
    ex: MaskExchange, index: int, seconds: float
) -> tuple[threading.Thread, list[float | None]]:
    """``wait_own(index)`` with a deadline ``seconds`` away, on its own thread."""
    result: list[float | None] = []
    deadline = time.monotonic() + seconds
    thread = threading.Thread(target=lambda: result.append(ex.wait_own(index, deadline)))
    thread.start()
    return thread, result


@pytest.mark.parametrize(
    ("taken", "segment", "then", "index", "waits"),
    [
        (None, False, False, 0, False),  # the worker has taken nothing: nothing is coming
        (5, True, True, 5, True),  # it segments this frame now
        (5, True, False, 5, True),  # also when it skips the next (governor every > 1)
        (4, True, True, 5, True),  # it segments every frame and has not reached this one
        (4, False, True, 5, True),  # (a skipped frame while the next one is due)
        (4, True, False, 5, False),  # it will skip the next frame (every > 1)
        (5, False, False, 5, False),  # it took this frame and skips it
        (6, True, True, 5, False),  # it moved on to a newer frame: this one is never segmented
    ],
)
def test_the_output_waits_only_for_a_matte_that_is_coming(
    taken: int | None, segment: bool, then: bool, index: int, waits: bool
) -> None:
    ex = MaskExchange()
    if taken is not None:
        ex.taken(taken, segment=segment, then=then)
    got = ex.wait_own(index, time.monotonic() + (0.05 if waits else 30.0))
    assert (got is not None) is waits


def test_a_publish_of_the_frame_wakes_the_waiting_output() -> None:
    ex = MaskExchange()
    _matte(ex, 4)
    ex.taken(5, segment=True, then=True)
    thread, result = _wait_in_thread(ex, 5, 60.0)
    _matte(ex, 5)
    thread.join(20.0)
    assert not thread.is_alive() and result and result[0] is not None
    got = ex.usable(Frame(np.zeros((4, 4, 3), np.uint8), 5, 0.0), 1, 30.0)
    assert got is not None and got[1] is True  # the frame's own matte


@pytest.mark.parametrize("wake", ["idle", "invalidate", "skip"])
def test_a_stop_a_failure_or_a_skip_wakes_the_waiting_output(wake: str) -> None:
    ex = MaskExchange()
    ex.taken(4, segment=True, then=True)  # the next frame, 5, is coming
    thread, result = _wait_in_thread(ex, 5, 60.0)
    if wake == "idle":
        ex.idle()  # the worker stops
    elif wake == "invalidate":
        ex.invalidate()  # segmentation failed
    else:
        ex.taken(5, segment=False, then=False)  # the governor skips frame 5
    thread.join(20.0)  # far shorter than the deadline: the wait was ended, not timed out
    assert not thread.is_alive() and result and result[0] is not None


def test_the_wait_ends_at_the_deadline() -> None:
    ex = MaskExchange()
    ex.taken(5, segment=True, then=True)  # and never published
    waited = ex.wait_own(5, time.monotonic() + 0.05)
    assert waited is not None and waited > 0.0
    assert ex.usable(Frame(np.zeros((4, 4, 3), np.uint8), 5, 0.0), 1, 30.0) is None


def test_no_wait_for_a_matte_that_would_come_after_the_deadline() -> None:
    ex = MaskExchange()
    ex.taken(5, segment=True, then=True)
    time.sleep(0.2)  # segmenting frame 5 took at least 0.2 s
    _matte(ex, 5)
    ex.taken(6, segment=True, then=True)
    assert ex.wait_own(6, time.monotonic() + 0.05) is None  # 0.2 s would be needed: no wait
    assert ex.wait_own(7, time.monotonic() + 0.05) is None  # (and after it: 0.4 s)
    thread, result = _wait_in_thread(ex, 6, 60.0)  # a longer deadline: it is waited for
    _matte(ex, 6)
    thread.join(20.0)
    assert not thread.is_alive() and result and result[0] is not None
