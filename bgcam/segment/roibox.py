"""The box around the people and the crop it asks for (:mod:`bgcam.segment.roi` runs the models).

:class:`RoiTracker` keeps the smoothed box from each frame's person extents and plans what to
segment next; :func:`crop_for` turns a box into a crop of the shape the models serve best. No
model and no pixels here: the rules are described in :mod:`bgcam.segment.roi`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
"""x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)."""

PERSON_LEVEL = 0.5
"""Model output at or above which a pixel counts as person for the box."""
MIN_SIDE = 0.3
"""A crop's shorter side is at least this share of the frame's height (the model needs some
context around a small person)."""
WHOLE_SHARE = 0.85
"""A crop wider than this share of the frame is replaced by the whole frame (no gain to speak of,
and the whole-frame path is exactly today's)."""
SHRINK_RATE = 0.15
"""Share of the remaining distance a too-wide side moves inwards per segmented frame."""
GROW_SLACK = 0.1
"""A side grows only when the people come closer to it than (1 − this) x the margin: the
model's noise at the silhouette's extremes must not nudge the crop by a pixel now and then."""
ALTERNATION = 5
"""Frames of strict alternation (A, B, A, B, A) that start a hold. A single excursion (A, B, A)
is common while someone moves (davis-dev: a one-frame whole-frame pass in dance-twirl); holding
on it cost J 0.747 → 0.693 there."""
HOLD_FIRST = 90
"""Segmented frames a larger crop shape is held after the shape went back and forth (3 s)."""
HOLD_MAX = 900
"""The hold doubles each time the back-and-forth comes back, up to this many frames (30 s)."""
HOLD_FORGET = 900
"""After this many frames without a hold or a back-and-forth, a hold starts from HOLD_FIRST."""
HOLD_STILL = 0.5
"""A hold that ends while no side of the box has moved more than this x the margin since the
hold's middle is renewed (doubled, as if the back-and-forth had come back): on a still scene the
causes of the back-and-forth are still there, and letting it resume for the five frames that
start the next hold is a burst of flicker (and a reframing jump for auto-framing) every time.
The middle, not the start: the held shape's own mask moves the box at first (a whole frame's
mask is not a square crop's), and the box has settled to it well before then."""
CROP_STEP = 0.05
"""A crop of the same shape as the last one run is kept while no side of the new one would be
further than this x the last crop's larger side from it, unless the box has just grown: the
crop is then placed in steps, not re-sampled a pixel here and there as the box breathes, and
it follows at once when someone moves towards its border (keeping it then too let a walking
person slip out of a frame-high crop for up to 23 frames in a tracker simulation)."""
MIN_OUTSIDE = 0.002
"""Person pixels outside the crop in a full-frame pass count (a newcomer) only above this share
of the frame: a speck of false positive does not grow the box."""

SQUARE, TALL, WIDE, WHOLE = "square", "tall", "wide", "whole"
SIZE_ORDER = {SQUARE: 0, TALL: 0, WIDE: 1, WHOLE: 2}
TALL_WIDTHS = (160, 192, 224)
"""Input widths (pixels, the height being the square model's 256) of the general model's
narrower variants for tall crops: 62–88 % of the square input's pixels and time."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What to segment this frame: ``crop`` (None: the whole frame only) with the model for
    ``shape`` (square, wide or whole), and whether the whole frame is segmented too."""

    crop: Box | None
    shape: str
    full: bool


def crop_for(
    box: tuple[float, float, float, float],
    frame_size: tuple[int, int],
    wide_aspect: float,
    *,
    square: bool = True,
    wide: bool = True,
    talls: tuple[float, ...] = (),
    keep: float | None = None,
) -> tuple[Box | None, str]:
    """The crop for ``box`` and its shape (:data:`SQUARE`, :data:`TALL`, :data:`WIDE` or
    :data:`WHOLE`).

    A square crop (side = the box's larger side, at least MIN_SIDE x frame height) when
    ``square`` models are available and it fits in the frame; of the same height but narrower
    (:data:`TALL`) when one of the ``talls`` aspects (width / height of the general model's
    narrower inputs, ascending) still covers the box's width: the same model at the same scale,
    on fewer pixels. Else a crop of ``wide_aspect``
    (width / height) covering the box; the whole frame when that is wider than WHOLE_SHARE
    of the frame or does not fit. Crops are centred on the box and moved inside the frame.

    No hysteresis between the shapes: measured on davis-dev, requiring a smaller shape to fit
    with 10 % to spare before switching to it lost J 0.761 → 0.744 (fewer square crops) for no
    gain in T (0.0186 both).
    """
    fw, fh = frame_size

    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    least = MIN_SIDE * fh
    if square:
        side = math.ceil(max(bw, bh, least))
        if side <= min(fw, fh):
            fits = [a for a in talls if math.ceil(side * a) >= bw] + [1.0]
            # ``keep`` (the last crop's aspect) stays while it is the narrowest that fits or the
            # next one up: no switching between two inputs as the box breathes at a limit.
            aspect = keep if keep in fits[:2] else fits[0]
            if aspect < 1.0:
                return _placed(cx, cy, math.ceil(side * aspect), side, frame_size), TALL
            return _placed(cx, cy, side, side, frame_size), SQUARE
    if not wide:
        return None, WHOLE
    cw = max(bw, bh * wide_aspect, least * wide_aspect)
    ch = cw / wide_aspect
    if cw > WHOLE_SHARE * fw or ch > fh:
        return None, WHOLE
    return _placed(cx, cy, math.ceil(cw), min(fh, math.ceil(ch)), frame_size), WIDE


def _placed(cx: float, cy: float, w: int, h: int, frame_size: tuple[int, int]) -> Box:
    fw, fh = frame_size
    x0 = min(max(0, round(cx - w / 2)), fw - w)
    y0 = min(max(0, round(cy - h / 2)), fh - h)
    return x0, y0, x0 + w, y0 + h


class RoiTracker:
    """The box around the people, updated from each frame's model output (no model inside).

    ``plan()`` says what to segment; ``observe(...)`` takes what was found (boxes in frame
    pixels, floats). ``box`` is the smoothed box (None: nobody found, whole frames).
    """

    def __init__(
        self,
        frame_size: tuple[int, int],
        margin: float,
        full_every: int,
        *,
        wide_aspect: float = 256 / 144,
        square: bool = True,
        wide: bool = True,
        talls: tuple[float, ...] = (),
    ) -> None:
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.margin = float(margin)
        self.full_every = max(1, int(full_every))
        self.wide_aspect = float(wide_aspect)
        self.square = square
        self.wide = wide
        self.talls = tuple(sorted(talls))
        self._aspect: float | None = None
        """The last square or tall crop's aspect (one of ``talls`` or 1.0), kept if it fits."""
        self._last: tuple[Box, str] | None = None
        """The last crop run and its shape (kept by :meth:`plan` within :data:`CROP_STEP`)."""
        self.box: tuple[float, float, float, float] | None = None
        self.grew = False
        """The last :meth:`observe` grew the box (someone moved out of it, or was found)."""
        self._since_full = 0
        self._shapes: list[str] = []
        """The output's last ALTERNATION shapes, oldest first."""
        self.held: str | None = None
        """The smallest shape allowed while a hold lasts (None: no hold)."""
        self._hold_left = 0
        self._hold_len = 0
        self._calm = 0
        self._hold_box: tuple[float, float, float, float] | None = None
        """The box at the hold's middle: a hold ends only once the box has moved since."""

    def reset(self) -> None:
        self.box = None
        self.grew = False
        self._since_full = 0
        self._shapes.clear()
        self.held, self._hold_left, self._hold_len, self._calm = None, 0, 0, 0
        self._hold_box = None
        self._aspect = None
        self._last = None

    def plan(self) -> Plan:
        if self.box is None:
            return Plan(None, WHOLE, True)
        held = self.held
        crop, shape = crop_for(
            self.box,
            self.frame_size,
            self.wide_aspect,
            square=self.square and held is None,
            wide=self.wide and held != WHOLE,
            talls=self.talls,
            keep=self._aspect,
        )
        if crop is None:
            return Plan(None, WHOLE, True)
        crop = self._kept(crop, shape)
        return Plan(crop, shape, self._since_full + 1 >= self.full_every)

    def _kept(self, crop: Box, shape: str) -> Box:
        """The last crop instead of ``crop`` when of the same shape and within CROP_STEP, and
        the box did not just grow."""
        last = self._last
        if last is None or last[1] != shape or self.grew:
            return crop
        tol = CROP_STEP * max(last[0][2] - last[0][0], last[0][3] - last[0][1])
        if all(abs(a - b) <= tol for a, b in zip(crop, last[0], strict=True)):
            return last[0]
        return crop

    def skipped(self) -> None:
        """A frame went by without segmentation (a propagated one, see
        :meth:`bgcam.engine.Engine.mask`): it counts towards the next full-frame pass, so that
        newcomers are still looked for every ``full_every`` frames."""
        self._since_full += 1

    def settle(self, shape: str) -> None:
        """Record the shape this frame's output was made with; start or end a hold.

        A tall crop counts as a square one here: the same model, and the box's shape
        crossing a tall input's limit is no reason to hold the larger (wide) crop."""
        if shape == TALL:
            shape = SQUARE
        shapes = self._shapes
        shapes.append(shape)
        del shapes[:-ALTERNATION]
        if self._hold_left > 0:
            self._hold_left -= 1
            if self._hold_left == self._hold_len // 2:
                self._hold_box = self.box
            if self._hold_left == 0:
                if self._still_since_hold():
                    self._hold_len = min(HOLD_MAX, 2 * self._hold_len)
                    self._hold_left, self._calm = self._hold_len, 0
                    log.debug("roi: the scene is still; %s held for %d more frames", self.held,
                              self._hold_len)  # fmt: skip
                else:
                    log.debug("roi: %s hold over", self.held)
                    self.held = None
        if self.held is None:  # calm is counted from the hold's end
            self._calm += 1
        if self._calm >= HOLD_FORGET:
            self._hold_len = 0
        if len(shapes) == ALTERNATION and alternates(shapes):
            pair = sorted(shapes[-2:], key=SIZE_ORDER.__getitem__)
            self._hold_len = min(HOLD_MAX, 2 * self._hold_len or HOLD_FIRST)
            self.held, self._hold_left, self._calm = pair[1], self._hold_len, 0
            shapes.clear()
            log.debug(
                "roi: %s crops went back and forth; %s held for %d frames", *pair, self._hold_len
            )

    def _still_since_hold(self) -> bool:
        """No side of the box moved more than HOLD_STILL x the margin since the hold's middle."""
        box, then = self.box, self._hold_box
        if box is None or then is None:
            return False
        tol = HOLD_STILL * self.margin * max(then[2] - then[0], then[3] - then[1])
        return all(abs(a - b) <= tol for a, b in zip(box, then, strict=True))

    def observe(
        self,
        plan: Plan,
        found: tuple[float, float, float, float] | None,
        touches: tuple[bool, bool, bool, bool] = (False, False, False, False),
        outside: tuple[float, float, float, float] | None = None,
    ) -> None:
        """Update from one segmented frame.

        ``found``: the extent of the person pixels in what was segmented for the output (the
        crop, or the whole frame without one); ``touches``: which crop sides (left, top, right,
        bottom) the person pixels reach; ``outside``: the extent of person pixels a full-frame
        pass found outside the crop (newcomers), or None.
        """
        self._since_full = 0 if plan.full else self._since_full + 1
        self._aspect = None
        self.grew = False
        if plan.crop is not None:
            self._last = (plan.crop, plan.shape)
        if plan.crop is not None and plan.shape in (SQUARE, TALL):
            x0, y0, x1, y1 = plan.crop
            self._aspect = min((*self.talls, 1.0), key=lambda a: abs(a - (x1 - x0) / (y1 - y0)))
        if found is None and outside is None:
            if self.box is not None:
                log.debug("roi: nobody in the crop; whole frames until someone is found")
            self.box, self._last = None, None
            return
        ext = _union(found, outside)
        target = list(self._widened(ext))
        if found is not None and plan.crop is not None:
            extra = self.margin * max(ext[2] - ext[0], ext[3] - ext[1])
            for side, touched in enumerate(touches):
                if touched:
                    target[side] += extra if side >= 2 else -extra
        fw, fh = self.frame_size
        target = [max(0.0, target[0]), max(0.0, target[1]), min(fw, target[2]), min(fh, target[3])]
        if self.box is None:
            self.box = (target[0], target[1], target[2], target[3])
            self.grew = True
            return
        box = list(self.box)
        margin = self.margin * max(box[2] - box[0], box[3] - box[1])
        dead, slack = 0.5 * margin, GROW_SLACK * margin
        for side in range(4):
            inward = target[side] - box[side] if side < 2 else box[side] - target[side]
            if inward < -slack:  # the target is outside the box: grow at once
                box[side] = target[side]
                self.grew = True
            elif inward > dead:
                step = SHRINK_RATE * (inward - dead)
                box[side] += step if side < 2 else -step
        self.box = (box[0], box[1], box[2], box[3])

    def _widened(self, ext: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = ext
        m = self.margin * max(x1 - x0, y1 - y0)
        return x0 - m, y0 - m, x1 + m, y1 + m


def alternates(shapes: list[str]) -> bool:
    """True when ``shapes`` (oldest first) switches between two shapes at every frame."""
    a, b = shapes[0], shapes[1]
    return a != b and all(x == (a if i % 2 == 0 else b) for i, x in enumerate(shapes))


def _union(
    a: tuple[float, float, float, float] | None, b: tuple[float, float, float, float] | None
) -> tuple[float, float, float, float]:
    if a is None:
        assert b is not None
        return b
    if b is None:
        return a
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
