"""Evaluation metrics on inputs with known answers, scenario files, reports and baseline regressions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.errors import InvalidInput
from models.evaluation import metrics
from models.evaluation.report import regressions, write_report
from models.evaluation.runner import load_scenarios

pytestmark = pytest.mark.unit
FPS = 25


def _speechy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.random(n + 20), np.ones(5) / 5, mode="valid")[:n]
    return np.clip(x - 0.4, 0, None)


@pytest.mark.parametrize("shift", [-3, 0, 2, 5])
def test_known_offset_is_recovered_within_a_frame(shift):
    env = _speechy()
    mouth = np.roll(env, shift)  # shift > 0: the mouth moves after the sound
    r = metrics.av_offset(mouth, env, FPS)
    assert abs(r["av_offset_ms"] - shift * 1000 / FPS) <= 1000 / FPS
    assert r["lip_sync_corr"] > 0.9


def test_silent_clip_or_still_mouth_has_no_sync():
    env = _speechy()
    r = metrics.av_offset(np.zeros_like(env), env, FPS)
    assert r["lip_sync_corr"] == 0.0 and r["av_offset_ms"] is None
    assert metrics.av_offset(env, np.zeros_like(env), FPS)["av_offset_ms"] is None


def test_blinks_per_minute():
    eyes = np.full(60 * FPS, 0.35)
    for start in (100, 400, 700, 1000, 1300):
        eyes[start : start + 3] = 0.26  # Face Mesh reads a closed lid as ~3/4 open
    assert metrics.blinks_per_minute(eyes, FPS) == pytest.approx(5.0)
    assert metrics.blinks_per_minute(np.full(100, 0.35), FPS) == 0.0


def test_jitter_separates_smooth_from_shaky():
    t = np.arange(250) / FPS
    smooth = np.stack([0.01 * np.sin(2 * np.pi * 0.3 * t), 0.01 * np.cos(2 * np.pi * 0.2 * t)], 1)
    shaky = smooth + np.random.default_rng(0).normal(0, 0.002, smooth.shape)
    assert metrics.jitter(smooth) < 1e-4 < metrics.jitter(shaky)


def test_audio_checks():
    sr = 16000
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 200 * t)
    r = metrics.audio_checks(np.concatenate([tone, np.zeros(sr)]), sr)
    assert r["silence_ratio"] == pytest.approx(0.5, abs=0.02) and r["clipping_ratio"] == 0.0
    assert r["loudness_dbfs"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)
    assert metrics.audio_checks(np.sign(tone), sr)["clipping_ratio"] > 0.9


def test_container_checks_on_a_real_file(tmp_path):
    from models.media import probe, write_mp4

    write_mp4(tmp_path / "v.mp4", np.zeros((25, 64, 64, 3), np.uint8), 25, np.zeros(22050, np.float32), 22050)
    r = metrics.container_checks(probe(tmp_path / "v.mp4"), 25)
    assert r["container_ok"] and r["n_frames"] == 25 and abs(r["frames_vs_audio"]) <= 1


def _rows(total):
    return [{"id": "a", "tts_ms": 10.0, "avatar_ms": 20.0, "encode_ms": 5.0, "total_ms": total, "rtf": total / 1000,
             "fps": 25.0, "video": "a.mp4", "audio_duration_s": 1.0}]  # fmt: skip


def test_vowel_band_follows_vowels_not_murmurs():
    sr, fps = 22050, 25
    t = np.arange(sr) / sr
    vowel = 0.2 * np.sin(2 * np.pi * 600 * t)  # an open vowel's first formant
    murmur = 0.2 * np.sin(2 * np.pi * 150 * t)  # a nasal's murmur: as loud, below the band
    env = metrics.vowel_envelope(np.concatenate([vowel, murmur]).astype(np.float32), sr, fps, 50)
    assert env[5:20].mean() > 10 * env[30:45].mean()
    assert len(metrics.vowel_envelope(np.zeros(100, np.float32), sr, fps, 0)) == 0


def test_mouth_in_pauses_counts_pauses_not_closures():
    fps = 25
    envelope = np.full(100, 0.2)
    envelope[20:22] = 0.001  # a stop closure (80 ms): not a pause, the mouth may be open
    envelope[50:65] = 0.001  # a pause of 0.6 s
    mouth = np.full(100, 0.07)
    mouth[50:65] = 0.02
    out = metrics.mouth_in_pauses(mouth, envelope, fps)
    assert out == {"mouth_pause": 0.02, "mouth_speech": 0.07}
    assert metrics.mouth_in_pauses(mouth, np.full(100, 0.2), fps)["mouth_pause"] is None  # no pause at all


def test_lip_sync_is_summarised_and_checked_per_language():
    from models.evaluation.report import by_language, language_table

    def rows(es_corr):
        return [{"id": f"{lang}{i}", "language": lang, "lip_sync_corr": c, "lip_sync_corr_vowel": c,
                 "av_offset_ms": -40.0 * (i % 2), "mouth_pause": 0.03, "mouth_speech": 0.07}
                for lang, c in (("en", 0.6), ("es", es_corr)) for i in range(5)]  # fmt: skip

    langs = by_language(rows(0.5))
    assert langs["es"] == {"scenarios": 5, "lip_sync_corr": 0.5, "lip_sync_corr_vowel": 0.5, "abs_av_offset_ms": 0.0,
                           "mouth_pause": 0.03, "mouth_speech": 0.07}  # fmt: skip
    assert "| es | 5 | 0.5 |" in language_table(langs)
    found = regressions(rows(0.4), rows(0.5))  # Spanish fell by 0.1: flagged, English not
    assert {(f["id"], f["metric"]) for f in found} == {("language es", "median lip_sync_corr"),
                                                       ("language es", "median lip_sync_corr_vowel")}  # fmt: skip
    assert regressions(rows(0.47), rows(0.5)) == []  # within noise


def test_regression_is_flagged_when_the_baseline_was_better():
    found = regressions(_rows(130.0), _rows(100.0))
    assert {f["metric"] for f in found} == {"total_ms", "rtf"} and found[0]["change_pct"] == pytest.approx(30.0)
    assert regressions(_rows(110.0), _rows(100.0)) == []  # within 20%
    assert regressions(_rows(130.0), []) == []  # nothing to compare


def test_report_renders(tmp_path):
    from models.media import write_mp4

    (tmp_path / "videos").mkdir()
    frames = np.random.default_rng(0).integers(0, 255, (25, 64, 64, 3), dtype=np.uint8)
    write_mp4(tmp_path / "videos" / "a.mp4", frames, 25, np.zeros(22050, np.float32), 22050)
    tracks = {"mouth": _speechy(25), "envelope": _speechy(25, 1)}
    baseline = tmp_path / "base.json"
    baseline.write_text(json.dumps({"scenarios": _rows(50.0)}))
    report = write_report([(_rows(100.0)[0], tracks)], tmp_path, baseline)
    assert report["regressions"]
    for name in ("report.json", "report.md", "stage_times.png", "lip_sync.png", "contact_sheet.png"):
        assert (tmp_path / name).stat().st_size > 100, name
    assert "regression" in (tmp_path / "report.md").read_text()


def test_scenario_files(tmp_path):
    from pathlib import Path

    shipped = load_scenarios(Path(__file__).resolve().parents[2] / "configs" / "scenarios.yaml")
    ids = {s.id for s in shipped}
    assert {"en-short", "en-medium", "es-short", "es-medium", "zh-short", "zh-medium"} <= ids
    assert {s.language for s in shipped if s.id.startswith("switch-en-zh-es/")} == {"en", "zh-cn", "es"}
    per_language = {lang: sum(s.language == lang for s in shipped) for lang in ("en", "es", "zh-cn")}
    assert min(per_language.values()) >= 5, per_language  # lip sync is reported per language
    bad = tmp_path / "bad.yaml"
    for text in ("{}", "- {text: hi}", "- {id: a, text: hi, colour: red}", "- {id: a, text: x}\n- {id: a, text: y}"):
        bad.write_text(text)
        with pytest.raises(InvalidInput):
            load_scenarios(bad)
    with pytest.raises(InvalidInput, match="not found"):
        load_scenarios(tmp_path / "missing.yaml")


def test_eval_command_end_to_end(tmp_path, monkeypatch, capsys):
    from models.cli import main

    monkeypatch.setenv("AVATAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AVATAR_SIZE", "256")
    scen = tmp_path / "s.yaml"
    scen.write_text(
        "- {id: hello, text: 'Hello there, my friend. How are you today?'}\n"
        "- {id: hola, text: 'Hola amigo.', language: es}\n"
    )
    assert main(["eval", "--scenarios", str(scen), "--out", str(tmp_path / "run1")]) == 0
    report = json.loads((tmp_path / "run1" / "report.json").read_text())
    hello = report["scenarios"][0]
    assert hello["container_ok"] and hello["face_found_ratio"] > 0.9 and hello["mouth_motion"] > 0
    assert hello["lip_sync_corr"] > 0.2 and abs(hello["av_offset_ms"]) <= 120
    assert 0 < hello["ttff_ms"] < hello["total_ms"] and hello["stalls"] == 0  # the stream, measured by a client
    assert "ttff_ms" in (tmp_path / "run1" / "report.md").read_text()
    fast = json.loads((tmp_path / "run1" / "report.json").read_text())
    for row in fast["scenarios"]:
        row["total_ms"] = row["rtf"] = row["tts_ms"] = 1e-3  # a baseline no run can match
    (tmp_path / "base.json").write_text(json.dumps(fast))
    capsys.readouterr()
    code = main(
        ["eval", "--scenarios", str(scen), "--out", str(tmp_path / "run2"), "--baseline", str(tmp_path / "base.json")]
    )
    assert code == 1 and "regression" in capsys.readouterr().out
