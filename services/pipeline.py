"""AvatarPipeline: the public HTTP API as a BentoML service. It calls TTSService and AvatarService (in-process
dependencies started by `bentoml serve`, or remote ones when AVATAR_TTS_URL / AVATAR_RENDER_URL are set) and stores
videos.

A request's path: services/app.py (the FastAPI app, its error mapping and middleware) -> a route group
(routes_video, routes_speech, routes_library, routes_conversation, routes_health) -> this service's dependencies
(`_speak`, `_render`, `_render_chunk`, `_transcribe`; services/backends.py maps their failures) -> for streams,
services/streaming.py -> models/ (stream, pacing, media). Routes reach this service with `svc: Service`
(services/backends.py). The app is mounted behind BentoML's own routes (/healthz, /readyz, /livez, /metrics,
/docs.json, /), so its routes appear in the same OpenAPI document and Swagger page.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import bentoml

from models.pacing import DeadlineGate, Pacer
from models.settings import load_settings
from services import (
    routes_animate,
    routes_animate_live,
    routes_conversation,
    routes_health,
    routes_library,
    routes_live,
    routes_speech,
    routes_transcription,
    routes_video,
)
from services.app import add_middleware, app
from services.avatar import AvatarService
from services.backends import BREAKERS, PROBE_S, call, check, dispatch, probe
from services.breaker import Breaker
from services.conversation import Conversations
from services.schemas import AlignRequest, ChunkRequest, RenderRequest, SynthesisRequest, SynthesisResult, pack_audio
from services.traffic import install as install_timeout
from services.triton_client import TritonDependency, is_triton
from services.tts import TTSService

__all__ = ["AvatarPipeline", "Pacer"]
# streams through every stage before /readyz says ready: a short one, then one of an ordinary sentence's length
WARM_TEXTS = ("Hello there.", "Welcome! This short sentence warms every stage of the stream.")
_LOGGER = logging.getLogger(__name__)
SERVING = load_settings().serving
install_timeout()  # BentoML's timeout and metrics, without memory kept per request or path (services/traffic.py)
for group in (routes_video, routes_animate, routes_animate_live, routes_health, routes_speech, routes_transcription,
              routes_library, routes_conversation, routes_live):  # fmt: skip
    app.include_router(group.router)


def dependency(service, url: str | None, unit: str):
    """A unit started with this one (no URL), served elsewhere by BentoML (http://...) or by Triton (triton://...,
    services/triton_client.py)."""
    if is_triton(url):
        return TritonDependency(url, unit)
    return bentoml.depends(service, url=url) if url else bentoml.depends(service)


@bentoml.service(name="avatar-pipeline", traffic={"timeout": SERVING.timeout_s}, workers=1)
@bentoml.asgi_app(app, path="/")
class AvatarPipeline:
    tts = dependency(TTSService, SERVING.tts_url, "tts")
    renderer = dependency(AvatarService, SERVING.render_url, "avatar")

    def __init__(self) -> None:
        from models.storage import OutputStore

        self.settings = load_settings()
        st = self.settings.storage
        self.store = OutputStore(st.root / "outputs", st.max_age_hours * 3600, st.max_total_mb * 1e6)
        self.started = time.time()
        self._warmed: asyncio.Future | None = None
        self.pacers: set[Pacer] = set()  # the live streams of this worker
        # Their calls to both services, earliest deadline first. A service that runs one call at a time (batching
        # off, the CPU profile) needs one queued behind the running one; with adaptive batching a service takes a
        # batch per call, so a batch's worth may wait for each (a GPU renders many streams' chunks in one call).
        batched = SERVING.tts_max_batch_size + SERVING.render_max_batch_size
        self.gate = DeadlineGate(batched if SERVING.batching else 2)
        self.conversations = Conversations(self.settings)
        for name, dependency in (("tts", self.tts), ("avatar", self.renderer)):
            info = lambda d=dependency: d.to_async.info()  # noqa: E731  (the client's endpoints appear on first use)
            BREAKERS.add(Breaker(name, info, PROBE_S), lambda d=dependency: getattr(d.to_async, "__dict__", {}))

    async def _speak(self, req: SynthesisRequest) -> SynthesisResult:
        fn = self.tts.to_async.synthesize if SERVING.batching else self.tts.to_async.synthesize_one
        result = await call(fn, [req] if SERVING.batching else req)
        result = result[0] if SERVING.batching else result
        result = result if not isinstance(result, dict) else SynthesisResult.model_validate(result)
        check(result)
        return result

    async def _render(self, req: RenderRequest):
        return await dispatch(self.renderer.to_async.render, self.renderer.to_async.render_one, req)

    async def _render_chunk(self, req: ChunkRequest):
        return await dispatch(self.renderer.to_async.render_chunk, self.renderer.to_async.render_chunk_one, req)

    async def _transcribe(self, data: bytes, language: str | None, candidates: list[str] | None = None) -> dict:
        result = await call(self.tts.to_async.transcribe, base64.b64encode(data).decode(), language, candidates)
        check(result)
        return result["transcript"]

    async def _align(self, req: AlignRequest) -> dict:
        """Timed phonemes of speech from elsewhere (TTSService.align)."""
        result = await call(self.tts.to_async.align, req)
        check(result)
        return result

    async def _vad(self, audio, state: dict | None) -> dict:
        result = await call(self.tts.to_async.vad, pack_audio(audio), state)
        check(result)
        return result

    async def probe(self) -> dict[str, dict | str]:
        """Each dependency's info, or why it is down, within PROBE_S."""
        return await probe({"tts": self.tts, "avatar": self.renderer})

    async def __is_ready__(self) -> bool:
        """Ready when both dependencies answer within PROBE_S (BentoML's own probe would wait for a restarting
        worker for seconds, then report it ready), and once one stream has gone through every stage."""
        if any(isinstance(info, str) for info in (await self.probe()).values()):
            return False
        if self._warmed is None:
            self._warmed = asyncio.ensure_future(self._warm_up())
        return self._warmed.done()

    async def _warm_up(self) -> None:
        """The first stream after a start paid ~300 ms that later ones did not (the first calls of the speech
        session, the chunk renderer and encoder, the muxer): one short stream, made and dropped, first."""
        from services.schemas import GenerateRequest
        from services.streaming import stream

        try:
            for text in WARM_TEXTS:
                async for _ in stream(self, GenerateRequest(text=text)):
                    pass
        except Exception:  # noqa: BLE001  (never blocks readiness: the first real stream is only slower)
            _LOGGER.warning("the warm-up stream failed", exc_info=True)


add_middleware(AvatarPipeline)
