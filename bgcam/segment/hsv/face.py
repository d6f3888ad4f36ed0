"""The face that anchors the ``hsv`` segmenter's body prior: the Haar cascade file and a tracker.

OpenCV 5 wheels no longer bundle the cascade files: :func:`find_face_cascade` looks in the model
dir, ``cv2.data`` (OpenCV 4) and the system folders, and :func:`fetch_face_cascade` copies it out
of a pinned OpenCV 4 wheel. :class:`FaceTracker` follows one face from frame to frame; a full
search is spread over frames, one band of face sizes at a time, because it is the costly part.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bgcam.errors import ModelError
from bgcam.models import fixed_wheel_args

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
"""A face box: x, y, width, height in working pixels."""

CASCADE_NAME = "haarcascade_frontalface_default.xml"
CASCADE_SHA256 = "0f7d4527844eb514d4a4948e822da90fbb16a34a0bbbbc6adc6498747a5aafb0"
# OpenCV 4 wheels bundle the cascades in cv2/data (OpenCV 5 wheels do not): one fixed wheel.
CASCADE_PIP_ARGS = fixed_wheel_args("opencv-python-headless==4.14.0.94")
_SYSTEM_CASCADE_DIRS = (
    "/usr/share/opencv4/haarcascades",  # Debian/Ubuntu package opencv-data
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
    "/opt/homebrew/share/opencv4/haarcascades",
    "/usr/local/share/opencv/haarcascades",
)

_FACE_MISSES = 12  # frames without a detection before the tracked face is dropped


def find_face_cascade() -> Path | None:
    """The frontal-face Haar cascade file, or None when none is installed.

    Looked up in ``$BGCAM_FACE_CASCADE`` (a file), the model dir (``BGCAM_MODEL_DIR`` or the user
    data dir; :func:`fetch_face_cascade` puts it there), ``cv2.data`` (OpenCV 4 wheels bundle it;
    OpenCV 5 wheels do not), and the usual system folders (the Debian/Ubuntu package
    ``opencv-data``).
    """
    candidates: list[Path] = []
    try:
        from bgcam.models import model_dir

        candidates.append(model_dir() / CASCADE_NAME)
    except Exception:  # pragma: no cover - model_dir only fails on a broken platform
        pass
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", None)
    if isinstance(folder, str) and folder:
        candidates.append(Path(folder) / CASCADE_NAME)
    extra = os.environ.get("BGCAM_FACE_CASCADE")
    if extra:
        candidates.insert(0, Path(extra))
    candidates.extend(Path(d) / CASCADE_NAME for d in _SYSTEM_CASCADE_DIRS)
    for path in candidates:
        if path.is_file():
            return path
    return None


def fetch_face_cascade(dest_dir: Path | None = None) -> Path:
    """Put the frontal-face Haar cascade into ``dest_dir`` (default: the model dir).

    Downloads one fixed OpenCV 4 wheel with pip (not installed), takes
    ``cv2/data/haarcascade_frontalface_default.xml`` out of it and checks its sha256.
    """
    from bgcam.models import model_dir
    from bgcam.models.fetch import write_atomic

    dest = (dest_dir or model_dir()) / CASCADE_NAME
    command = "python -m pip " + " ".join(CASCADE_PIP_ARGS) + " -d DIR"
    with tempfile.TemporaryDirectory(prefix="bgcam-cascade-") as tmp:
        cmd = [sys.executable, "-m", "pip", *CASCADE_PIP_ARGS, "-d", tmp, "--no-input", "-q"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(Path(tmp).glob("opencv_python_headless-*.whl"))
        if proc.returncode != 0 or not wheels:
            reason = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise ModelError(
                f"could not download the face cascade (an OpenCV 4 wheel) with pip: {reason}",
                hint=f"check the network, or run `{command}` and copy "
                f"cv2/data/{CASCADE_NAME} from the wheel (a zip) to {dest}",
            )
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(f"cv2/data/{CASCADE_NAME}")
    if hashlib.sha256(data).hexdigest() != CASCADE_SHA256:
        raise ModelError(f"the face cascade in {wheels[0].name} has an unexpected sha256")
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, data)
    log.info("face cascade written to %s", dest)
    return dest


def load_face_cascade(
    cascade: Path | bool | None,
) -> tuple[cv2.CascadeClassifier | None, Path | None]:
    """The classifier and its file: True finds the cascade, False/None disables faces, or a path."""
    path: Path | None
    if cascade is True:
        path = find_face_cascade()
    elif cascade is False or cascade is None:
        path = None
    else:
        path = Path(cascade)
    classifier: cv2.CascadeClassifier | None = None
    if path is not None:
        c = cv2.CascadeClassifier(str(path))
        if c.empty():
            log.warning("hsv: cannot load face cascade %s; running without faces", path)
        else:
            classifier = c
    if classifier is None and cascade is True:
        log.warning(
            "hsv: no face cascade (%s) found; segmenting without a face anchor. Get it "
            "with `bgcam models fetch` (or install the OS package opencv-data)",
            CASCADE_NAME,
        )
    return classifier, path if classifier is not None else None


class FaceTracker:
    """One tracked frontal face in a grey working image, smoothed over frames."""

    def __init__(self, cascade: cv2.CascadeClassifier | None, work_size: tuple[int, int]) -> None:
        self._cascade = cascade
        self.work_size = work_size
        h = work_size[1]
        sizes = [20.0]
        while sizes[-1] < 0.8 * h:
            sizes.append(sizes[-1] * 1.35)
        self._bands = [(round(a), round(b) + 1) for a, b in itertools.pairwise(sizes)]
        if not self._bands:
            self._bands = [(20, 21)]
        # most likely webcam face sizes (about a third of the height) first
        self._bands.sort(key=lambda band: abs(np.log(band[0] / (0.3 * h))))
        self.reset()

    def reset(self) -> None:
        self.face: Box | None = None
        self._misses = 0

    def close(self) -> None:
        self._cascade = None

    def update(self, gray: npt.NDArray[np.uint8], frame_no: int) -> bool:
        """Track the face in ``gray``; True when a face appears that was not tracked before."""
        if self._cascade is None:
            return False
        if self.face is not None and self._misses == 0 and frame_no % 2:
            return False  # a tracked face moves little between two frames: look every other frame
        w, h = self.work_size
        found: Box | None = None
        if self.face is not None:
            fx, fy, fw, fh = self.face
            x0, y0 = max(0, int(fx - 0.6 * fw)), max(0, int(fy - 0.6 * fh))
            x1, y1 = min(w, int(fx + 1.6 * fw)), min(h, int(fy + 1.6 * fh))
            roi = gray[y0:y1, x0:x1]
            lo, hi = max(20, int(fw * 0.75)), int(fw * 1.35) + 1
            if roi.shape[0] >= lo and roi.shape[1] >= lo:
                faces = self._cascade.detectMultiScale(
                    roi, scaleFactor=1.12, minNeighbors=3, minSize=(lo, lo), maxSize=(hi, hi)
                )
                if len(faces):
                    best = max(faces, key=lambda r: int(r[2]))
                    found = (
                        float(best[0] + x0),
                        float(best[1] + y0),
                        float(best[2]),
                        float(best[3]),
                    )
        if found is None and self.face is None:
            # A whole-frame search is the costly step: one band of face sizes per frame, a full
            # sweep every len(bands) frames (docs/BENCHMARKS.md, "hsv").
            lo, hi = self._bands[frame_no % len(self._bands)]
            faces = self._cascade.detectMultiScale(
                gray, scaleFactor=1.1, minNeighbors=3, minSize=(lo, lo), maxSize=(hi, hi)
            )
            if len(faces):
                best = max(faces, key=lambda r: int(r[2]))
                found = tuple(float(v) for v in best)  # type: ignore[assignment]
        if found is not None:
            new = self.face is None
            if self.face is not None:
                a = 0.5  # smooth the box: Haar boxes jitter by a few pixels
                self.face = tuple(  # type: ignore[assignment]
                    a * n + (1 - a) * o for n, o in zip(found, self.face, strict=True)
                )
            else:
                self.face = found
            self._misses = 0
            return new
        if self.face is not None:
            self._misses += 1
            if self._misses > _FACE_MISSES:
                self.face = None
        return False
