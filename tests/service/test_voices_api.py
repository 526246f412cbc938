"""Voice cloning over HTTP with a tiny random XTTS in the tests' model store."""

from __future__ import annotations

import io

import pytest
import soundfile as sf

from tests.helpers import speech_like_clip

pytest.importorskip("TTS", reason="coqui-tts is not installed")
pytestmark = [pytest.mark.service, pytest.mark.slow]


def _upload(client, clip=None, name="Grace"):
    return client.post(
        "/api/v1/voices", files={"clip": ("ref.wav", clip or speech_like_clip(), "audio/wav")}, data={"name": name}
    )


def test_voice_lifecycle(client):
    r = _upload(client)
    assert r.status_code == 201, r.text
    voice = r.json()
    assert voice["id"].startswith("grace-") and "es" in voice["languages"] and voice["engine"] == "xtts"
    listed = {v["id"]: v for v in client.get("/api/v1/voices").json()["voices"]}
    assert listed[voice["id"]]["cloned"] is True and "default" in listed
    gen = client.post("/api/v1/generate", json={"text": "Hello there.", "voice": voice["id"]})
    assert gen.status_code == 200, gen.text
    assert gen.json()["metadata"]["voice"] == voice["id"]
    # a cloned voice has no timings of its own: its text is aligned to its audio (the random test model's audio
    # is noise, so which aligner places it varies; never the loudness fallback)
    assert gen.json()["metadata"]["mouth"] in ("aligned", "recognized")
    default = client.post("/api/v1/generate", json={"text": "Hello there."}).json()["metadata"]
    assert default["mouth"] == "phonemes"
    wav = client.post("/api/v1/tts", json={"text": "Hola.", "language": "es", "voice": voice["id"]})
    assert wav.status_code == 200 and sf.info(io.BytesIO(wav.content)).samplerate == 24000
    speech = client.post("/v1/audio/speech", json={"input": "Hi.", "voice": voice["id"], "response_format": "flac"})
    assert speech.status_code == 200
    assert client.delete(f"/api/v1/voices/{voice['id']}").status_code == 200
    r = client.post("/api/v1/generate", json={"text": "Gone.", "voice": voice["id"]})
    assert r.status_code == 404 and "default" in r.json()["allowed"]


def test_voice_lacks_language(client):
    voice = _upload(client, name="Lang").json()["id"]
    r = client.post("/api/v1/generate", json={"text": "Hi", "voice": voice, "language": "tlh"})
    assert r.status_code == 400 and "en" in r.json()["allowed"]


@pytest.mark.parametrize(
    "clip,status,needle",
    [
        (speech_like_clip(1.0), 400, "long"),
        (speech_like_clip(5.0, silent=True), 400, "silent"),
        (b"RIFF....not really audio", 400, "audio"),
        (b"\0" * 1_100_000, 413, "MB"),
    ],
)
def test_bad_clips(client, clip, status, needle):
    r = _upload(client, clip)
    assert r.status_code == status and needle in r.json()["message"]


def test_delete_unknown_or_default(client):
    assert client.delete("/api/v1/voices/nobody-123").status_code == 404
    assert client.delete("/api/v1/voices/default").status_code == 409
