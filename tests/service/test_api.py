"""The public API through an ASGI test client: every endpoint and every error case (dependencies in-process)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.service


def _png(rgb: np.ndarray, ext=".jpg") -> bytes:
    return cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def _assert_error(r, status, code=None, mention=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["message"]
    if code:
        assert body["error"] == code
    if mention:
        assert mention in r.text
    return body


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy" and body["models_loaded"] is True
    assert body["device"] in ("cpu", "cuda", "mps") and body["engines"] == {"tts": "auto", "avatar": "portrait"}
    from models.version import VERSION

    assert body["version"] == VERSION


def test_generate_then_download_with_ranges(client):
    from models.media import probe

    r = client.post("/api/v1/generate", json={"text": "Hello there, my friend."})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed" and body["video_url"].startswith("/api/v1/videos/")
    meta = body["metadata"]
    for key in ("tts_ms", "avatar_ms", "encode_ms", "duration_ms", "audio_duration_s", "rtf"):
        assert meta[key] > 0
    assert meta["language"] == "en" and meta["voice"] == "default" and meta["avatar"] == "default"
    video = client.get(body["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    info = probe(video.content)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac" and info["width"] == 128
    assert abs(info["n_frames"] - meta["audio_duration_s"] * 12) <= 1
    part = client.get(body["video_url"], headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and len(part.content) == 100 and part.content == video.content[10:110]
    assert part.headers["content-range"] == f"bytes 10-109/{len(video.content)}"
    assert client.head(body["video_url"]).headers["content-length"] == str(len(video.content))


def test_generate_with_size_and_fps(client):
    from models.media import probe

    r = client.post("/api/v1/generate", json={"text": "Short.", "size": 160, "fps": 10})
    assert r.status_code == 200, r.text
    info = probe(client.get(r.json()["video_url"]).content)
    assert info["width"] == 160 and abs(info["fps"] - 10) < 0.01


@pytest.mark.parametrize(
    "payload,status,mention",
    [
        ({"text": ""}, 400, "empty"),
        ({"text": "   \n "}, 400, "empty"),
        ({"text": "a" * 5000}, 400, "2000"),
        ({"text": "Bonjour", "language": "fr"}, 400, '"en"'),
        ({"text": "Hi", "avatar": "nosuchavatar"}, 404, "default"),
        ({"text": "Hi", "avatar": "../../etc"}, 400, "avatar"),
        ({"text": "Hi", "voice": "nosuchvoice"}, None, "default"),
        ({"text": "Hi", "size": 100000}, 400, "size"),
        ({"text": "Hi", "fps": 0}, 400, "fps"),
        ({"text": "Hi", "speed": 100}, 400, "speed"),
        ({"text": 123}, 400, "text"),
        ({"language": "en"}, None, None),
    ],
)
def test_generate_rejects_bad_input(client, payload, status, mention):
    r = client.post("/api/v1/generate", json=payload)
    if status is None:
        assert 400 <= r.status_code < 500 or (r.status_code == 200 and "text" not in payload), r.text
        return
    _assert_error(r, status, mention=mention)


def test_malformed_json(client):
    r = client.post("/api/v1/generate", content=b"{not json", headers={"content-type": "application/json"})
    _assert_error(r, 400, "invalid_request")


@pytest.mark.parametrize("name", ["x.txt", "..%2F..%2Fetc%2Fpasswd", "....mp4", "a b.mp4"])
def test_path_like_video_names(client, name):
    r = client.get(f"/api/v1/videos/{name}")
    assert r.status_code in (400, 404), r.text
    assert "/etc" not in r.text or r.json()["error"] in ("invalid_input", "not_found")


def test_missing_video(client):
    _assert_error(client.get("/api/v1/videos/20260101-000000-abcdefabcdef.mp4"), 404, "not_found")


def test_tts_wav(client):
    import soundfile as sf

    r = client.post("/api/v1/tts", json={"text": "Testing one two three."})
    assert r.status_code == 200 and r.headers["content-type"].startswith("audio/wav")
    audio, sr = sf.read(io.BytesIO(r.content))
    assert sr == 22050 and 0.8 < len(audio) / sr < 4 and np.abs(audio).max() > 0.05


@pytest.mark.parametrize("fmt", ["wav", "pcm", "flac", "mp3", "opus", "aac"])
def test_openai_speech_formats(client, fmt):
    r = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": "Hello.", "voice": "default", "response_format": fmt}
    )
    assert r.status_code == 200, r.text
    assert len(r.content) > 1000


def test_speech_is_sent_sentence_by_sentence(client):
    import soundfile as sf

    text = "First sentence here. Second one follows. And a third, to finish."
    with client.stream("POST", "/api/v1/tts", json={"text": text}) as r:
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        parts = [p for p in r.iter_bytes() if p]
    assert len(parts) >= 3  # one piece of the body per sentence, not one blob
    audio, sr = sf.read(io.BytesIO(b"".join(parts)))  # the streaming WAV header (unknown length) still reads
    assert sr == 22050 and len(audio) / sr > 2.5


def test_openai_pcm_is_24khz(client):
    r = client.post("/v1/audio/speech", json={"input": "Hello there.", "response_format": "pcm"})
    wav = client.post("/v1/audio/speech", json={"input": "Hello there.", "response_format": "wav"})
    import soundfile as sf

    audio, sr = sf.read(io.BytesIO(wav.content))
    assert r.headers["content-type"] == "audio/pcm" and abs(len(r.content) / 2 / 24000 - len(audio) / sr) < 0.15


def test_speech_errors_come_before_any_audio(client):
    _assert_error(client.post("/api/v1/tts", json={"text": "Hola", "language": "xx"}), 400, mention="allowed")
    _assert_error(client.post("/api/v1/tts", json={"text": "Hi", "voice": "nobody"}), 404, mention="nobody")


def _openai_error(r, status: int, code: str, param: str) -> dict:
    """Errors under /v1/ come in OpenAI's shape, so its SDKs show the message."""
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and error["param"] == param and error["message"], error
    return error


