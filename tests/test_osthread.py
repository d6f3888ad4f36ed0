"""The OS-level thread names that ``top -H`` and ``/proc/PID/task/*/comm`` show."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from bgcam.osthread import MAX_BYTES, name_this_thread

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="prctl names are Linux's")


def _comm_of(target: str | None, thread_name: str) -> str:
    seen: list[str] = []

    def run() -> None:
        name_this_thread(target)
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    t = threading.Thread(target=run, name=thread_name)
    t.start()
    t.join(5)
    return seen[0]


def test_a_thread_gets_its_python_name() -> None:
    assert _comm_of(None, "bgcam-segment") == "bgcam-segment"


def test_a_long_name_is_cut_to_what_the_kernel_keeps() -> None:
    name = "bgcam-capture-stream"
    assert _comm_of(None, name) == name[:MAX_BYTES]


def test_an_explicit_name_wins() -> None:
    assert _comm_of("bgcam-x", "Thread-9") == "bgcam-x"
