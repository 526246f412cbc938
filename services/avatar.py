"""AvatarService: owns the registered portraits and renders batches of utterances into MP4s, and streams' chunks
into H.264 packets. The work is services/runner_render.py's, which the Triton models (services_triton/) serve too;
this adds BentoML's endpoints and adaptive batching."""

from __future__ import annotations

import bentoml

from models.settings import load_settings
from services.runner_render import RenderRunner
from services.schemas import ChunkRequest, ChunkResult, RenderRequest, RenderResult
from services.traffic import install as install_timeout

SERVING = load_settings().serving
install_timeout()  # BentoML's timeout and metrics, without memory kept per request or path (services/traffic.py)
BATCH = {"max_batch_size": SERVING.render_max_batch_size, "max_latency_ms": SERVING.render_max_latency_ms}


@bentoml.service(name="avatar", traffic={"timeout": SERVING.timeout_s}, workers=1)
class AvatarService(RenderRunner):
    # (API methods called through `self` go back through BentoML's dispatcher: the work stays in RenderRunner's)
    @bentoml.api(batchable=True, **BATCH)
    def render(self, requests: list[RenderRequest]) -> list[RenderResult]:
        """Adaptive batch of utterances -> one MP4 each (base64)."""
        return super().render(requests)

    @bentoml.api
    def render_one(self, request: RenderRequest) -> RenderResult:
        """The same without batching (used when serving.batching is off)."""
        return RenderRunner.render(self, [request])[0]

    @bentoml.api(batchable=True, **BATCH)
    def render_chunk(self, requests: list[ChunkRequest]) -> list[ChunkResult]:
        """Streaming: chunks of frames of several streams rendered together, each encoded to H.264 packets."""
        return super().render_chunk(requests)

    @bentoml.api
    def render_chunk_one(self, request: ChunkRequest) -> ChunkResult:
        """The same without batching (used when serving.batching is off)."""
        return RenderRunner.render_chunk(self, [request])[0]

    @bentoml.api
    def add_avatar(self, image: str, name: str | None = None) -> dict:
        """Register a portrait (base64 image bytes): decoded, checked for a face, landmarks cached."""
        return super().add_avatar(image, name)

    @bentoml.api
    def list_avatars(self) -> list[dict]:
        return super().list_avatars()

    @bentoml.api
    def delete_avatar(self, avatar_id: str) -> dict:
        return super().delete_avatar(avatar_id)

    @bentoml.api
    def info(self) -> dict:
        return super().info()
