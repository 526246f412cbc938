"""`avatar talk`: hands-free turns in process from a recording (the tiny random Whisper, the fake LLM): the first
answer is talked over and cut, the second is written whole; what the first said is remembered as heard."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.cli import main
from models.tts import create_engine, synthesize

pytestmark = pytest.mark.unit
REPLY = "Sure. It is sunny and warm today. Later some clouds may come over the hills, and the wind picks up."


def test_talk_answers_a_recording_and_is_cut_when_talked_over(tmp_path, monkeypatch, capsys, fake_llm, tiny_whisper):
    import soundfile as sf

    if not tiny_whisper:
        pytest.skip("speech recognition needs faster-whisper and transformers")
    engine = create_engine("piper")
    first, second = synthesize(engine, "How is the weather today?"), synthesize(engine, "Wait, and tomorrow?")
    sr = first.sample_rate
    audio = np.concatenate([np.zeros(sr // 2), first.audio, np.zeros(int(4.5 * sr)), second.audio]).astype(np.float32)
    sf.write(tmp_path / "talk.wav", audio, sr, subtype="PCM_16")
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AVATAR_SIZE", "128")
    monkeypatch.setenv("AVATAR__LLM__BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("AVATAR__LLM__MODEL", "fake")
    fake_llm.mode, fake_llm.reply = "stream", REPLY
    assert (
        main(["talk", "--wav", str(tmp_path / "talk.wav"), "--out", str(tmp_path / "turns"), "--language", "en"]) == 0
    )
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["type"] for e in events]
    cut = events[kinds.index("interrupted")]
    assert cut["turn"] == 1 and cut["spoken"].startswith("Sure.") and len(cut["spoken"]) < len(REPLY), cut
    done = [e for e in events if e["type"] == "done" and e["turn"] == 2]
    assert done and done[0]["reply"] == REPLY and (tmp_path / "turns" / "turn-2.mp4").stat().st_size > 1000
    assert not list((tmp_path / "turns").glob("*.part"))
    history = fake_llm.requests[-1]["body"]["messages"]
    assert [m["content"] for m in history if m["role"] == "assistant"][-1] == cut["spoken"]


def test_talk_says_what_is_missing_in_one_line(tmp_path, capsys):
    assert main(["talk", "--wav", str(tmp_path / "nothing.wav"), "--out", str(tmp_path)]) == 2
    assert "recording not found" in capsys.readouterr().err
