"""Reading still images safely: the header first, then a decode no larger than needed.

A small PNG can declare 30000x30000 pixels (2.7 GB once decoded): a decompression bomb. Every
still image BgCam reads from a user or a client (backgrounds, uploads, image-folder frames) goes
through :func:`read_image`, which

1. reads only the header (Pillow's lazy ``Image.open``) and refuses more than
   :data:`MAX_SIDE` pixels a side or :data:`MAX_PIXELS` in all, before any pixel is decoded;
2. decodes with OpenCV, at 1/2, 1/4 or 1/8 scale (``IMREAD_REDUCED_COLOR_*``) when the caller
   only needs ``fit`` pixels and the image is that much larger.

:func:`preload` runs both steps and the fit to the frame (cover-crop) on the calling thread and
keeps the result in a small cache (:data:`CACHE_SIZE` entries, keyed by path, file size,
modification time and frame size), so the control surfaces prepare a new background on their
own threads and the output thread only picks it up with :func:`fitted_image`.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

from bgcam.errors import InputError
from bgcam.frame import Image

log = logging.getLogger(__name__)

__all__ = [
    "CACHE_SIZE",
    "MAX_PIXELS",
    "MAX_SIDE",
    "ImageTooLarge",
    "fitted_image",
    "image_size",
    "preload",
    "read_image",
]

MAX_SIDE = 8192
MAX_PIXELS = MAX_SIDE * MAX_SIDE
CACHE_SIZE = 2
PRELOAD_NICE = 10

_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (2, cv2.IMREAD_REDUCED_COLOR_2))  # fmt: skip

_cache: OrderedDict[tuple[str, int, int, int, int], Image] = OrderedDict()
_cache_lock = threading.Lock()

PILImage.preinit()  # Pillow's common formats now, not in the first refusal's time


class ImageTooLarge(InputError):
    """An image whose header declares more pixels than BgCam decodes."""


def image_size(source: bytes | Path, what: str = "image") -> tuple[int, int]:
    """(width, height) from the header alone; InputError when unreadable or too large."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
            with fh, PILImage.open(fh) as im:
                w, h = im.size
    except PILImage.DecompressionBombError as exc:  # past Pillow's own, higher limit
        pixels = re.search(r"\d+", str(exc))
        raise _too_large(what, None, int(pixels.group()) if pixels else None) from None
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's "cannot identify image file"
        raise InputError(
            f"{what}: cannot be read as an image ({exc})",
            hint="use a PNG, JPEG, WebP, BMP or TIFF file",
        ) from None
    if w < 1 or h < 1 or max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
        raise _too_large(what, (w, h))
    return int(w), int(h)


def _too_large(what: str, size: tuple[int, int] | None, pixels: int | None = None) -> ImageTooLarge:
    got = f"{size[0]}x{size[1]}" if size else f"{pixels:,} pixels" if pixels else "far more"
    return ImageTooLarge(
        f"{what}: too large, at most {MAX_SIDE}x{MAX_SIDE} pixels, got {got}; not decoded",
        hint=f"scale it down first, e.g. `convert IN -resize {MAX_SIDE}x{MAX_SIDE} OUT`",
    )


def _reduction(size: tuple[int, int], fit: tuple[int, int] | None) -> tuple[int, int]:
    """(factor, imread flag): the largest scale-down that still covers ``fit``."""
    if fit is not None:
        for k, flag in _REDUCED:
            if size[0] // k >= fit[0] and size[1] // k >= fit[1]:
                return k, flag
    return 1, cv2.IMREAD_COLOR


def read_image(
    source: bytes | Path, *, fit: tuple[int, int] | None = None, what: str | None = None
) -> Image:
    """Decode ``source`` (a file or its bytes) as BGR uint8, header-checked first.

    ``fit`` (width, height): the caller scales the image to cover this, so it may be decoded
    smaller (never below ``fit``). Raises InputError (not an image, undecodable) or
    ImageTooLarge.
    """
    label = what or (f"image {source}" if isinstance(source, Path) else "the image")
    return _decode(source, fit, label)[1]


def _decode(source: bytes | Path, fit: tuple[int, int] | None, label: str) -> tuple[int, Image]:
    size = image_size(source, label)
    k, flag = _reduction(size, fit)
    if isinstance(source, bytes):
        image = cv2.imdecode(np.frombuffer(source, np.uint8), flag)
    else:
        image = cv2.imread(str(source), flag)
    if image is None or image.ndim != 3:
        raise InputError(
            f"{label}: cannot be read as an image (decoding failed)",
            hint="the file may be damaged; try another",
        )
    if k > 1:
        log.debug("%s: %dx%d decoded at 1/%d", label, size[0], size[1], k)
    return k, np.asarray(image, np.uint8)


def _key(path: Path, size: tuple[int, int]) -> tuple[str, int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return str(path.resolve()), st.st_size, st.st_mtime_ns, size[0], size[1]


def fitted_image(path: Path, size: tuple[int, int], what: str | None = None) -> Image:
    """``path`` decoded and cover-fitted to ``size`` (width, height), read-only.

    From the cache when :func:`preload` prepared it (then this costs nothing), else done now.
    """
    key = _key(path, size)
    with _cache_lock:
        cached = _cache.get(key) if key is not None else None
    if cached is not None:
        return cached
    log.debug("%s: not prepared for %dx%d; decoding it on this thread", what or path, *size)
    return _fit(path, size, what, key)


def _fit(
    path: Path, size: tuple[int, int], what: str | None, key: tuple[str, int, int, int, int] | None
) -> Image:
    from bgcam.effects import cover_resize  # effects uses this module

    image = cover_resize(read_image(path, fit=size, what=what), size)
    image.setflags(write=False)  # shared by whoever reads it from the cache
    if key is not None:
        with _cache_lock:
            _cache[key] = image
            _cache.move_to_end(key)
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return image


def preload(path: Path, size: tuple[int, int], what: str | None = None) -> None:
    """Check, decode and fit ``path`` to ``size`` now, on this thread, for a
    :func:`fitted_image` soon after (on the output thread). Raises InputError like
    :func:`read_image`.

    The calling thread (a control surface's) is lowered to :data:`PRELOAD_NICE` first, so on a
    busy machine the decode waits for the video threads instead of delaying frames.
    """
    _lower_priority(PRELOAD_NICE)
    _fit(path, size, what, _key(path, size))


def _lower_priority(nice: int) -> None:
    """Linux: give the calling thread at least ``nice`` (threads have their own; no privilege
    is needed to lower one's own priority, which is why this never raises it back)."""
    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:
        log.debug("cannot lower this thread's priority: %s", exc)
