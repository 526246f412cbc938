"""Measure a produced MP4: decode it, track the face in every frame, and compute the metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.evaluation import metrics
from models.media import decode_audio, decode_frames, probe, rms_envelope

EYE_R = (159, 145, 33, 133)  # upper lid, lower lid, corners
EYE_L = (386, 374, 263, 362)


def face_tracks(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame: mouth opening and eye openness (fractions of face height) and the nose tip (for head motion)."""
    import mediapipe as mp

    from models.avatar.landmarks import _LOCK

    n = len(frames)
    out = {"mouth": np.zeros(n), "eyes": np.zeros(n), "nose": np.zeros((n, 2)), "found": np.zeros(n, bool)}
    with _LOCK, mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1) as mesh:
        for i, frame in enumerate(frames):
            result = mesh.process(np.ascontiguousarray(frame))
            if not result.multi_face_landmarks:
                continue
            p = np.array([(q.x, q.y) for q in result.multi_face_landmarks[0].landmark[:468]])
            face = np.linalg.norm(p[10] - p[152])
            out["mouth"][i] = np.linalg.norm(p[13] - p[14]) / face
            out["eyes"][i] = np.mean(
                [np.linalg.norm(p[a] - p[b]) / np.linalg.norm(p[c] - p[d]) for a, b, c, d in (EYE_R, EYE_L)]
            )
            out["nose"][i] = p[1] / face
            out["found"][i] = True
    return out


def measure_video(path: str | Path) -> tuple[dict, dict]:
    """(metrics, tracks) of one MP4. Tracks hold the per-frame series used for plots."""
    info = probe(path)
    frames = decode_frames(path)
    audio, sr, _ = decode_audio(path)
    audio = audio[: int(round(info["audio_duration_s"] * sr))]  # what players play (the AAC padding is cut)
    fps = info["fps"]
    tracks = face_tracks(frames)
    envelope = rms_envelope(audio, sr, fps, len(frames))
    tracks["envelope"] = envelope
    found = tracks["found"]
    result = metrics.container_checks(info) | metrics.audio_checks(audio, sr)
    result |= metrics.av_offset(tracks["mouth"][found], envelope[found], fps)
    vowels = metrics.vowel_envelope(audio, sr, fps, len(frames))
    result["lip_sync_corr_vowel"] = metrics.av_offset(tracks["mouth"][found], vowels[found], fps)["lip_sync_corr"]
    result |= metrics.mouth_in_pauses(tracks["mouth"][found], envelope[found], fps)
    result["face_found_ratio"] = round(float(found.mean()), 4)
    result["blinks_per_min"] = metrics.blinks_per_minute(tracks["eyes"][found], fps)
    result["head_jitter"] = round(metrics.jitter(tracks["nose"][found]) * 1000, 4)  # per mille of face height
    result["mouth_motion"] = round(float(np.std(tracks["mouth"][found])) if found.any() else 0.0, 5)
    return result, tracks
