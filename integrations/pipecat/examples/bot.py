"""A voice agent with a face, built only from a realtime-avatar server and an OpenAI-compatible LLM:

    browser mic -> SmallWebRTC -> Whisper (the server's /v1/audio/transcriptions) -> your LLM
    -> speech (the server's /v1/audio/speech) -> the face (the server's live audio socket) -> SmallWebRTC -> browser

Run (from integrations/pipecat, with a server at AVATAR_URL and an LLM at LLM_BASE_URL):

    .venv/bin/python examples/bot.py [--port 7860]      # then open http://localhost:7860 and press Connect

Settings (environment): AVATAR_URL (default http://localhost:3000), AVATAR_API_KEY, AVATAR_SIZE (512), AVATAR_FPS
(25), LLM_BASE_URL (default http://localhost:11434/v1, Ollama), LLM_MODEL (llama3.2:3b), LLM_API_KEY, BOT_PROMPT.

The page (examples/page.html, ~80 lines, no library) calls the bot peer to peer: its microphone up, the avatar's
video and voice down, through Pipecat's SmallWebRTCTransport (aiortc, no media server). Pipecat's prebuilt
clients would do (`--prebuilt` serves pipecat-ai-small-webrtc-prebuilt at /client/), but both it (2.5.0) and its
successor pipecat-ai-prebuilt (1.3.0) load Daily's call-machine library from c.daily.co before connecting, even
for SmallWebRTC, and fail where there is no internet (checked: "Failed to load call object bundle").
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request  # at module level: the routes' annotations are resolved here
from fastapi.responses import HTMLResponse
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregatorParams
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner
from realtime_avatar_pipecat import RealtimeAvatarVideoService

AVATAR = os.environ.get("AVATAR_URL", "http://localhost:3000").rstrip("/")
KEY = os.environ.get("AVATAR_API_KEY") or None
SIZE, FPS = int(os.environ.get("AVATAR_SIZE", "512")), float(os.environ.get("AVATAR_FPS", "25"))
PROMPT = os.environ.get(
    "BOT_PROMPT", "You are a friendly assistant with a face. Answer in one or two short spoken sentences."
)
RATE = 24000  # what OpenAI's speech API sends as pcm, and so the server's /v1/audio/speech


def services():
    """The agent's parts: every one of them but the LLM is the realtime-avatar server."""
    stt = OpenAISTTService(base_url=f"{AVATAR}/v1", api_key=KEY or "none",
                           settings=OpenAISTTService.Settings(model="whisper-1"))  # fmt: skip
    llm = OpenAILLMService(
        base_url=os.environ.get("LLM_BASE_URL", "http://localhost:11434/v1"),
        api_key=os.environ.get("LLM_API_KEY", "none"),
        settings=OpenAILLMService.Settings(model=os.environ.get("LLM_MODEL", "llama3.2:3b")),
    )
    tts = OpenAITTSService(base_url=f"{AVATAR}/v1", api_key=KEY or "none", sample_rate=RATE,
                           settings=OpenAITTSService.Settings(voice="alloy", model="tts-1"))  # fmt: skip
    face = RealtimeAvatarVideoService(base_url=AVATAR, api_key=KEY, size=SIZE, fps=FPS, sample_rate=RATE)
    return stt, llm, tts, face


async def bot(connection) -> None:
    """One visitor's agent, on their WebRTC connection, until they hang up."""
    params = TransportParams(audio_in_enabled=True, audio_out_enabled=True, video_out_enabled=True,
                             video_out_is_live=True, video_out_width=SIZE, video_out_height=SIZE,
                             video_out_framerate=int(FPS))  # fmt: skip
    transport = SmallWebRTCTransport(webrtc_connection=connection, params=params)
    stt, llm, tts, face = services()
    context = LLMContext([{"role": "system", "content": PROMPT}])
    user, assistant = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline([transport.input(), stt, user, llm, tts, face, transport.output(), assistant])
    worker = PipelineWorker(pipeline, params=PipelineParams(audio_out_sample_rate=RATE))

    @transport.event_handler("on_client_connected")
    async def greet(transport, client):
        context.add_message({"role": "user", "content": "Say hello and introduce yourself in one sentence."})
        await worker.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def bye(transport, client):
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def app(prebuilt: bool = False):
    """The page and the routes it calls."""
    import uuid
    from contextlib import asynccontextmanager

    from pipecat.transports.smallwebrtc.request_handler import SmallWebRTCRequestHandler

    handler = SmallWebRTCRequestHandler()

    @asynccontextmanager
    async def lifespan(_):
        yield
        await handler.close()

    web = FastAPI(lifespan=lifespan)
    page = (Path(__file__).parent / "page.html").read_text()

    @web.get("/", include_in_schema=False)
    async def root():
        return HTMLResponse(page)

    @web.post("/start")  # the prebuilt client's first call: a session, no ICE servers (peer to peer)
    async def start(request: Request):
        return {"sessionId": uuid.uuid4().hex}

    _signalling(web, handler)
    if prebuilt:
        from pipecat_ai_small_webrtc_prebuilt.frontend import SmallWebRTCPrebuiltUI

        web.mount("/client", SmallWebRTCPrebuiltUI)
    return web


def _signalling(web: FastAPI, handler) -> None:
    """WebRTC's offer (a bot for each connection) and its ICE candidates, at our page's paths and the prebuilt
    client's."""
    import asyncio

    from pipecat.transports.smallwebrtc.request_handler import (
        IceCandidate,
        SmallWebRTCPatchRequest,
        SmallWebRTCRequest,
    )

    bots: set[asyncio.Task] = set()

    @web.post("/api/offer")
    @web.post("/sessions/{session}/api/offer")
    async def offer(request: Request, session: str | None = None):
        async def connected(connection):
            task = asyncio.create_task(bot(connection))
            bots.add(task)
            task.add_done_callback(bots.discard)

        return await handler.handle_web_request(SmallWebRTCRequest.from_dict(await request.json()), connected)

    @web.patch("/api/offer")
    @web.patch("/sessions/{session}/api/offer")
    async def candidates(request: Request, session: str | None = None):
        body = await request.json()
        found = [IceCandidate(**c) for c in body.get("candidates", [])]
        await handler.handle_patch_request(SmallWebRTCPatchRequest(pc_id=body["pc_id"], candidates=found))
        return {"status": "success"}


if __name__ == "__main__":
    import argparse

    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--prebuilt", action="store_true", help="also serve Pipecat's prebuilt client at /client/")
    args = ap.parse_args()
    uvicorn.run(app(args.prebuilt), host=args.host, port=args.port)
