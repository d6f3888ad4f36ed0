"""Studio effects on the picture itself, computed from the matte BgCam already has.

- **Auto-framing** (:mod:`bgcam.studio.autoframe`): the output is a crop of the camera frame
  that follows the person box (:mod:`bgcam.studio.box`), scaled back to the output size.
- **Low-light correction** (:mod:`bgcam.studio.light`): an underexposed person is brightened
  by a smoothed gain, one saturating scale pass.

:class:`Studio` runs both between refining and compositing, so the compositor blurs, replaces or
removes the background of the *framed, relit* picture with a matte cropped the same way (the
edges stay exact), and a missing matte still means the whole framed picture is blurred (fail
closed). Both are off by default, and then :meth:`Studio.process` returns its inputs untouched.
When the compositor reads the picture only where the matte is above 0 (it says so:
:meth:`bgcam.compose.Compositor.reads_background`), only that part is framed and relit; the
CPU compositor then frames it itself, straight into its output (:class:`FramedPicture`).
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from bgcam.config import Config, EffectsConfig
from bgcam.frame import Image
from bgcam.studio.autoframe import FULL, Crop, CropWarp, FramedPicture, Framer
from bgcam.studio.box import Box, BoxFinder, reach_bands
from bgcam.studio.light import LightCorrector

__all__ = [
    "FULL",
    "Box",
    "BoxFinder",
    "Crop",
    "CropWarp",
    "FramedPicture",
    "Framer",
    "LightCorrector",
    "Studio",
    "studio_status",
]

Matte8 = npt.NDArray[np.uint8]


class Studio:
    """Auto-framing and low-light correction for frames of ``frame_size`` (width, height).

    Call :meth:`process` once per output frame, between refining and compositing. Buffers are
    owned and reused; results are valid until the next call.
    """

    def __init__(self, cfg: EffectsConfig, frame_size: tuple[int, int]) -> None:
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.cfg = cfg
        self.framer = Framer(
            max_zoom=cfg.autoframe_zoom,
            settle=cfg.autoframe_settle,
            dead_zone=cfg.autoframe_dead_zone,
            cut_in=cfg.autoframe,
        )
        self.light = LightCorrector(strength=cfg.light_strength, max_gain=cfg.light_max_gain)
        self._warp = CropWarp(self.frame_size)
        self._boxes = BoxFinder()
        self._lit: Image = np.empty((1, 1, 3), np.uint8)
        self._lit_small: Image = np.empty((1, 1, 3), np.uint8)
        self._t: float | None = None
        self.box: Box | None = None
        """The person box of the last matte seen (frame-normalised), None: nobody in view."""

    def update(self, cfg: EffectsConfig) -> None:
        """New settings between frames; the crop and gain carry on from where they are."""
        if cfg == self.cfg:
            return
        self.framer.configure(
            max_zoom=cfg.autoframe_zoom,
            settle=cfg.autoframe_settle,
            dead_zone=cfg.autoframe_dead_zone,
        )
        self.framer.cut_in = False  # frames have been shown: from now on, only ease
        if not cfg.autoframe:
            self.framer.release()  # ease back to the full view, then stop costing anything
        self.light.configure(strength=cfg.light_strength, max_gain=cfg.light_max_gain)
        if cfg.light == "off":
            self.light.reset()
        self.cfg = cfg

    @property
    def active(self) -> bool:
        """True while either effect does something (auto-framing also while easing out)."""
        return self.cfg.autoframe or self.cfg.light != "off" or not self.framer.crop.is_full

    @property
    def crop(self) -> Crop:
        return self.framer.crop

    @overload
    def process(
        self,
        image: Image,
        alpha8: Matte8 | None,
        small: Image | None,
        t: float,
        *,
        fresh: bool = ...,
        matte_small: Image | None = ...,
        whole: bool = ...,
        defer: Literal[False] = ...,
    ) -> tuple[Image, Matte8 | None, Image | None]: ...

    @overload
    def process(
        self,
        image: Image,
        alpha8: Matte8 | None,
        small: Image | None,
        t: float,
        *,
        fresh: bool = ...,
        matte_small: Image | None = ...,
        whole: bool = ...,
        defer: bool,
    ) -> tuple[Image | FramedPicture, Matte8 | None, Image | None]: ...

    def process(
        self,
        image: Image,
        alpha8: Matte8 | None,
        small: Image | None,
        t: float,
        *,
        fresh: bool = True,
        matte_small: Image | None = None,
        whole: bool = True,
        defer: bool = False,
    ) -> tuple[Image | FramedPicture, Matte8 | None, Image | None]:
        """The picture, matte and shrunk picture to composite for ``image`` at time ``t`` (s).

        ``alpha8`` is the working-size matte of the whole frame (None: no usable matte; the
        result's matte is then None too, and the caller blurs everything), ``small`` this frame
        at the matte's size (or None), ``matte_small`` the frame the matte was made from at that
        size, when it is another one (live, the matte is often a frame older than the picture):
        the person's exposure is measured on it. ``fresh`` says the matte is new since the last
        call (a repeated matte is not measured again).

        ``whole=False`` says the compositor, given a shrunk picture at the matte's size (one is
        then always returned with a matte), reads the picture only where the matte is above 0
        (:meth:`bgcam.compose.Compositor.reads_background`): the picture is then framed and
        relit only there (:func:`~bgcam.studio.box.reach_bands`), its other pixels are left
        undefined, and nobody in view costs no pass at all. ``defer=True`` as well: the picture
        is not framed here; a :class:`FramedPicture` is returned in its place, which the CPU
        compositor draws straight into its output
        (:meth:`bgcam.compose.cpu.CpuCompositor.compose_framed`).
        """
        if not self.active:
            self._t = t
            return image, alpha8, small
        dt = 0.0 if self._t is None else max(0.0, t - self._t)
        self._t = t
        cfg = self.cfg
        if fresh and alpha8 is not None and cfg.autoframe:
            self.box = self._boxes.find(alpha8)
        elif alpha8 is None or not cfg.autoframe:
            self.box = None
        crop = self.framer.update(self.box, dt) if cfg.autoframe else self._ease_out(dt)
        if cfg.light != "off":
            seen = small if matte_small is None else matte_small
            if fresh and alpha8 is not None and seen is not None:
                self.light.measure(seen, alpha8)
            self.light.step(dt)
        lit = cfg.light != "off" and self.light.gain > 1.0
        framed = not crop.is_full
        if not (framed or lit):
            return image, alpha8, small
        matte = alpha8
        if framed and alpha8 is not None:
            matte = self._warp.alpha(alpha8, crop)
        # The shrunk picture cropped alike, not the framed picture shrunk again; made from the
        # frame when it came without one and the compositor is to blur from it.
        hint = small
        if small is not None:
            hint = self._warp.small(small, crop) if framed else small
        elif matte is not None and not whole:
            hint = self._warp.shrink(image, crop, matte.shape[::-1])
        w, h = self.frame_size
        rects = [(0, 0, w, h)] if whole or matte is None else reach_bands(matte, self.frame_size)
        if lit and self._lit.shape != image.shape:
            self._lit = np.empty_like(image)
        out: Image | FramedPicture
        if framed:
            src = image
            if lit:  # relight only the parts of the frame the crop reads there, then crop
                for rect in rects:
                    x0, y0, x1, y1 = self._warp.region(crop, rect)
                    self.light.apply(image[y0:y1, x0:x1], self._lit[y0:y1, x0:x1])
                src = self._lit
            if defer and not whole and matte is not None:
                out = FramedPicture(src, crop, tuple(rects), self._warp)
            else:
                out = self._warp.image(src, crop, rects)
        else:  # lit: never write into the caller's frame
            for x0, y0, x1, y1 in rects:
                self.light.apply(image[y0:y1, x0:x1], self._lit[y0:y1, x0:x1])
            out = self._lit
        if lit and hint is not None:
            if hint is small:  # the caller's: brighten a copy
                if self._lit_small.shape != hint.shape:
                    self._lit_small = np.empty_like(hint)
                hint = self.light.apply(hint, self._lit_small)
            else:
                hint = self.light.apply(hint, hint)
        return out, matte, hint

    def _ease_out(self, dt: float) -> Crop:
        if self.framer.at_rest:
            return self.framer.crop
        return self.framer.update(None, dt)

    def status(self) -> dict[str, Any]:
        """JSON-able state for ``bgcam status`` and the web panel."""
        light = self.light
        return studio_status(
            self.cfg,
            self.framer.crop.rect(self.frame_size),
            self.framer.crop.zoom,
            person=self.box is not None,
            gain=light.gain,
            highlights=light.highlights,
        )


def studio_status(
    cfg: EffectsConfig | Config,
    crop: tuple[float, float, float, float] | None = None,
    zoom: float = 1.0,
    *,
    person: bool = False,
    gain: float = 1.0,
    highlights: float | None = None,
) -> dict[str, Any]:
    """The studio effects' status keys (``autoframe``, ``light``); with only a config (a
    daemon not running yet): as configured, nothing measured."""
    effects = cfg.effects if isinstance(cfg, Config) else cfg
    return {
        "autoframe": {
            "on": effects.autoframe,
            "zoom": round(zoom, 3),
            "crop": None if crop is None else [round(v) for v in crop],
            "person": person,
        },
        "light": {
            "mode": effects.light,
            "gain": round(gain, 3),
            "highlights": None if highlights is None else round(highlights, 1),
        },
    }
