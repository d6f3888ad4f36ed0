"""Compositors: put the sharp person over a blurred, replaced or removed background.

``compose(image, alpha)`` takes the BGR uint8 frame and the full-resolution float32 alpha
(1 = person) and returns the output frame (a buffer the compositor owns and reuses). ``alpha=None``
means no usable mask: the whole frame is treated as background (fail closed: nothing leaks).
Backends (cpu, opencl, cuda) are registered by name; ``auto`` picks by measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from bgcam.config import ComposeConfig
from bgcam.errors import BackendError
from bgcam.frame import Image, Mask


class Compositor(Protocol):
    name: str

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        """The output frame for ``image``; the result may be reused by the next call."""
        ...

    def compose_matte(
        self,
        image: Image,
        alpha8: npt.NDArray[np.uint8],
        alpha8_small: npt.NDArray[np.uint8] | None = None,
        small: Image | None = None,
    ) -> Image:
        """:meth:`compose` with an 8-bit alpha (blended as ``alpha8 / 255``), the refiner's form.

        ``alpha8_small`` is the working-size alpha ``alpha8`` was upsampled from and ``small``
        the frame shrunk for refining; a backend may use them to skip work, or ignore them.
        """
        ...

    def update(self, cfg: ComposeConfig) -> None:
        """Apply new settings (mode, strength, type, background) between frames."""
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


class FloatCompositor:
    """Base of backends whose math is in float: :meth:`compose_matte` converts the 8-bit alpha
    (``alpha8 / 255`` into a reused buffer) and calls the subclass's ``compose``."""

    _alpha_f: Mask | None = None

    def compose(self, image: Image, alpha: Mask | None) -> Image:
        raise NotImplementedError

    def compose_matte(
        self,
        image: Image,
        alpha8: npt.NDArray[np.uint8],
        alpha8_small: npt.NDArray[np.uint8] | None = None,
        small: Image | None = None,
    ) -> Image:
        buf = self._alpha_f
        if buf is None or buf.shape != alpha8.shape:
            buf = self._alpha_f = np.empty(alpha8.shape, np.float32)
        np.multiply(alpha8, np.float32(1.0 / 255.0), out=buf)
        return self.compose(image, buf)


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
