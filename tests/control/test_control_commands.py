"""CommandQueue: the one submit-and-wait (call / acall), and replies that wait for a model build.

Run against the real Pipeline (synthetic source, null sink); a segmenter factory that sleeps
stands in for a slow model load.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgcam.config import Config, SegmentConfig
from bgcam.control.commands import SETUP_TICKS, CommandQueue
from bgcam.control.grammar import Command, CommandError, CommandTimeout
from bgcam.pipeline import Pipeline
from bgcam.segment import Segmenter, available, create_segmenter
from tests.live_media import wait_for


def slow_build(cfg: SegmentConfig, size: tuple[int, int]) -> Segmenter:
    if threading.current_thread().name == "bgcam-build":
        time.sleep(1.5)
    return create_segmenter(cfg, size)


@pytest.fixture
def pipeline(model_dir: Path) -> Iterator[Pipeline]:
    available()
    cfg = Config().replace(
        **{
            "source.uri": "synthetic:160x90",
            "output.sink": "null",
            "output.governor": False,
            "segment.segmenter": "hsv",
            "compose.backend": "cpu",
            "log.stats_interval": 0.0,
        }
    )
    pipe = Pipeline(cfg, build_segmenter=slow_build)
    thread = threading.Thread(target=pipe.run, name="pipeline")
    thread.start()
    try:
        wait_for(lambda: pipe.stats.summary()["frames_out"] > 3, 60, "frames")
        yield pipe
    finally:
        pipe.request_stop()
        thread.join(20)


def test_call_returns_the_status_after_the_change(pipeline: Pipeline) -> None:
    reply = pipeline.commands.call(Command("blur", 70), 10)
    assert reply.blur == 70 and pipeline.config.compose.blur == 70
    with pytest.raises(CommandError, match="background: no such file"):
        pipeline.commands.call(Command("background", "/nonexistent.png"), 10)


def test_a_command_nobody_applies_is_withdrawn() -> None:
    queue = CommandQueue()
    with pytest.raises(CommandTimeout, match="not applied") as err:
        queue.call(Command("toggle"), 0.05)
    assert err.value.applied is False
    ((cmd, fut),) = queue.drain()
    assert cmd.name == "toggle" and fut.cancelled()  # run_pending skips it: it will never run


def test_a_reply_waits_for_the_build_and_later_commands_wait_too(pipeline: Pipeline) -> None:
    cmds = pipeline.commands
    assert cmds.submit(Command("segmenter", "hsv")).result(10).segmenter == "hsv"  # no change
    t0 = time.monotonic()
    fut = cmds.submit(Command("segmenter", "onnx"))
    after = cmds.submit(Command("blur", 20))
    wait_for(lambda: pipeline.settling() is not None, 10, "the build to start")
    assert not after.done()  # held until the build is in use: commands stay in order
    reply = fut.result(30)
    assert time.monotonic() - t0 >= 1.5
    assert reply.config.segment.segmenter == "onnx"
    assert after.result(10).blur == 20


def test_call_on_a_running_build_waits_then_says_still_running(pipeline: Pipeline) -> None:
    with pytest.raises(CommandTimeout, match="still running") as err:
        pipeline.commands.call(Command("segmenter", "onnx"), 0.3)
    assert err.value.applied is None
    wait_for(lambda: pipeline.config.segment.segmenter == "onnx", 30, "the build to land")


def test_acall_has_the_same_rules(pipeline: Pipeline) -> None:
    reply = asyncio.run(pipeline.commands.acall(Command("mode", "remove"), 10))
    assert reply.mode == "remove"
    with pytest.raises(CommandTimeout, match="not applied"):
        asyncio.run(CommandQueue().acall(Command("toggle"), 0.05))


def test_hooks_run_around_stage_set_up_and_not_in_steady_state(pipeline: Pipeline) -> None:
    """The signal guard's hook (:meth:`CommandQueue.add_hook`) costs the output thread nothing
    once the stages are set up: it runs on the first ticks, every tick of a build, and the
    SETUP_TICKS ticks after a build or a command, and then not at all."""
    calls: list[bool] = []  # one per run: whether a build was under way then
    frames = lambda: int(pipeline.stats.summary()["frames_out"])  # noqa: E731
    pipeline.commands.add_hook(lambda: calls.append(pipeline.settling() is not None))
    start = frames()
    wait_for(lambda: frames() > start + 2 * SETUP_TICKS, 60, "steady state")
    settled = len(calls)
    assert settled <= SETUP_TICKS + 1  # the first ticks after start only
    now = frames()
    wait_for(lambda: frames() > now + SETUP_TICKS, 60, "more frames")
    assert len(calls) == settled  # steady state: never
    pipeline.commands.call(Command("blur", 70), 10)  # a command: the next ticks, then quiet
    now = frames()
    wait_for(lambda: frames() > now + 2 * SETUP_TICKS, 60, "frames after the command")
    assert SETUP_TICKS - 1 <= len(calls) - settled <= SETUP_TICKS + 1
    assert not any(calls)
    settled = len(calls)
    t0 = time.monotonic()
    pipeline.commands.call(Command("segmenter", "onnx"), 30)  # a 1.5 s build: every tick of it
    assert time.monotonic() - t0 >= 1.5
    now = frames()
    wait_for(lambda: frames() > now + 2 * SETUP_TICKS, 60, "frames after the build")
    runs = calls[settled:]
    building = [i for i, b in enumerate(runs) if b]
    assert len(building) >= 10 and building == list(range(building[0], building[-1] + 1))
    assert SETUP_TICKS - 1 <= len(runs) - 1 - building[-1] <= SETUP_TICKS + 1
