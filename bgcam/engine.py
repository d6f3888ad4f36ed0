"""The processing chain for one frame size: segment → refine → compose, on the calling thread.

``bgcam render`` and ``bgcam bench`` drive it directly; the live pipeline runs its stages on
separate threads but builds them the same way. All buffers are owned by the stages and reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bgcam.compose import Compositor, create_compositor
from bgcam.config import Config
from bgcam.frame import Image, Mask
from bgcam.refine import MaskRefiner
from bgcam.segment import Segmenter, create_segmenter


@dataclass(slots=True)
class StageTimes:
    """Milliseconds spent in each stage by the last processed frame."""

    segment: float = 0.0
    refine: float = 0.0
    compose: float = 0.0

    @property
    def total(self) -> float:
        return self.segment + self.refine + self.compose


class Engine:
    """Segmenter, refiner and compositor for frames of ``frame_size`` (width, height)."""

    def __init__(
        self,
        cfg: Config,
        frame_size: tuple[int, int],
        *,
        segmenter: Segmenter | None = None,
        compositor: Compositor | None = None,
    ) -> None:
        self.cfg = cfg
        self.frame_size = frame_size
        self.segmenter = segmenter or create_segmenter(cfg.segment, frame_size)
        try:
            self.refiner = MaskRefiner(cfg.refine, frame_size)
            self.compositor = compositor or create_compositor(cfg.compose, frame_size)
        except BaseException:
            # Free the segmenter now: MediaPipe's finaliser fails noisily at interpreter exit.
            if segmenter is None:
                self.segmenter.close()
            raise
        self.times = StageTimes()
        self._refined = False

    @property
    def alpha(self) -> Mask | None:
        """The full-resolution alpha of the last frame (owned by the refiner, reused), or None.

        Exactly the matte the compositor blended with; computed on first access.
        """
        return self.refiner.alpha if self._refined else None

    def process(self, image: Image, *, segment: bool = True) -> Image:
        """Composite one frame. ``segment=False`` reuses the previous mask (smoother carries it)."""
        t0 = time.monotonic()
        refiner = self.refiner
        small: Image | None = None
        if segment or not self._refined:
            # Shrunk once for both: the segmenter starts from the refiner's copy when it can.
            low = self.segmenter.segment(image, refiner.shrink(image))
            t1 = time.monotonic()
            refiner.update(low, image)
            self._refined = True
            small = refiner.small  # the frame shrunk for refining: the blur starts from it
        else:
            t1 = t0
        t2 = time.monotonic()
        out = self.compositor.compose_matte(image, refiner.alpha8_small, small)
        t3 = time.monotonic()
        times = self.times
        times.segment = (t1 - t0) * 1e3
        times.refine = (t2 - t1) * 1e3
        times.compose = (t3 - t2) * 1e3
        return out

    def update(self, cfg: Config) -> None:
        """Swap in a new config, rebuilding only the stages whose section changed."""
        old, self.cfg = self.cfg, cfg
        if cfg.segment != old.segment:
            self.segmenter.close()
            self.segmenter = create_segmenter(cfg.segment, self.frame_size)
        if cfg.refine != old.refine:
            self.refiner = MaskRefiner(cfg.refine, self.frame_size)
            self._refined = False
        if cfg.compose != old.compose:
            if cfg.compose.backend != old.compose.backend:
                self.compositor.close()
                self.compositor = create_compositor(cfg.compose, self.frame_size)
            else:
                self.compositor.update(cfg.compose)

    def close(self) -> None:
        self.segmenter.close()
        self.compositor.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
