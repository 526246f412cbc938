"""Audio in over the public API (ASGI test client, the TTS and avatar services in process): /api/v1/animate and its
stream with each bad input, and the live audio socket /api/v1/animate/live."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from models.media import probe
from models.media.audio import encode_audio, resample
from models.tts import create_engine, synthesize

pytestmark = pytest.mark.service
TEXT = "Maybe both of them will bring a map."


@pytest.fixture(scope="module")
def speech():
    return synthesize(create_engine("piper"), TEXT)


def _animate(client, data: bytes, name="clip.wav", route="/api/v1/animate", **fields):
    return client.post(route, files={"audio": (name, data, "application/octet-stream")}, data=fields)


def test_animate_answers_as_generate_does(client, speech, tmp_path):
    wav = encode_audio(speech.audio, speech.sample_rate, "wav")[0]
    r = _animate(client, wav, text=TEXT)
    assert r.status_code == 200, r.text
    body = r.json()
    meta = body["metadata"]
    assert body["status"] == "completed" and meta["mouth"] == "aligned" and meta["align_ms"] > 0
    assert abs(meta["audio_duration_s"] - speech.duration) < 0.05 and meta["voice"] == "upload"
    video = client.get(body["video_url"])
    (tmp_path / "a.mp4").write_bytes(video.content)
    info = probe(tmp_path / "a.mp4")
    assert (
        info["video_codec"] == "h264" and info["width"] == 128 and abs(info["audio_duration_s"] - speech.duration) < 0.1
    )
    mp3 = encode_audio(speech.audio, speech.sample_rate, "mp3")[0]
    heard = _animate(client, mp3, name="clip.mp3", language="en", seed="3").json()["metadata"]
    assert heard["mouth"] == "transcribed"  # no text: the words are heard, then aligned


def test_the_stream_variant_sends_a_fragmented_mp4(client, speech, tmp_path):
    flac = encode_audio(speech.audio, speech.sample_rate, "flac")[0]
    r = _animate(client, flac, name="clip.flac", route="/api/v1/animate/stream")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert r.content[4:8] == b"ftyp" and b"moof" in r.content
    (tmp_path / "s.mp4").write_bytes(r.content)
    assert abs(probe(tmp_path / "s.mp4")["audio_duration_s"] - speech.duration) < 0.1


@pytest.mark.parametrize("route", ["/api/v1/animate", "/api/v1/animate/stream"])
def test_bad_input_gets_a_clear_4xx(client, speech, route):
    wav = encode_audio(speech.audio, speech.sample_rate, "wav")[0]
    long_quiet = encode_audio(np.full(16000 * 25, 1e-2, np.float32), 16000, "opus")[0]  # 25 s > the 20 s limit
    cases = [
        (dict(data=b"this is not audio" * 50), 400, "not readable audio"),
        (dict(data=encode_audio(np.zeros(16000, np.float32), 16000, "wav")[0]), 400, "silent"),
        (dict(data=wav, language="xx"), 400, "no aligner for language"),
        (dict(data=wav, text="这是中文"), 400, "not written as 'en'"),
        (dict(data=wav, size="99"), 400, "invalid_request"),
        (dict(data=long_quiet, name="long.ogg"), 413, "at most 20 s"),
        (dict(data=b"\0" * 1_100_000), 413, "larger than 1 MB"),
        (dict(data=b""), 400, "empty"),
    ]
    for kwargs, status, needle in cases:
        r = _animate(client, route=route, **kwargs)
        assert r.status_code == status and needle in r.text, (kwargs.get("name"), r.status_code, r.text[:200])
        assert r.json()["error"]
    assert client.post(route, data={"text": "no file"}).status_code == 400
    assert client.get("/health").json()["status"] == "healthy"


def _pcm(speech, rate=24000) -> bytes:
    return (resample(speech.audio, speech.sample_rate, rate) * 32767).astype("<i2").tobytes()


def test_the_live_socket_answers_audio_with_video(client, speech, tmp_path):
    pcm = _pcm(speech)
    with client.websocket_connect("/api/v1/animate/live") as ws:
        ws.send_text(json.dumps({"sample_rate": 24000, "language": "en"}))
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["fps"] == 12 and ready["size"] == 128
        init = ws.receive_bytes()
        assert init[4:8] == b"ftyp"
        for i in range(0, len(pcm), 9600):
            ws.send_bytes(pcm[i : i + 9600])
        ws.send_text(json.dumps({"type": "end"}))
        kinds, data = [], bytearray(init)
        while True:
            message = ws.receive()
            if message.get("bytes") is not None:
                data += message["bytes"]
            elif message.get("text"):
                kinds.append(json.loads(message["text"])["type"])
                if kinds[-1] == "done":
                    break
    assert "speaking" in kinds and kinds[-1] == "done"
    path = tmp_path / "live.mp4"
    path.write_bytes(data)
    info = probe(path)  # all the speech was played out before the end: idle + 2 s of speech
    assert info["audio_duration_s"] >= len(pcm) / 2 / 24000 + 0.2 and info["video_codec"] == "h264"


@pytest.mark.parametrize(
    ("first", "code", "needle"),
    [
        ("not json", 1007, "JSON object"),
        (json.dumps({"sample_rate": 12345}), 1007, "sample_rate 12345"),
        (json.dumps({"language": "xx"}), 1008, "no aligner"),
        (json.dumps({"bogus": 1}), 1007, "bogus"),
    ],
)
def test_the_live_socket_refuses_a_bad_hello(client, first, code, needle):
    with client.websocket_connect("/api/v1/animate/live") as ws:
        ws.send_text(first)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == code and needle in closed.value.reason


def test_the_live_socket_refuses_bad_messages(client):
    for send, code in [(lambda ws: ws.send_bytes(b"\x01\x02\x03"), 1007),
                       (lambda ws: ws.send_text('{"type": "dance"}'), 1003),
                       (lambda ws: ws.send_bytes(b"\0" * (2 * 16000 * 2 + 2)), 1009)]:  # fmt: skip
        with client.websocket_connect("/api/v1/animate/live") as ws:
            ws.send_text(json.dumps({"sample_rate": 16000}))
            assert ws.receive_json()["type"] == "ready"
            send(ws)
            while (message := ws.receive())["type"] != "websocket.close":
                pass
            assert message["code"] == code, message
