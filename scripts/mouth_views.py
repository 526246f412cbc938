"""Pictures of the renderer to look at: a contact sheet and a mouth strip for any number of portraits.

    python scripts/mouth_views.py [--out bench-out] [--faces docs/faces] [--start 7.0] [--text "..."] [--zoom 2]

Renders the benchmark's long utterance on the bundled portrait and on every photo in `--faces` (raw frames, no
video coding), then writes `contact_sheet.png` (one row of frames every ~2 s per portrait) and `mouth_strip.png`
(rows of consecutive frames zoomed on each portrait's detected mouth). `scripts/benchmark.py` writes the same pictures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from bench_texts import TEXTS

from models.avatar import landmarks as lm
from models.avatar.images import load_image
from models.avatar.portrait import Avatar, PortraitRenderer, speech_track
from models.pipeline import Pipeline, default_image
from models.settings import load_settings

LABEL = (255, 255, 0)
# in the benchmark's long utterance: "...ɛm, bi: and pi:" (closures, spreading) and "...o: and ju:" (rounding)
STRIP_STARTS = [10.48, 12.36]


def _label(tile: np.ndarray, text: str, scale: float = 0.5, y: int = 17) -> np.ndarray:
    cv2.putText(tile, text, (5, y), cv2.FONT_HERSHEY_SIMPLEX, scale, LABEL, 1, cv2.LINE_AA)
    return tile


def mouth_box(avatar: Avatar, aspect: float = 4 / 3, zoom: float = 1.0) -> tuple[int, int, int, int]:
    """A box around the detected lips, from the nose to below the chin's travel (x0, y0, x1, y1); `zoom` > 1
    narrows it on the mouth (to see the teeth and tongue)."""
    p = avatar.portrait.points
    lips = p[lm.LIPS_UPPER_OUTER + lm.LIPS_LOWER_OUTER]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    w = (x1 - x0) * 1.9 / zoom
    h = w / aspect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.1 * h  # room below for the opening jaw
    size = avatar.portrait.size
    bx0 = int(np.clip(cx - w / 2, 0, size - w))
    by0 = int(np.clip(cy - h / 2, 0, size - h))
    return bx0, by0, bx0 + int(w), by0 + int(h)


def contact_row(frames: np.ndarray, fps: float, n: int = 6, tile: int = 256) -> np.ndarray:
    """n frames spread over the clip, side by side, each labelled with its time."""
    idx = np.linspace(0, len(frames) - 1, n).astype(int)
    tiles = [_label(cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA), f"{i / fps:.2f}s") for i in idx]
    return np.concatenate(tiles, 1)


def mouth_strip(frames: np.ndarray, box: tuple, firsts: list[int], n: int = 12, tile=(160, 120)) -> np.ndarray:
    """One row of `n` consecutive frames zoomed on the mouth per start: shapes, closures and smoothness at a glance."""
    x0, y0, x1, y1 = box
    rows = []
    for first in firsts:
        idx = range(first, min(first + n, len(frames)))
        tiles = [_label(cv2.resize(frames[i][y0:y1, x0:x1], tile, interpolation=cv2.INTER_AREA), str(i)) for i in idx]
        tiles += [np.zeros((tile[1], tile[0], 3), np.uint8)] * (n - len(tiles))
        rows.append(np.concatenate(tiles, 1))
    return np.concatenate(rows, 0)


def portraits(faces: Path | None, settings) -> dict[str, np.ndarray]:
    """The bundled portrait plus every JPEG/PNG in `faces`, by file name."""
    out = {"astronaut": default_image(settings)}
    for path in sorted(faces.glob("*.[jp][pn]g")) if faces and faces.is_dir() else []:
        out[path.stem] = load_image(path.read_bytes())
    return out


def render_all(pipe: Pipeline, images: dict[str, np.ndarray], text: str) -> dict[str, tuple[Avatar, np.ndarray]]:
    """Frames of one utterance (synthesised once) on each portrait."""
    speech = pipe.speak(text)
    track = speech_track(speech.audio, speech.sample_rate, speech.phonemes)
    r: PortraitRenderer = pipe.renderer
    out = {}
    for name, image in images.items():
        avatar = r.prepare(image)
        out[name] = avatar, np.stack(list(r.frames(avatar, r.plan(avatar, track))))
    return out


def write_views(rendered: dict, fps: float, out: Path, starts: list[float], n: int = 12, zoom: float = 1.0) -> None:
    """contact_sheet.png (one row per portrait) and mouth_strip.png (a row of consecutive frames per start each)."""
    rows = [_label(contact_row(frames, fps), name, 0.6, 248) for name, (_, frames) in rendered.items()]
    cv2.imwrite(str(out / "contact_sheet.png"), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
    firsts = [int(round(s * fps)) for s in starts]
    strips = [mouth_strip(frames, mouth_box(avatar, zoom=zoom), firsts, n) for avatar, frames in rendered.values()]
    cv2.imwrite(str(out / "mouth_strip.png"), cv2.cvtColor(np.concatenate(strips, 0), cv2.COLOR_RGB2BGR))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--faces", type=Path, default=Path("docs/faces"), help="folder of extra portraits")
    ap.add_argument("--start", type=float, nargs="+", default=STRIP_STARTS, help="first second of each strip row")
    ap.add_argument("--frames", type=int, default=12, help="consecutive frames per row")
    ap.add_argument("--text", default=TEXTS["long (~20 s)"], help="utterance (default: the benchmark's long one)")
    ap.add_argument("--zoom", type=float, default=1.0, help="closer on the mouth in the strip (2: teeth and tongue)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(load_settings(overrides={"storage": {"data_dir": tmp}}))
        rendered = render_all(pipe, portraits(args.faces, pipe.settings), args.text)
    write_views(rendered, pipe.renderer.fps, args.out, args.start, args.frames, args.zoom)
    return 0


if __name__ == "__main__":
    sys.exit(main())
