"""The rate-limited logging filter: a repeating line is logged a few times, then counted."""

from __future__ import annotations

import logging

import pytest

from bgcam.logutil import BURST, GLOBAL_PER_SECOND, RateLimitFilter, install


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Captured = tuple[logging.Logger, list[logging.LogRecord], Clock]


@pytest.fixture
def captured() -> Captured:
    clock = Clock()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(RateLimitFilter(window=10.0, clock=clock))
    logger = logging.getLogger("bgcam.test.logutil")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, records, clock


def test_a_repeating_line_is_logged_then_counted(captured: Captured) -> None:
    logger, records, clock = captured

    def fail() -> None:  # one call site
        logger.warning("accept failed: %s", "EMFILE")

    for _ in range(1000):
        clock.now += 0.001
        fail()
    assert len(records) == BURST
    clock.now += 10.0  # the next window: the count comes with the next line
    fail()
    assert len(records) == BURST + 1
    assert f"{1000 - BURST:,} more like this were not logged" in records[-1].getMessage()


def test_a_traceback_is_shown_once_per_window(captured: Captured) -> None:
    logger, records, clock = captured
    for _ in range(3):
        clock.now += 0.2
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.exception("accept failed")
    assert records[0].exc_info is not None
    assert all(r.exc_info is None for r in records[1:])
    assert "traceback as above" in records[1].getMessage()


def test_repeats_of_all_sites_together_are_capped(captured: Captured) -> None:
    logger, records, _clock = captured

    def site_a() -> None:
        logger.info("a")

    def site_b() -> None:
        logger.info("b")

    def site_c() -> None:
        logger.info("c")

    for _ in range(BURST):  # within one second: 3 first lines, then repeats
        site_a()
        site_b()
        site_c()
    assert len(records) == 3 + GLOBAL_PER_SECOND
    assert [r.getMessage() for r in records[:3]] == ["a", "b", "c"]


def test_install_puts_one_filter_on_a_handler() -> None:
    handler = logging.NullHandler()
    first = install(handler)
    assert install(handler) is first
    assert handler.filters == [first]
