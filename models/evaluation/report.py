"""Reports: report.json, a Markdown table, PNG plots, a contact sheet, and regressions against a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

THRESHOLDS = {"tts_ms": 0.2, "avatar_ms": 0.2, "encode_ms": 0.2, "total_ms": 0.2, "rtf": 0.2, "ttff_ms": 0.3}
# per language: a median correlation lower than the baseline's by more than this is a regression (run-to-run
# noise of one language's median is ~0.02: Piper's timings vary a little from run to run)
LANGUAGE_DROP = {"lip_sync_corr": 0.05, "lip_sync_corr_vowel": 0.05}
COLUMNS = ["id", "language", "audio_duration_s", "total_ms", "rtf", "ttff_ms", "stalls", "lip_sync_corr",
           "lip_sync_corr_vowel", "av_offset_ms", "mouth_pause", "mouth_speech", "blinks_per_min", "head_jitter",
           "container_ok", "silence_ratio", "loudness_dbfs"]  # fmt: skip


def by_language(rows: list[dict]) -> dict[str, dict]:
    """Lip sync per language: medians over its scenarios (correlations, |offset|) and the mean mouth opening in
    pauses and in speech (fractions of face height)."""
    out = {}
    for lang in dict.fromkeys(r.get("language", "") for r in rows):
        mine = [r for r in rows if r.get("language", "") == lang]
        out[lang] = {
            "scenarios": len(mine),
            "lip_sync_corr": _summary(mine, "lip_sync_corr", np.median, 3),
            "lip_sync_corr_vowel": _summary(mine, "lip_sync_corr_vowel", np.median, 3),
            "abs_av_offset_ms": _summary(
                [{"o": abs(r["av_offset_ms"])} for r in mine if r.get("av_offset_ms") is not None], "o", np.median, 1
            ),
            "mouth_pause": _summary(mine, "mouth_pause", np.mean, 4),
            "mouth_speech": _summary(mine, "mouth_speech", np.mean, 4),
        }
    return out


def _summary(rows: list[dict], key: str, how, digits: int) -> float | None:
    vals = [float(r[key]) for r in rows if r.get(key) is not None]
    return round(float(how(vals)), digits) if vals else None


def language_regressions(rows: list[dict], baseline: list[dict]) -> list[dict]:
    """Languages whose median lip-sync correlation fell below the baseline's by more than LANGUAGE_DROP."""
    now, before = by_language(rows), by_language(baseline) if baseline else {}
    found = []
    for lang, stats in now.items():
        for key, drop in LANGUAGE_DROP.items():
            old = before.get(lang, {}).get(key)
            if old is not None and stats[key] is not None and stats[key] < old - drop:
                found.append({"id": f"language {lang}", "metric": f"median {key}", "baseline": old,
                              "current": stats[key], "change_pct": round((stats[key] / old - 1) * 100, 1),
                              "threshold_pct": round(-drop / old * 100, 1)})  # fmt: skip
    return found


def language_table(langs: dict[str, dict]) -> str:
    head = ("language", "scenarios", "lip-sync correlation (median)", "vowel-band correlation (median)",
            "abs(A/V offset) (median)", "mouth open in pauses", "mouth open in speech")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for lang, s in langs.items():
        offset = "" if s["abs_av_offset_ms"] is None else f"{s['abs_av_offset_ms']:.0f} ms"
        lines.append(f"| {lang} | {s['scenarios']} | {s['lip_sync_corr']} | {s['lip_sync_corr_vowel']} | {offset} | "
                     f"{s['mouth_pause']} | {s['mouth_speech']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def regressions(rows: list[dict], baseline: list[dict]) -> list[dict]:
    """Times that got worse than the baseline by more than the threshold (20%; 30% for first fragment), and
    languages whose lip sync got worse (`language_regressions`)."""
    base = {r["id"]: r for r in baseline}
    found = language_regressions(rows, baseline)
    for row in rows:
        old = base.get(row["id"])
        for key, limit in THRESHOLDS.items():
            if old and row.get(key) is not None and old.get(key):
                change = row[key] / old[key] - 1
                if change > limit:
                    found.append({"id": row["id"], "metric": key, "baseline": old[key], "current": row[key],
                                  "change_pct": round(change * 100, 1), "threshold_pct": limit * 100})  # fmt: skip
    return found


def markdown(rows: list[dict], found: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    lines += ["", "Lip sync per language:", "", language_table(by_language(rows))]
    if found:
        lines += ["", f"**{len(found)} regression(s)** against the baseline:", ""]
        lines += [f"- {f['id']} {f['metric']}: {f['baseline']} -> {f['current']} (+{f['change_pct']}%)" for f in found]
    return "\n".join(lines) + "\n"


def _plots(rows: list[dict], tracks: dict, out: Path, fps_of: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.9), 4))
    bottom = np.zeros(len(rows))
    for key in ("tts_ms", "avatar_ms", "encode_ms"):
        vals = np.array([r.get(key, 0) for r in rows])
        ax.bar([r["id"] for r in rows], vals, bottom=bottom, label=key)
        bottom += vals
    ax.set_ylabel("busy ms per stage")
    ax.set_title("Stage times per scenario")
    ax.tick_params(axis="x", rotation=60)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "stage_times.png", dpi=100)
    plt.close(fig)
    sid = max(rows, key=lambda r: r.get("audio_duration_s", 0))["id"]
    t = tracks[sid]
    n = min(len(t["mouth"]), int(10 * fps_of[sid]))  # the first 10 s: enough to see the words
    t = {k: np.asarray(v)[:n] for k, v in t.items() if k in ("mouth", "envelope")}
    x = np.arange(n) / fps_of[sid]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(x, t["mouth"] / (t["mouth"].max() or 1), label="mouth opening (face landmarks, normalised)")
    ax.plot(x, t["envelope"] / (t["envelope"].max() or 1), label="audio envelope (normalised)", alpha=0.7)
    ax.set_xlabel("seconds")
    ax.set_title(f"Lip sync: {sid}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "lip_sync.png", dpi=100)
    plt.close(fig)


def contact_sheet(videos: list[Path], out: Path, per_video: int = 6, tile: int = 160) -> None:
    import cv2

    from models.media import decode_frames

    rows = []
    for video in videos:
        frames = decode_frames(video)
        idx = np.linspace(0, len(frames) - 1, per_video).astype(int)
        row = [cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA) for i in idx]
        cv2.putText(row[0], video.stem[:18], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate(row, 1))
    cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


def write_report(results: list[tuple[dict, dict]], out: Path, baseline: Path | None = None) -> dict:
    """Everything into `out`; returns the report (its `regressions` list is empty when all is well)."""
    rows = [r for r, _ in results]
    tracks = {r["id"]: t for r, t in results}
    base_rows = json.loads(baseline.read_text())["scenarios"] if baseline else []
    found = regressions(rows, base_rows)
    report = {"scenarios": rows, "languages": by_language(rows), "regressions": found,
              "baseline": str(baseline) if baseline else None}  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(rows, found))
    _plots(rows, tracks, out, {r["id"]: r["fps"] for r in rows})
    contact_sheet([out / "videos" / r["video"] for r in rows[:8]], out / "contact_sheet.png")
    return report
