"""Compositors: put the sharp person over a blurred, replaced or removed background.

``compose(image, alpha)`` takes the BGR uint8 frame and the full-resolution float32 alpha
(1 = person) and returns the output frame (a buffer the compositor owns and reuses). ``alpha=None``
means no usable mask: the whole frame is treated as background (fail closed: nothing leaks).
Backends (cpu, opencl, cuda) are registered by name; ``auto`` picks by measurement.

**Settings changes off the output thread.** ``prepare(cfg)`` builds what a change needs that is
slow (a new blur's buffers and kernels, a background file opened, compositing sessions) and
touches nothing in use, so it runs on the engine's builder thread while frames keep coming;
``update(cfg, prepared)`` then only puts those parts in place, between two frames.
``update(cfg)`` without it prepares on the spot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from bgcam.config import ComposeConfig
from bgcam.effects import Background
from bgcam.errors import BackendError
from bgcam.frame import Image, Mask, ShrunkFrame, upsample_alpha8


class Prepared(Protocol):
    """The slow parts of one settings change, built by :meth:`Compositor.prepare`."""

    cfg: ComposeConfig

    def discard(self) -> None:
        """Close what was built (the change was dropped)."""
        ...


@dataclass(slots=True)
class SlotPrepared:
    """A change prepared by a backend whose slow parts are a new background file and, for
    some, sessions built for the new setting (``parts``, keyed as the backend caches them)."""

    cfg: ComposeConfig
    background: Background | None = None
    parts: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def discard(self) -> None:
        if self.background is not None:
            self.background.close()
            self.background = None
        self.parts.clear()


class Compositor(Protocol):
    name: str

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        """The output frame for ``image``; the result may be reused by the next call."""
        ...

    def compose_matte(self, frame: ShrunkFrame, alpha8_small: npt.NDArray[np.uint8]) -> Image:
        """:meth:`compose` of ``frame.image`` with the refiner's matte: an 8-bit alpha at the
        working size (or at frame size), blended as ``upsample_alpha8(alpha8_small) / 255``
        (:func:`bgcam.frame.upsample_alpha8`). A backend may start its blur from
        ``frame.small``, or ignore it.
        """
        ...

    def reads_background(self, small_size: tuple[int, int] | None) -> bool:
        """Whether :meth:`compose_matte`, given a shrunk frame of ``small_size`` (width, height;
        None: none), reads the picture where the matte is 0. False: the output does not depend
        on those pixels (the background is blurred from the shrunk frame, replaced or a
        colour), so the studio effects frame and relight only the person's part of it."""
        ...

    def prepare(self, cfg: ComposeConfig) -> Prepared:
        """Build what moving to ``cfg`` needs, touching nothing in use (any thread)."""
        ...

    def update(self, cfg: ComposeConfig, prepared: Prepared | None = None) -> None:
        """Apply new settings (mode, strength, type, background) between frames, with the
        parts ``prepared`` for ``cfg`` (else they are built now)."""
        ...

    def economise(self, level: int) -> str | None:
        """The governor's cheaper path of the same look: blur at ``2 ** level`` less resolution
        than planned (0: as planned). Returns what the blur now does in plain words, or None
        when ``level`` gives no coarser working size (nothing changes then)."""
        ...

    def close(self) -> None: ...


CompositorFactory = Callable[[ComposeConfig, tuple[int, int]], Compositor]


def check_inputs(frame_size: tuple[int, int], image: Image, alpha: Mask | None) -> None:
    """Raise ValueError unless ``image`` is (H, W, 3) and ``alpha`` (H, W) for ``frame_size``."""
    w, h = frame_size
    if image.shape != (h, w, 3):
        raise ValueError(f"image: expected shape ({h}, {w}, 3), got {image.shape}")
    if alpha is not None and alpha.shape != (h, w):
        raise ValueError(f"alpha: expected shape ({h}, {w}), got {alpha.shape}")


def check_matte(frame_size: tuple[int, int], alpha8_small: npt.NDArray[np.uint8]) -> None:
    """Raise ValueError unless ``alpha8_small`` is a 2-D uint8 map no larger than the frame."""
    w, h = frame_size
    shape = alpha8_small.shape
    if (
        alpha8_small.dtype != np.uint8
        or len(shape) != 2
        or not (0 < shape[0] <= h and 0 < shape[1] <= w)
    ):
        raise ValueError(
            f"alpha8_small: expected a uint8 (h, w) map with h ≤ {h} and w ≤ {w}, "
            f"got {alpha8_small.dtype} {shape}"
        )


class FloatCompositor:
    """Base of backends whose math is in float: :meth:`compose_matte` upsamples the 8-bit
    matte and converts it (``alpha8 / 255``, into reused buffers), then calls ``compose``."""

    frame_size: tuple[int, int]
    _alpha8: npt.NDArray[np.uint8] | None = None
    _alpha_f: Mask | None = None

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        raise NotImplementedError

    def compose_matte(self, frame: ShrunkFrame, alpha8_small: npt.NDArray[np.uint8]) -> Image:
        check_matte(self.frame_size, alpha8_small)
        w, h = self.frame_size
        if self._alpha8 is None or self._alpha_f is None:
            self._alpha8 = np.empty((h, w), np.uint8)
            self._alpha_f = np.empty((h, w), np.float32)
        a8 = upsample_alpha8(alpha8_small, self.frame_size, self._alpha8)
        np.multiply(a8, np.float32(1.0 / 255.0), out=self._alpha_f)
        return self.compose(frame.image, self._alpha_f)

    def reads_background(self, small_size: tuple[int, int] | None) -> bool:
        return True  # the float math runs over the whole picture


_REGISTRY: dict[str, CompositorFactory] = {}


def register(name: str) -> Callable[[CompositorFactory], CompositorFactory]:
    def deco(factory: CompositorFactory) -> CompositorFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def _load_builtins() -> None:
    # Registered everywhere; creating opencl/cuda raises BackendError saying why it cannot run.
    from bgcam.compose import cpu, cuda, opencl  # noqa: F401


def available() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def create_compositor(cfg: ComposeConfig, frame_size: tuple[int, int]) -> Compositor:
    """Create the compositor ``cfg.backend`` for ``frame_size``; ``auto`` measures and picks."""
    _load_builtins()
    if cfg.backend == "auto":
        from bgcam.compose.auto import choose

        return choose(cfg, frame_size)[0]
    name = cfg.backend
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise BackendError(
            f"compositor backend {name!r} is not available here; "
            f"available: {', '.join(sorted(_REGISTRY))}",
            hint='set compose.backend = "cpu" (or run `bgcam doctor` to see why)',
        ) from None
    return factory(cfg, frame_size)
