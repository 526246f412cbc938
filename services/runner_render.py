"""The render unit's work, shared by its BentoML service (services/avatar.py) and its Triton models
(services_triton/): the registered portraits; batches of utterances rendered into MP4s; stream chunks rendered
together (one grid_sample per chunk on a GPU; a thread pool with OpenCV on a CPU), each encoded on its own thread.
No BentoML here."""

from __future__ import annotations

import base64
import functools
import math
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from models.settings import load_settings
from services.common import capture, workers
from services.schemas import ChunkRequest, ChunkResult, Failure, RenderRequest, RenderResult, unpack_audio


class RenderRunner:
    """The render unit's work behind either adapter: registered portraits; utterances -> MP4s; stream chunks ->
    H.264 packets."""

    def __init__(self) -> None:
        from models.avatar.store import AvatarStore
        from models.pipeline import Pipeline, default_image

        self.settings = load_settings()
        self.pipeline = Pipeline(self.settings, tts=_NoTTS())  # rendering half of the pipeline only
        root = self.settings.storage.root
        self.store = AvatarStore(root / "avatars", default_image(self.settings))
        self.scratch = Path(tempfile.mkdtemp(prefix="render-", dir=_ensure(root / "scratch")))
        self.pipeline.avatar(self.store.default_image)  # landmarks of the default portrait, once at start-up
        self.encoders = ThreadPoolExecutor(workers(), thread_name_prefix="x264")  # stream chunks, one thread each

    def render(self, requests: list[RenderRequest]) -> list[RenderResult]:
        """Utterances -> one MP4 each (base64); those at the same size and fps share renders."""
        results: list[RenderResult | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(requests):  # requests at the same size/fps share renders
            groups.setdefault((req.size, req.fps), []).append(i)
        for (size, fps), idx in groups.items():
            self._render_group([requests[i] for i in idx], size, fps, idx, results)
        return results  # type: ignore[return-value]

    def render_chunk(self, requests: list[ChunkRequest]) -> list[ChunkResult]:
        """Streaming: chunks of frames of several streams rendered together, each encoded to H.264 packets."""
        results: list[ChunkResult | None] = [None] * len(requests)
        groups: dict[tuple, list[tuple[int, object]]] = {}
        for i, req in enumerate(requests):  # bad items fail alone; the others share one render per size/fps
            item = capture(lambda req=req: self._chunk_job(req), lambda f: f)
            if isinstance(item, Failure):
                results[i] = ChunkResult(error=item)
            else:
                groups.setdefault(item[0], []).append((i, item))
        for renderer, items in groups.items():
            slots = [i for i, _ in items]
            jobs = [(requests[i], avatar) for i, (_, avatar) in items]
            failed = capture(functools.partial(self._render_chunks, renderer, jobs, slots, results), lambda f: f)
            if isinstance(failed, Failure):  # the shared render failed: its items fail, the other groups do not
                for i in slots:
                    results[i] = ChunkResult(error=failed)
        return results  # type: ignore[return-value]

    def _render_chunks(self, renderer, jobs: list, slots: list[int], results: list) -> None:
        from models.avatar.controls import Controls

        t = time.perf_counter()
        frames = renderer.render_batch([(avatar, Controls.from_poses(req.poses), None) for req, avatar in jobs])
        render_ms = (time.perf_counter() - t) * 1000 / len(jobs)
        work = [(renderer, f, req.start) for f, (req, _) in zip(frames, jobs, strict=True)]
        for i, (chunk, ms) in zip(slots, self.encoders.map(lambda w: self._encode(*w), work), strict=True):
            results[i] = ChunkResult(chunk=chunk.pack(), render_ms=render_ms, encode_ms=ms)

    def _chunk_job(self, req: ChunkRequest):
        from models.errors import InvalidInput

        renderer = self.pipeline.renderer_for(req.size, req.fps)
        from models.avatar.controls import POSE_COLUMNS, POSE_COLUMNS_OLD

        widths = {len(row) for row in req.poses}  # 7: from a client made before the tongue column
        if len(widths) > 1 or not widths <= {POSE_COLUMNS_OLD, len(POSE_COLUMNS)}:
            raise InvalidInput("each pose is 8 numbers (or 7 without the tongue), the same in every row",
                               allowed=", ".join(POSE_COLUMNS))  # fmt: skip
        if not all(map(math.isfinite, (v for r in req.poses for v in r))):
            raise InvalidInput("each pose is finite numbers", allowed=", ".join(POSE_COLUMNS))
        return renderer, self.pipeline.avatar(self.store.get(req.avatar), renderer)

    def _encode(self, renderer, frames, start: int):
        from models.media.fragments import encode_chunk

        t = time.perf_counter()
        v = self.settings.video
        chunk = encode_chunk(frames, start, renderer.fps, v.preset, v.crf, threads=1, params=v.x264_params)
        return chunk, (time.perf_counter() - t) * 1000

    def add_avatar(self, image: str, name: str | None = None) -> dict:
        """Register a portrait (base64 image bytes): decoded, checked for a face, landmarks cached."""

        def run() -> dict:
            from models.avatar.images import load_image

            rgb = load_image(base64.b64decode(image))
            self.pipeline.avatar(rgb)  # raises NoFaceFound before anything is stored
            return {"avatar": self.store.add(rgb, name)}

        return capture(run, lambda f: {"error": f.model_dump()})

    def list_avatars(self) -> list[dict]:
        return self.store.list()

    def delete_avatar(self, avatar_id: str) -> dict:
        return capture(
            lambda: self.store.delete(avatar_id) or {"deleted": avatar_id}, lambda f: {"error": f.model_dump()}
        )

    def info(self) -> dict:
        r = self.pipeline.renderer
        return {"renderer": r.name, "backend": r.backend, "device": r.device, "size": r.size, "fps": r.fps}

    def _render_group(self, reqs, size, fps, idx, results) -> None:
        from models.render_mp4 import render_videos

        jobs, slots = [], []
        for i, req in zip(idx, reqs, strict=True):  # a bad size/fps/avatar/seed fails its own item only
            job = capture(lambda req=req: self._job(self.pipeline.renderer_for(size, fps), req), lambda f: f)
            if isinstance(job, Failure):
                results[i] = RenderResult(error=job)
            else:
                jobs.append(job)
                slots.append(i)
        if not jobs:
            return
        renderer = self.pipeline.renderer_for(size, fps)
        times = capture(lambda: render_videos(renderer, jobs, self.settings.video), lambda f: f)
        if isinstance(times, Failure):  # the shared render itself failed: its items fail, the other groups do not
            for i in slots:
                results[i] = RenderResult(error=times)
            return
        for i, job, t in zip(slots, jobs, times, strict=True):
            data = job.out_path.read_bytes()
            job.out_path.unlink()
            ms = (t.render_s + job.plan_s) * 1000
            results[i] = RenderResult(
                video=base64.b64encode(data).decode(), n_frames=len(job.plan), avatar_ms=ms, encode_ms=t.encode_s * 1000
            )

    def _job(self, renderer, req: RenderRequest):
        from models.avatar.base import SpeechTrack
        from models.render_mp4 import VideoJob

        t = time.perf_counter()
        avatar = self.pipeline.avatar(self.store.get(req.avatar), renderer)
        audio = unpack_audio(req.audio)
        plan = renderer.plan(avatar, SpeechTrack(audio, req.sample_rate, req.phonemes), seed=req.seed)
        out = self.scratch / f"{time.time_ns()}.mp4"
        job = VideoJob(avatar, plan, audio, req.sample_rate, out)
        job.plan_s = time.perf_counter() - t
        return job


class _NoTTS:
    """The avatar service never speaks; the pipeline only needs something in the TTS slot."""

    name = "none"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
