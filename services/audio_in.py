"""Audio in, across services: a client's speech made into the speech pieces the video paths take, so an upload
or a socket's PCM reuses the renderer and the stream unchanged. Uploads are decoded in bounds here
(models/media/decode.py), timed phonemes come from TTSService.align (models/align), and pieces are cut at pauses
(models/animate.py)."""

from __future__ import annotations

import asyncio

import numpy as np
from fastapi import UploadFile

from models.animate import FIRST_PIECE_S, cut_points, split_phonemes
from models.media.audio import resample
from models.pacing import Pacer
from models.tts.base import Phoneme, SpeechChunk
from services.backends import read_upload
from services.schemas import AlignRequest, pack_audio
from services.streaming import gated

ALIGN_RATE = 16000  # what every aligner listens at: pieces travel to the TTS service at this rate


async def decode_upload(svc, upload: UploadFile) -> tuple[np.ndarray, int]:
    """The upload's samples and rate, bounded in bytes (serving.max_upload_mb) and seconds (audio_in)."""
    from models.media.decode import decode_audio_file

    data = await read_upload(upload, "audio")
    return await asyncio.to_thread(decode_audio_file, data, svc.settings.audio_in.max_audio_s)


async def align(svc, audio: np.ndarray, sample_rate: int, text: str | None, language: str,
                live: bool = False) -> dict:  # fmt: skip
    """{phonemes, source, method, align_ms, text} of a piece of speech."""
    pcm = pack_audio(resample(np.asarray(audio, np.float32), sample_rate, ALIGN_RATE))
    req = AlignRequest(audio=pcm, sample_rate=ALIGN_RATE, text=text, language=language, live=live)
    return await svc._align(req)


def chunk_of(audio: np.ndarray, sample_rate: int, found: dict, text: str = "") -> SpeechChunk:
    phonemes = [Phoneme(*p) for p in found["phonemes"]]
    return SpeechChunk(audio, sample_rate, found.get("text") or text, phonemes, found["source"])


async def aligned_pieces(svc, audio: np.ndarray, sample_rate: int, text: str | None, language: str,
                         out: asyncio.Queue, pacer: Pacer | None = None) -> None:  # fmt: skip
    """A stream's producer (services/streaming.py `speech_from`): the clip's pieces with their timings, in
    order, then None (or the error). With the text, the clip is aligned once and its phonemes shared out; without
    it, each piece is recognised as the one before renders."""
    cuts = cut_points(audio, sample_rate, first_s=FIRST_PIECE_S)
    bounds = list(zip([0, *cuts], [*cuts, len(audio)], strict=True))
    try:
        if text:
            found = await align(svc, audio, sample_rate, text, language)
            shares = split_phonemes([Phoneme(*p) for p in found["phonemes"]], [c / sample_rate for c in cuts],
                                    len(audio) / sample_rate)  # fmt: skip
            for (a, b), phonemes in zip(bounds, shares, strict=True):
                await out.put(SpeechChunk(audio[a:b], sample_rate, text, phonemes, found["source"]))
        else:
            said = 0.0
            for a, b in bounds:
                deadline = pacer.deadline(said) if pacer else 0.0
                found = await gated(svc.gate, "tts", deadline, lambda a=a, b=b: align(svc, audio[a:b], sample_rate,
                                                                                      None, language))  # fmt: skip
                await out.put(chunk_of(audio[a:b], sample_rate, found))
                said += (b - a) / sample_rate
        await out.put(None)
    except Exception as exc:  # noqa: BLE001  (handed to the consumer, which fails with it)
        await out.put(exc)
