"""Uploaded reference clips for voice cloning: checked, normalised and kept on disk under generated ids."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import numpy as np

from models.errors import InvalidInput, NotFound
from models.media.audio import READ_FORMATS, resample, write_wav
from models.media.decode import decode_audio_file

CLIP_SR = 22050  # what XTTS's conditioning encoders expect
MIN_S, MAX_S = 3.0, 30.0
DECODE_LIMIT_S = 10 * MAX_S  # past this the clip is not decoded further (413); below it, too long is a 400
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_clip(data: bytes) -> tuple[np.ndarray, int]:
    """Decoded mono clip at 22.05 kHz; rejects non-audio, too short, too long or silent clips."""
    audio, sr = decode_audio_file(data, DECODE_LIMIT_S, field="clip", silent_ok=True)
    seconds = len(audio) / sr
    if not MIN_S <= seconds <= MAX_S:
        raise InvalidInput(
            f"reference clip is {seconds:.1f} s long", allowed=f"{MIN_S:g}-{MAX_S:g} s of speech", field="clip"
        )
    if float(np.sqrt(np.mean(audio**2))) < 1e-3:
        raise InvalidInput("reference clip is silent", allowed="a clip of one person speaking", field="clip")
    return resample(audio, sr, CLIP_SR), CLIP_SR


class VoiceStore:
    """`<id>.wav` (22.05 kHz mono) + `<id>.json` per voice."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def add(self, name: str | None, data: bytes, engine: str, languages: tuple[str, ...]) -> dict:
        audio, sr = check_clip(data)
        slug = re.sub(r"[^a-z0-9]+", "-", (name or "voice").lower()).strip("-")[:40] or "voice"
        voice_id = f"{slug}-{uuid.uuid4().hex[:6]}"
        write_wav(self.root / f"{voice_id}.wav", audio, sr)
        record = {"id": voice_id, "name": name or voice_id, "engine": engine, "languages": list(languages)}
        record |= {"duration_s": round(len(audio) / sr, 2), "created": time.time()}
        (self.root / f"{voice_id}.json").write_text(json.dumps(record))
        return record

    def list(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*.json"))]

    def clip(self, voice_id: str) -> Path:
        path = self.root / f"{voice_id}.wav"
        if not ID.match(voice_id or "") or not path.exists():
            raise NotFound(
                f"unknown voice {voice_id!r}", allowed=[v["id"] for v in self.list()] + ["default"], field="voice"
            )
        return path

    def delete(self, voice_id: str) -> None:
        clip = self.clip(voice_id)
        for suffix in (".json", ".latents.pt"):
            clip.with_suffix(suffix).unlink(missing_ok=True)
        clip.unlink(missing_ok=True)


__all__ = ["READ_FORMATS", "VoiceStore", "check_clip"]
