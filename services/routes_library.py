"""The library of voices and avatars (uploads are forwarded to the service that owns them: TTS for voices, the
avatar service for portraits) and the original prototype's asset listings."""

from __future__ import annotations

import base64

from fastapi import APIRouter, File, Form, UploadFile
from fastapi import Path as PathParam

from services.app import BACKEND_ERRORS, UPLOAD
from services.backends import Service, call, check, read_upload
from services.schemas import ID_PATTERN, error_responses

router = APIRouter()


@router.get("/api/v1/voices", tags=["voices"], responses=BACKEND_ERRORS)
async def voices(svc: Service) -> dict:
    return {"voices": await call(svc.tts.to_async.voices)}


@router.post("/api/v1/voices", tags=["voices"], status_code=201, responses=error_responses(400, 413, 502, 503))
async def add_voice(
    svc: Service, clip: UploadFile = File(**UPLOAD), name: str | None = Form(None, max_length=64)
) -> dict:
    """Clone a voice from a 3-30 s reference clip (wav/mp3/flac/ogg); needs a cloning engine (xtts)."""
    return (await _checked(svc.tts.to_async.add_voice, await _base64(clip, "clip"), name))["voice"]


@router.delete("/api/v1/voices/{voice_id}", tags=["voices"], responses=error_responses(400, 404, 409, 502, 503))
async def delete_voice(svc: Service, voice_id: str = PathParam(pattern=ID_PATTERN)) -> dict:
    return await _checked(svc.tts.to_async.delete_voice, voice_id)


@router.get("/api/v1/avatars", tags=["avatars"], responses=BACKEND_ERRORS)
async def avatars(svc: Service) -> dict:
    return {"avatars": await call(svc.renderer.to_async.list_avatars)}


@router.post("/api/v1/avatars", tags=["avatars"], status_code=201, responses=error_responses(400, 413, 422, 502, 503))
async def add_avatar(
    svc: Service, photo: UploadFile = File(**UPLOAD), name: str | None = Form(None, max_length=64)
) -> dict:
    """Upload a portrait photo (PNG/JPEG/WebP); rejected with 422 if no face is found."""
    return (await _checked(svc.renderer.to_async.add_avatar, await _base64(photo, "photo"), name))["avatar"]


@router.delete("/api/v1/avatars/{avatar_id}", tags=["avatars"], responses=error_responses(400, 404, 409, 502, 503))
async def delete_avatar(svc: Service, avatar_id: str = PathParam(pattern=ID_PATTERN)) -> dict:
    return await _checked(svc.renderer.to_async.delete_avatar, avatar_id)


@router.get("/api/v1/assets/images", tags=["compatibility"], responses=BACKEND_ERRORS)
async def assets_images(svc: Service) -> dict:
    """The original prototype's listing of portraits (same data as /api/v1/avatars)."""
    return {"images": [a["id"] for a in await call(svc.renderer.to_async.list_avatars)]}


@router.get("/api/v1/assets/voice-samples", tags=["compatibility"], responses=BACKEND_ERRORS)
async def assets_voices(svc: Service) -> dict:
    return {"voice_samples": [v["id"] for v in await call(svc.tts.to_async.voices)]}


async def _base64(upload: UploadFile, field: str) -> str:
    return base64.b64encode(await read_upload(upload, field)).decode()


async def _checked(fn, *args) -> dict:
    """A dependency's answer, its per-item failure raised as the same HTTP error."""
    result = await call(fn, *args)
    check(result)
    return result
