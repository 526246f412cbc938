"""The `avatar` command: good runs print timings; bad input exits non-zero with one line, no traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.cli import main

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AVATAR_SIZE", "128")


def test_generate_prints_timings(tmp_path, capsys):
    out = tmp_path / "hi.mp4"
    assert main(["generate", "Hi there.", "-o", str(out), "--json", "--fps", "10"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert out.exists() and data["n_frames"] > 5
    for key in ("tts_ms", "avatar_ms", "encode_ms", "total_ms", "audio_duration_s", "rtf"):
        assert data[key] > 0


def _image(tmp_path, rgb, name="img.png"):
    path = tmp_path / name
    cv2.imwrite(str(path), rgb)
    return path


@pytest.mark.parametrize(
    "args,needle",
    [
        (["generate", "   ", "-o", "{tmp}/a.mp4"], "text is empty"),
        (["generate", "Hi", "-o", "{tmp}/a.mp4", "--language", "de"], "not supported"),
        (["generate", "Hi", "-o", "{tmp}/a.mp4", "--size", "7"], "size"),
        (["generate", "Hi", "-o", "{tmp}/nope/a.mp4"], "does not exist"),
        (["generate", "Hi", "-o", "{tmp}/a.mp4", "--avatar", "{tmp}/missing.png"], "not found"),
        (["generate", "Hi", "-o", "{tmp}/a.mp4", "--avatar", "{grey}"], "no face"),
        (["generate", "Hi", "-o", "{tmp}/a.mp4", "--avatar", "{text}"], "not a readable image"),
        (["generate", "Hi", "-o", "{tmp}/a.mp4", "--voice", "{tmp}/none.onnx"], "not found"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, needle):
    grey = _image(tmp_path, np.full((200, 200, 3), 120, np.uint8))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    fmt = {"tmp": tmp_path, "grey": grey, "text": text}
    code = main([a.format(**fmt) for a in args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("avatar: error:") and needle in err and "\n" not in err
    assert not (tmp_path / "a.mp4").exists()


def test_console_script_never_shows_a_traceback(tmp_path):
    exe = Path(sys.executable).with_name("avatar")
    env = {**os.environ, "AVATAR_DATA_DIR": str(tmp_path)}
    r = subprocess.run(
        [str(exe), "generate", "", "-o", str(tmp_path / "x.mp4")], capture_output=True, text=True, env=env
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "text is empty" in r.stderr
    r = subprocess.run([str(exe), "generate"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_stream_writes_a_playable_file_and_reports_first_fragment(tmp_path, capsys):
    from models.media import probe

    out = tmp_path / "live.mp4"
    assert main(["stream", "Hello there, my friend. How are you today?", "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert 0 < report["first_fragment_ms"] < report["total_ms"]
    info = probe(out)
    assert info["n_frames"] == report["n_frames"] and info["width"] == 128
    assert [p.name for p in tmp_path.iterdir()] == ["live.mp4", "data"] or not list(tmp_path.glob("*.part"))


def test_stream_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys):
    assert main(["stream", "Hola", "--language", "xx", "-o", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("avatar: error: language 'xx'") and "\n" not in err
    assert not list(tmp_path.glob("*.mp4*"))


def test_animate_speaks_with_any_voice_and_refuses_bad_audio(tmp_path, capsys):
    from models.media import probe
    from models.media.audio import encode_audio
    from models.tts import create_engine, synthesize

    s = synthesize(create_engine("piper"), "Maybe both of them will bring a map.")
    clip = tmp_path / "voice.ogg"
    clip.write_bytes(encode_audio(s.audio, s.sample_rate, "opus")[0])
    out = tmp_path / "animated.mp4"
    text = "Maybe both of them will bring a map."
    assert main(["animate", str(clip), "-o", str(out), "--text", text, "--fps", "10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mouth"] == "aligned" and data["align_ms"] > 0 and probe(out)["audio_codec"] == "aac"
    assert main(["animate", str(clip), "-o", str(tmp_path / "heard.mp4"), "--fps", "10"]) == 0
    assert "mouth transcribed" in capsys.readouterr().out
    notes = tmp_path / "notes.mp3"
    notes.write_text("not audio")
    for args, needle in [([str(notes)], "not readable audio"), ([str(clip), "--language", "xx"], "no aligner"),
                         ([str(tmp_path / "missing.wav")], "not found")]:  # fmt: skip
        assert main(["animate", *args, "-o", str(tmp_path / "never.mp4")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("avatar: error:") and needle in err and "\n" not in err
    assert not (tmp_path / "never.mp4").exists()
