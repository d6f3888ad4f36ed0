"""The processing chain for one frame size: segment → refine → compose, and the one place that
builds and swaps its stages.

``bgcam render`` and ``bgcam bench`` call :meth:`Engine.process` on one thread. The live pipeline
runs the segment side (:meth:`Engine.mask`) on its segmentation thread and the compose side
(:meth:`Engine.compose`) on its output thread. A new config becomes a :class:`StageSwap` with one
call, :meth:`Engine.plan` (which builds the new stages and touches nothing live), so it can run on
a builder thread (:meth:`Engine.plan_async`) while the output keeps its rate; each side then swaps
its stages in between frames. All buffers are owned by the stages and reused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bgcam.compose import Compositor, Prepared, create_compositor
from bgcam.compose.cpu import CpuCompositor
from bgcam.compose.i420 import I420Composer
from bgcam.config import ComposeConfig, Config, SegmentConfig
from bgcam.frame import Image, Mask, ShrunkFrame, resize_bilinear, upsample_alpha8
from bgcam.refine import MaskRefiner
from bgcam.segment import Segmenter, create_segmenter
from bgcam.studio import FramedPicture, Studio

log = logging.getLogger(__name__)

__all__ = [
    "Engine",
    "SegmenterFactory",
    "StageSwap",
    "StageTimes",
    "builds_models",
    "builds_off_thread",
    "composite",
]

SegmenterFactory = Callable[[SegmentConfig, tuple[int, int]], Segmenter]


@dataclass(slots=True)
class StageTimes:
    """Milliseconds spent in each stage by the last processed frame."""

    segment: float = 0.0
    refine: float = 0.0
    studio: float = 0.0
    compose: float = 0.0

    @property
    def total(self) -> float:
        return self.segment + self.refine + self.studio + self.compose


@dataclass(slots=True)
class StageSwap:
    """What changes when the engine moves to ``cfg``: the new stages, built, not yet in use.

    The segment side (``segmenter``, ``refiner``) is swapped in by the thread that segments, the
    compose side (``compositor``: a new backend; ``compose``: new settings for the same one) by
    the thread that composes. A swap that is dropped must be discarded (its stages closed).
    """

    cfg: Config
    segmenter: Segmenter | None = None
    refiner: MaskRefiner | None = None
    compositor: Compositor | None = None
    compose: ComposeConfig | None = None
    prepared: Prepared | None = None
    """The slow parts of the ``compose`` change (a new blur, background), already built."""

    keyframes: bool = False
    """``segment.max_skip`` changed (nothing to build: the segment side takes it at the swap)."""

    @property
    def segment_side(self) -> bool:
        return self.segmenter is not None or self.refiner is not None or self.keyframes

    def discard_segment_side(self) -> None:
        if self.segmenter is not None:
            self.segmenter.close()
        self.segmenter = self.refiner = None

    def discard(self) -> None:
        self.discard_segment_side()
        if self.prepared is not None:
            self.prepared.discard()
            self.prepared = None
        if self.compositor is not None:
            self.compositor.close()
            self.compositor = None


def builds_off_thread(old: Config, new: Config) -> bool:
    """Should moving from ``old`` to ``new`` be built off the output thread? Every change that
    builds a stage (a model load) or touches the compositor (a new blur, a background file):
    the output keeps its rate meanwhile, and the change lands at the next frame after."""
    return builds_models(old, new) or new.compose != old.compose


def _models(seg: SegmentConfig) -> SegmentConfig:
    """``seg`` without the settings that build nothing (the keyframe gate's)."""
    return seg.model_copy(update={"max_skip": 0})


def builds_models(old: Config, new: Config) -> bool:
    """Would moving from ``old`` to ``new`` build a stage (a model load: keep it off the clock)?"""
    return (
        _models(new.segment) != _models(old.segment)
        or new.refine != old.refine
        or new.compose.backend != old.compose.backend
    )


def composite(
    compositor: Compositor | I420Composer,
    picture: Image | FramedPicture,
    matte: npt.NDArray[np.uint8] | None,
    small: Image | None,
) -> Image:
    """The compositor's output for what the studio effects hand over (:meth:`Engine.compose`):
    a picture, or a :class:`~bgcam.studio.FramedPicture` that the CPU compositor draws straight
    into its output (the studio defers the crop only to it, and only with a matte and a shrunk
    picture); ``matte=None`` blurs everything. An :class:`I420Composer` gives the same in I420."""
    if isinstance(picture, FramedPicture):
        assert isinstance(compositor, CpuCompositor | I420Composer)
        assert matte is not None and small is not None
        return compositor.compose_framed(picture, small, matte)
    if matte is None:
        return compositor.compose(picture, None)
    return compositor.compose_matte(ShrunkFrame(picture, small), matte)


class Engine:
    """Segmenter, refiner and compositor for frames of ``frame_size`` (width, height).

    ``segmenter`` is used instead of building the configured one at start; ``build_segmenter``
    builds every segmenter (both are seams for tests and alternate components).
    """

    def __init__(
        self,
        cfg: Config,
        frame_size: tuple[int, int],
        *,
        segmenter: Segmenter | None = None,
        compositor: Compositor | None = None,
        build_segmenter: SegmenterFactory = create_segmenter,
    ) -> None:
        self.cfg = cfg
        self.frame_size = frame_size
        self._build_segmenter = build_segmenter
        self.segmenter = segmenter or build_segmenter(cfg.segment, frame_size)
        try:
            self.refiner = MaskRefiner(cfg.refine, frame_size)
            self.compositor = compositor or create_compositor(cfg.compose, frame_size)
        except BaseException:
            # Free the segmenter now: MediaPipe's finaliser fails noisily at interpreter exit.
            if segmenter is None:
                self.segmenter.close()
            raise
        self.studio = Studio(cfg.effects, frame_size)
        self.times = StageTimes()
        self._max_skip = cfg.segment.max_skip
        self._skipped = 0
        self._key_next = True
        self.keyframe = True
        """Whether the last :meth:`mask` ran the model (else it propagated the last matte)."""
        self.keyframes = 0
        self.propagated = 0
        self._refined = False
        self._small = np.empty((1, 1, 3), np.uint8)
        self._frame = ShrunkFrame(self._small)
        self._builder: threading.Thread | None = None
        self._framed: npt.NDArray[np.uint8] | None = None
        self._framed_a8: npt.NDArray[np.uint8] | None = None
        self._framed_alpha: Mask | None = None
        self._i420: I420Composer | None = None
        self._i420_said: object = None

    @property
    def alpha(self) -> Mask | None:
        """The full-resolution alpha of the last frame (reused buffers), or None.

        Exactly the matte the compositor blended with (auto-framed like the picture when
        auto-framing is on); computed on first access.
        """
        if not self._refined:
            return None
        framed = self._framed
        if framed is None:
            return self.refiner.alpha
        w, h = self.frame_size
        if self._framed_alpha is None or self._framed_a8 is None:
            self._framed_alpha = np.empty((h, w), np.float32)
            self._framed_a8 = np.empty((h, w), np.uint8)
        a8 = upsample_alpha8(framed, self.frame_size, self._framed_a8)
        np.multiply(a8, np.float32(1.0 / 255.0), out=self._framed_alpha)
        return self._framed_alpha

    # -- the stages ----------------------------------------------------------------------

    def shrink(self, image: Image) -> ShrunkFrame:
        """``image`` with its copy at the refiner's working size (bilinear, into a buffer the
        engine owns and overwrites at the next call): made once, read by every stage."""
        w, h = self.frame_size
        if image.shape != (h, w, 3):
            raise ValueError(f"image: expected shape ({h}, {w}, 3), got {image.shape}")
        ww, wh = self.refiner.work_size
        if self._small.shape != (wh, ww, 3):
            self._small = np.empty((wh, ww, 3), np.uint8)
        return ShrunkFrame(image, resize_bilinear(image, self._small))

    def mask(self, image: Image) -> None:
        """Segment and refine ``image`` (the segment side); the result is :meth:`matte`.

        A *keyframe* runs the model; a *propagated* frame (``segment.max_skip`` > 0) does not:
        the refiner's history, warped along the optical flow (held as it is while the flow is
        within the camera's noise: a still scene's propagated frames repeat the keyframe's
        matte exactly), stands as its matte. A frame is
        propagated only when all of these hold: fewer than ``max_skip`` frames were propagated
        since the last keyframe; the refiner finds it predictable
        (:meth:`~bgcam.refine.MaskRefiner.track`: a history to follow, no scene cut, nothing
        near the person moving beyond the flow); the segmenter has no pass due (the ROI
        segmenter's full-frame pass, its search while nobody is found, a box that just grew);
        and no stage or setting changed since the last keyframe. :attr:`keyframe` says which
        it was; :attr:`keyframes` and :attr:`propagated` count them.
        """
        t0 = time.monotonic()
        self._frame = frame = self.shrink(image)
        seg, refiner = self.segmenter, self.refiner
        t1 = time.monotonic()
        model = 0.0  # seconds in the model
        if self._may_skip() and refiner.track(frame):
            refiner.propagate()
            skipped = getattr(seg, "skipped", None)
            if skipped is not None:
                skipped()
            self._skipped += 1
            self.propagated += 1
            self.keyframe = False
        else:
            t2 = time.monotonic()
            try:
                low = seg.segment(frame)
            except BaseException:
                refiner.reset()  # (drops what track() found for this frame)
                raise
            model = time.monotonic() - t2
            refiner.update(low, frame)
            self._skipped = 0
            self._key_next = False
            self.keyframes += 1
            self.keyframe = True
        self._refined = True
        # segment: shrinking and the model (none on a propagated frame); refine: all the rest.
        self.times.segment = (t1 - t0 + model) * 1e3
        self.times.refine = (time.monotonic() - t1 - model) * 1e3

    def _may_skip(self) -> bool:
        """May this frame be propagated, as far as the engine and the segmenter know?"""
        if self._key_next or self._skipped >= self._max_skip:
            return False
        due = getattr(self.segmenter, "keyframe_due", None)
        return due is None or not due()

    def matte(self) -> tuple[npt.NDArray[np.uint8], Image]:
        """The last refined matte (working-size 8-bit alpha) and its frame at that size; both
        owned by the engine's stages and overwritten by the next :meth:`mask`."""
        small = self._frame.small
        assert small is not None
        return self.refiner.alpha8_small, small

    def compose(
        self,
        frame: ShrunkFrame,
        alpha8_small: npt.NDArray[np.uint8] | None,
        *,
        t: float | None = None,
        fresh: bool = True,
        matte_small: Image | None = None,
        i420: bool = False,
    ) -> Image:
        """The compose side: ``frame`` with ``alpha8_small`` (None: blur the whole frame).
        ``i420``: an I420 frame when the compositor makes one (:meth:`i420_composer`), else BGR
        as always (tell them apart with :func:`bgcam.compose.i420.is_i420`).

        The studio effects (:mod:`bgcam.studio`: auto-framing, low-light correction) run first,
        so the compositor works on the framed, relit picture with the matte framed alike (the
        CPU compositor frames the picture itself, straight into its output: :func:`composite`).
        ``t`` is the frame's time in seconds (their smoothing runs on it; default: now; offline,
        pass the frame's position in the clip), ``fresh`` says the matte is new since the last call,
        ``matte_small`` is the matte's own frame at the working size when ``frame`` is another.
        """
        t0 = time.monotonic()
        studio = self.studio
        matte = alpha8_small
        picture: Image | FramedPicture = frame.image
        small = frame.small
        if studio.active:
            whole = self._reads_whole(frame, matte)
            picture, matte, small = studio.process(
                frame.image,
                matte,
                frame.small,
                t0 if t is None else t,
                fresh=fresh,
                matte_small=matte_small,
                whole=whole,
                defer=not whole and isinstance(self.compositor, CpuCompositor),
            )
        self._framed = None if matte is alpha8_small else matte
        t1 = time.monotonic()
        composer = self.i420_composer() if i420 else None
        out = composite(composer or self.compositor, picture, matte, small)
        t2 = time.monotonic()
        self.times.studio = (t1 - t0) * 1e3
        self.times.compose = (t2 - t1) * 1e3
        return out

    def i420_composer(self) -> I420Composer | None:
        """The I420 output path of the current compositor (the CPU one, frames of an even
        size), made on first use; None for the others (their BGR output is converted)."""
        compositor = self.compositor
        composer = self._i420
        if composer is not None and composer.cpu is compositor:
            return composer
        w, h = self.frame_size
        if not isinstance(compositor, CpuCompositor) or w % 2 or h % 2:
            if self._i420_said is not compositor:
                self._i420_said = compositor
                log.info("the %s compositor makes BGR: converted to I420", compositor.name)
            return None
        self._i420 = composer = I420Composer(compositor)
        log.info("the CPU compositor writes I420 for the sink")
        return composer

    def _reads_whole(self, frame: ShrunkFrame, matte: npt.NDArray[np.uint8] | None) -> bool:
        """Whether the compositor reads the (framed) picture where the matte is 0, given the
        shrunk picture the studio effects hand it: ``frame.small`` cropped alike, or one made at
        the matte's size (see :meth:`bgcam.studio.Studio.process`)."""
        if matte is None:
            return True
        small = frame.small
        size = (
            (matte.shape[1], matte.shape[0]) if small is None else (small.shape[1], small.shape[0])
        )
        return self.compositor.reads_background(size)

    def process(self, image: Image, *, segment: bool = True, t: float | None = None) -> Image:
        """Composite one frame. ``segment=False`` reuses the previous mask (smoother carries it).
        ``t``: the frame's time in seconds, for the studio effects (see :meth:`compose`)."""
        if segment or not self._refined:
            self.mask(image)
            return self.compose(self._frame, self.refiner.alpha8_small, t=t)
        self.times.segment = self.times.refine = 0.0
        return self.compose(ShrunkFrame(image), self.refiner.alpha8_small, t=t, fresh=False)

    # -- building and swapping -----------------------------------------------------------

    def plan(self, cfg: Config) -> StageSwap:
        """Build the stages that differ between the current config and ``cfg`` (touches nothing
        in use: safe on any thread while the engine runs). Raises what a stage's build raises."""
        old, size = self.cfg, self.frame_size
        swap = StageSwap(cfg)
        try:
            if _models(cfg.segment) != _models(old.segment):
                swap.segmenter = self._build_segmenter(cfg.segment, size)
            elif cfg.segment != old.segment:
                swap.keyframes = True
            if cfg.refine != old.refine:
                swap.refiner = MaskRefiner(cfg.refine, size)
            if cfg.compose != old.compose:
                if cfg.compose.backend != old.compose.backend:
                    swap.compositor = create_compositor(cfg.compose, size)
                else:
                    swap.compose = cfg.compose
                    swap.prepared = self.compositor.prepare(cfg.compose)
        except BaseException:
            swap.discard()
            raise
        return swap

    def plan_async(self, cfg: Config) -> Future[StageSwap]:
        """:meth:`plan` on a builder thread (one at a time); the future holds the swap or the
        error. Join it with :meth:`close`."""
        if self._builder is not None and self._builder.is_alive():
            raise RuntimeError("a stage build is already running")
        fut: Future[StageSwap] = Future()
        fut.set_running_or_notify_cancel()

        def build() -> None:
            try:
                fut.set_result(self.plan(cfg))
            except BaseException as exc:
                fut.set_exception(exc)

        self._builder = threading.Thread(target=build, name="bgcam-build", daemon=True)
        self._builder.start()
        return fut

    def swap_compose_side(self, swap: StageSwap) -> None:
        """Swap in the compose side and take ``swap.cfg`` (the composing thread). Raises what
        the compositor's update raises; then nothing has changed."""
        if swap.compositor is not None:
            old, self.compositor = self.compositor, swap.compositor
            swap.compositor = None
            old.close()
        elif swap.compose is not None:
            prepared, swap.prepared = swap.prepared, None
            try:
                self.compositor.update(swap.compose, prepared)
            except BaseException:
                if prepared is not None:
                    prepared.discard()
                raise
        self.studio.update(swap.cfg.effects)
        self.cfg = swap.cfg

    def swap_segment_side(self, swap: StageSwap) -> None:
        """Swap in the segment side (the segmenting thread, between frames)."""
        if swap.segmenter is not None:
            old, self.segmenter = self.segmenter, swap.segmenter
            old.close()
            log.info("segmenter now %s", self.segmenter.name)
        if swap.refiner is not None:
            self.refiner = swap.refiner
            self._refined = False
        self._max_skip = swap.cfg.segment.max_skip
        self._key_next = True  # a changed setting: the next frame runs the model
        swap.segmenter = swap.refiner = None
        swap.keyframes = False

    def update(self, cfg: Config) -> None:
        """Swap in a new config on this thread, rebuilding only the stages whose section changed."""
        swap = self.plan(cfg)
        try:
            self.swap_compose_side(swap)
        except BaseException:
            swap.discard()
            raise
        self.swap_segment_side(swap)

    def close(self, timeout: float = 5.0) -> None:
        if self._builder is not None:
            self._builder.join(timeout)
        self.segmenter.close()
        self.compositor.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