def test_openai_speech_errors(client):
    post = lambda body: client.post("/v1/audio/speech", json={"input": "Hi"} | body)  # noqa: E731
    error = _openai_error(post({"response_format": "aiff"}), 400, "invalid_request", "response_format")
    assert "'mp3'" in error["message"] and error["type"] == "invalid_request_error"
    assert "4" in _openai_error(post({"speed": 9}), 400, "invalid_request", "speed")["message"]
    assert "empty" in _openai_error(post({"input": ""}), 400, "invalid_request", "input")["message"]
    assert "default" in _openai_error(post({"voice": "nobody"}), 404, "not_found", "voice")["message"]
    assert _openai_error(post({"voice": {"id": "Bad Id"}}), 400, "invalid_request", "voice")


def test_openai_voice_names_map_to_our_voices(client):
    for voice in ("alloy", "shimmer", "cedar", {"id": "default"}):
        r = client.post("/v1/audio/speech", json={"input": "Hello.", "voice": voice, "instructions": "Calmly."})
        assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg", r.text


def test_voices(client):
    voices = client.get("/api/v1/voices").json()["voices"]
    assert voices and "en" in voices[0]["languages"]
    assert client.get("/api/v1/assets/voice-samples").json()["voice_samples"]


def test_avatar_lifecycle(client, portrait_rgb):
    canvas = np.full((700, 900, 3), 180, np.uint8)
    canvas[100:612, 300:812] = portrait_rgb
    r = client.post("/api/v1/avatars", files={"photo": ("me.jpg", _png(canvas), "image/jpeg")}, data={"name": "me"})
    assert r.status_code == 201, r.text
    avatar_id = r.json()["id"]
    ids = [a["id"] for a in client.get("/api/v1/avatars").json()["avatars"]]
    assert "default" in ids and avatar_id in ids
    assert avatar_id in client.get("/api/v1/assets/images").json()["images"]
    gen = client.post("/api/v1/generate", json={"text": "It is me.", "avatar": avatar_id})
    assert gen.status_code == 200, gen.text
    assert client.delete(f"/api/v1/avatars/{avatar_id}").status_code == 200
    _assert_error(client.post("/api/v1/generate", json={"text": "Gone.", "avatar": avatar_id}), 404)
    _assert_error(client.delete("/api/v1/avatars/default"), 409)


def test_avatar_upload_errors(client):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    _assert_error(
        client.post("/api/v1/avatars", files={"photo": ("n.png", _png(noise, ".png"), "image/png")}),
        422,
        "no_face_found",
    )
    _assert_error(client.post("/api/v1/avatars", files={"photo": ("x.png", b"hello", "image/png")}), 400, mention="png")
    big = b"\xff" * 1_100_000
    _assert_error(client.post("/api/v1/avatars", files={"photo": ("big.jpg", big, "image/jpeg")}), 413)
    assert client.post("/api/v1/avatars").status_code == 400  # no file at all


def test_service_stays_healthy_after_errors(client):
    for _ in range(3):
        client.post("/api/v1/generate", json={"text": ""})
    assert client.get("/health").json()["status"] == "healthy"
    assert client.post("/api/v1/generate", json={"text": "Still here."}).status_code == 200


def test_openapi_lists_the_routes(client):
    paths = client.get("/docs.json").json()["paths"]
    for p in ("/api/v1/generate", "/api/v1/tts", "/v1/audio/speech", "/api/v1/avatars", "/health"):
        assert p in paths


def test_default_voice_speaks_three_languages(client):
    voices = client.get("/api/v1/voices").json()["voices"]
    assert set(voices[0]["languages"]) == {"en", "es", "zh-cn"}
    for language, text in (("es", "Hola a todos."), ("zh", "你好。")):
        r = client.post("/api/v1/generate", json={"text": text, "language": language})
        assert r.status_code == 200, r.text
    _assert_error(client.post("/api/v1/generate", json={"text": "Hi", "voice": "nobody"}), 404, mention="default")
