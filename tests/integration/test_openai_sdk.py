"""The official `openai` Python SDK against a real `bentoml serve` that needs an API key: every response format,
plain and streamed, OpenAI's voice names and custom-voice form, SSE events, and a wrong key."""

from __future__ import annotations

import base64
import io
import json

import av
import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration
openai = pytest.importorskip("openai")

KEY = "sk-test-0123456789"
TEXT = "Hello from the official client. This is the second sentence."
FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                 "wav": "audio/wav", "pcm": "audio/pcm"}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_whisper):
    """(Speech recognition is the tiny random Whisper imported by tests/conftest.py: its words are noise, its
    responses are real.)"""
    from services.launcher import Server
    from tests.integration.conftest import ROOT

    tmp = tmp_path_factory.mktemp("openai")
    env = {"AVATAR_DATA_DIR": str(tmp / "data"), "AVATAR_SIZE": "128", "AVATAR_FPS": "12", "AVATAR_API_KEYS": KEY}
    with Server("services.pipeline:AvatarPipeline", env, tmp / "serve.log", cwd=ROOT) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)


def seconds_of(data: bytes, fmt: str) -> float:
    """Decode the audio back (PyAV; pcm is raw 16-bit mono 24 kHz) and return its length with speech in it."""
    if fmt == "pcm":
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768
        rate = 24000
    else:
        with av.open(io.BytesIO(data)) as container:
            frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
            rate = container.streams.audio[0].rate
        samples = np.concatenate(frames).astype(np.float32)
        samples = samples / 32768 if np.abs(samples).max() > 2 else samples
    assert np.sqrt(np.mean(samples**2)) > 0.01, f"{fmt}: silent"
    return len(samples) / rate


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_plain_and_streamed(client, fmt):
    whole = client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format=fmt)
    assert whole.response.headers["content-type"] == CONTENT_TYPES[fmt]
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input=TEXT, response_format=fmt
    ) as streamed:
        parts = [p for p in streamed.iter_bytes() if p]
    assert len(parts) >= 2  # sent as it is made, a sentence at a time
    for data in (whole.content, b"".join(parts)):
        assert 2.5 < seconds_of(data, fmt) < 8


def test_default_format_is_mp3_and_openai_options_are_accepted(client):
    r = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice={"id": "default"}, input="Hi there.", instructions="Speak cheerfully.", speed=1.2
    )
    assert r.response.headers["content-type"] == "audio/mpeg" and seconds_of(r.content, "mp3") > 0.3


def test_sse_stream_format(client):
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="echo", input=TEXT, response_format="pcm", stream_format="sse"
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert len(events) >= 3 and 2.5 < seconds_of(audio, "pcm") < 8


def test_keys_are_required_and_probes_stay_open(server):
    wrong = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.audio.speech.create(model="tts-1", voice="alloy", input="No.")
    error = caught.value
    assert error.status_code == 401 and error.code == "unauthorized" and error.type == "authentication_error"
    assert "wrong API key" in str(error)
    with pytest.raises(openai.NotFoundError, match="unknown voice") as caught:
        openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0).audio.speech.create(
            model="tts-1", voice="nobody", input="Who?"
        )
    assert caught.value.param == "voice" and caught.value.code == "not_found"
    assert httpx.get(server.url + "/api/v1/voices").status_code == 401
    assert httpx.get(server.url + "/api/v1/voices", headers={"api-key": KEY}).status_code == 200
    for path in ("/health", "/readyz", "/livez", "/metrics", "/demo", "/docs.json"):
        assert httpx.get(server.url + path).status_code == 200, path
    spec = httpx.get(server.url + "/docs.json").json()  # Swagger UI's Authorize button, for the keyed routes
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/health"]["get"]["security"] == [] and "security" not in spec["paths"]["/api/v1/generate"]


@pytest.mark.parametrize("fmt", ["json", "text", "verbose_json", "srt", "vtt"])
def test_transcriptions_in_every_format(client, tiny_whisper, fmt):
    if not tiny_whisper:
        pytest.skip("speech recognition needs faster-whisper and transformers")
    from models.media.audio import wav_bytes
    from models.tts import create_engine, synthesize

    speech = synthesize(create_engine("piper"), "What is the weather like today?")
    got = client.audio.transcriptions.create(
        model="whisper-1", file=("question.wav", wav_bytes(speech.audio, speech.sample_rate)), language="en",
        response_format=fmt,
    )  # fmt: skip
    if fmt == "json":
        assert isinstance(got.text, str)
    elif fmt == "verbose_json":
        assert got.language == "english" and abs(got.duration - speech.duration) < 0.1 and isinstance(got.text, str)
        assert all(0 <= s.start <= s.end <= got.duration + 0.01 for s in got.segments or [])
    elif fmt == "vtt":
        assert got.startswith("WEBVTT")
    else:
        assert isinstance(got, str)


def test_transcription_errors_come_in_openais_shape(client, server):
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.transcriptions.create(model="whisper-1", file=("q.wav", b"RIFF not audio"), response_format="json")
    assert bad.value.body["code"] and "audio" in bad.value.body["message"]
    with pytest.raises(openai.BadRequestError) as fmt:
        client.audio.transcriptions.create(model="whisper-1", file=("q.wav", b"x"), response_format="tsv")
    assert "response_format" in fmt.value.body["message"] and fmt.value.body["param"] == "response_format"
    anonymous = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        anonymous.audio.transcriptions.create(model="whisper-1", file=("q.wav", b"x"))
