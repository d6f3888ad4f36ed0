"""``bgcam.render``: the real engine (MediaPipe inference) over a clip, an image and a folder."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from bgcam.config import Config
from bgcam.errors import InputError, OutputError
from bgcam.media import probe_input, read_frames
from bgcam.render import RenderStopped, Stop, render

ROOT = Path(__file__).resolve().parents[1]
DAVIS = ROOT / ".." / "shared" / "evaldata" / "davis-dev"

pytestmark = pytest.mark.usefixtures("model_dir")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def make_clip(path: Path, photo: np.ndarray, n: int, size: tuple[int, int], fps: float) -> None:
    """A short real clip: a crop window over the photo drifting right and down."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        crop = photo[4 * i : 4 * i + 400, 6 * i : 6 * i + 460]
        writer.write(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
    writer.release()


def check_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """An 8-bit mask at ``size`` (w, h) that finds a person but not everywhere."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert mask is not None, path
    assert mask.dtype == np.uint8 and mask.shape == (size[1], size[0])
    person = float((mask > 127).mean())
    assert 0.1 < person < 0.9, f"{path.name}: person share {person:.2f}"
    return mask


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial-" in p.name]


def test_render_video_with_masks(tmp_path: Path, astronaut: np.ndarray) -> None:
    clip = tmp_path / "clip.mp4"
    make_clip(clip, astronaut, n=12, size=(320, 240), fps=15.0)
    seen: list[tuple[int, int]] = []
    result = render(
        Config(),
        clip,
        tmp_path / "out.avi",
        masks=tmp_path / "masks",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert result.frames == 12 and result.output_kind == "video"
    assert [d for d, _ in seen] == list(range(1, 13))
    out = probe_input(tmp_path / "out.avi")
    assert (out.kind, out.size, out.fps, out.count) == ("video", (320, 240), 15.0, 12)
    names = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert names == [f"{i:05d}.png" for i in range(12)]
    for name in names:
        check_mask(tmp_path / "masks" / name, (320, 240))
    # The output is the input with its background blurred: close to the input where the person
    # is, smoother than the input elsewhere.
    src = [f.copy() for f in read_frames(probe_input(clip))]
    dst = [f.copy() for f in read_frames(out)]
    mask = cv2.imread(str(tmp_path / "masks" / "00006.png"), cv2.IMREAD_UNCHANGED)
    person, background = mask > 250, mask < 5
    diff = np.abs(src[6].astype(int) - dst[6]).mean(axis=2)
    assert diff[person].mean() < 8
    lap_src = np.abs(cv2.Laplacian(cv2.cvtColor(src[6], cv2.COLOR_BGR2GRAY), cv2.CV_32F))
    lap_dst = np.abs(cv2.Laplacian(cv2.cvtColor(dst[6], cv2.COLOR_BGR2GRAY), cv2.CV_32F))
    assert lap_dst[background].mean() < 0.6 * lap_src[background].mean()
    assert partials(tmp_path) == []


def test_render_image_to_image(tmp_path: Path, astronaut: np.ndarray) -> None:
    src = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(src), astronaut)
    result = render(Config(), src, tmp_path / "blurred.png", masks=tmp_path / "m")
    assert result.frames == 1 and result.output_kind == "image"
    out = cv2.imread(str(tmp_path / "blurred.png"))
    assert out.shape == astronaut.shape
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["astronaut.png"]
    check_mask(tmp_path / "m" / "astronaut.png", (512, 512))


def test_render_folder_keeps_names_and_sizes(tmp_path: Path, astronaut: np.ndarray) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    sizes = {"a1.jpg": (400, 300), "a2.png": (400, 300), "a10.jpg": (400, 300), "b.png": (320, 200)}
    for i, (name, size) in enumerate(sizes.items()):
        crop = astronaut[5 * i : 5 * i + 460, 3 * i : 3 * i + 500]
        cv2.imwrite(str(frames / name), cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
    result = render(Config(), frames, tmp_path / "out", masks=tmp_path / "masks")
    assert result.frames == 4
    assert result.resized == 1  # b.png differs from the first frame's size (documented policy)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(sizes)
    for name, size in sizes.items():
        img = cv2.imread(str(tmp_path / "out" / name))
        assert img.shape == (size[1], size[0], 3)
        check_mask(tmp_path / "masks" / (Path(name).stem + ".png"), size)
    assert partials(tmp_path) == []


def test_folder_to_video_uses_the_first_frame_size(tmp_path: Path, astronaut: np.ndarray) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "0.png"), cv2.resize(astronaut, (320, 240)))
    cv2.imwrite(str(frames / "1.png"), cv2.resize(astronaut, (200, 200)))
    render(Config(), frames, tmp_path / "out.mp4", fps=10)
    info = probe_input(tmp_path / "out.mp4")
    assert (info.size, info.fps, info.count) == ((320, 240), 10.0, 2)


def test_not_a_video_is_refused_before_writing(tmp_path: Path) -> None:
    fake = tmp_path / "talk.mp4"
    fake.write_text("hello, I am text\n")
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier result")
    with pytest.raises(InputError, match="neither a video nor an image"):
        render(Config(), fake, out, masks=tmp_path / "masks")
    assert out.read_bytes() == b"an earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "talk.mp4"]


def test_failure_midway_leaves_old_outputs_and_no_temporaries(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), astronaut)
    _, buf = cv2.imencode(".png", astronaut)
    (frames / "3.png").write_bytes(buf.tobytes()[:500])  # real PNG header, truncated body
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier result")
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "0.png").write_bytes(b"old mask")
    with pytest.raises(InputError, match="cannot decode image"):
        render(Config(), frames, out, masks=masks, force=True)
    assert out.read_bytes() == b"an earlier result"
    assert [p.name for p in masks.iterdir()] == ["0.png"]
    assert (masks / "0.png").read_bytes() == b"old mask"
    assert partials(tmp_path) == []


def test_a_stop_midway_ends_the_decoding_thread_and_writes_nothing(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    clip = tmp_path / "clip.mp4"
    make_clip(clip, astronaut, 40, (320, 240), 24.0)
    stop = Stop()

    def progress(done: int, total: int) -> None:
        if done == 3:
            stop.requested = "SIGTERM"  # what the signal handler writes

    with pytest.raises(RenderStopped, match="SIGTERM"):
        render(Config(), clip, tmp_path / "out.mp4", progress=progress, stop=stop)
    assert not [t for t in threading.enumerate() if t.name in ("bgcam-decoder", "bgcam-encoder")]
    assert not (tmp_path / "out.mp4").exists() and partials(tmp_path) == []


@pytest.mark.parametrize(
    ("input_name", "output_name", "error", "message"),
    [
        ("clip.mp4", "single.png", OutputError, "as the single image"),
        ("frames", "single.jpg", OutputError, "as the single image"),
        ("clip.mp4", "out.what", OutputError, "cannot tell what to write"),
        ("clip.mp4", "clip.mp4", OutputError, "would overwrite the input"),
    ],
)
def test_mismatched_outputs_are_refused(
    tmp_path: Path,
    astronaut: np.ndarray,
    input_name: str,
    output_name: str,
    error: type[Exception],
    message: str,
) -> None:
    make_clip(tmp_path / "clip.mp4", astronaut, n=2, size=(160, 120), fps=10)
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "0.png"), astronaut)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(error, match=message):
        render(Config(), tmp_path / input_name, tmp_path / output_name)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.skipif(not DAVIS.is_dir(), reason="../shared/evaldata/davis-dev is absent")
def test_davis_masks_match_the_annotations_layout(tmp_path: Path) -> None:
    """Masks are named and sized like DAVIS annotations, so maskeval.py can score them."""
    seq = DAVIS / "JPEGImages" / "lucia"
    frames = tmp_path / "lucia"
    frames.mkdir()
    for src in sorted(seq.iterdir())[:8]:
        (frames / src.name).write_bytes(src.read_bytes())
    render(Config(), frames, tmp_path / "out", masks=tmp_path / "masks" / "lucia")
    ious = []
    for src in sorted(frames.iterdir()):
        gt = cv2.imread(str(DAVIS / "Annotations" / "lucia" / f"{src.stem}.png"), 0)
        pred = cv2.imread(str(tmp_path / "masks" / "lucia" / f"{src.stem}.png"), 0)
        assert pred is not None and pred.shape == gt.shape
        g, p = gt > 127, pred > 127
        ious.append((g & p).sum() / max(1, (g | p).sum()))
    assert float(np.mean(ious)) > 0.5


def test_render_writes_a_reframed_and_relit_clip(tmp_path: Path, astronaut: np.ndarray) -> None:
    """A small, dim person walking right: the reframed clip zooms in on them and follows,
    and is brighter; the masks are framed like the picture."""
    size = (512, 288)  # (480x270 trips the PyAV reader: height not a multiple of 4)
    src = tmp_path / "walk.mp4"
    person = cv2.resize(astronaut, (150, 150), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, size)
    assert writer.isOpened()
    for i in range(45):
        frame = np.full((size[1], size[0], 3), 70, np.uint8)
        x = 60 + 3 * i
        frame[120:270, x : x + 150] = person
        writer.write(cv2.convertScaleAbs(frame, alpha=0.45))
    writer.release()
    cfg = Config().replace(**{"effects.autoframe": True, "effects.light": "auto"})
    plain = render(Config(), src, tmp_path / "plain.mp4", masks=tmp_path / "m0")
    framed = render(cfg, src, tmp_path / "framed.mp4", masks=tmp_path / "m1")
    assert framed.frames == plain.frames == 45
    info = probe_input(tmp_path / "framed.mp4")
    assert info.size == size and info.count == 45
    last = [cv2.imread(str(tmp_path / m / "00044.png"), cv2.IMREAD_GRAYSCALE) for m in ("m0", "m1")]
    share0, share1 = (float((m > 127).mean()) for m in last)
    assert share1 > 1.5 * share0  # zoomed in on the person
    cols = np.nonzero((last[1] > 127).any(axis=0))[0]
    assert abs((cols[0] + cols[-1]) / 2 - size[0] / 2) < 0.15 * size[0]  # and centred
    out = list(read_frames(probe_input(tmp_path / "framed.mp4")))
    base = list(read_frames(probe_input(tmp_path / "plain.mp4")))
    assert out[-1].mean() > 1.3 * base[-1].mean()  # relit
