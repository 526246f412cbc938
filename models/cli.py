"""`avatar` command line: one-off jobs without a server.

avatar generate "Hello there." -o hello.mp4 [--avatar photo.jpg] [--voice NAME_OR_PATH.onnx] [--language en]
avatar stream "Hello there." -o hello.mp4 [--play]   (fragmented MP4 written while it is made: cli_stream.py)
avatar animate speech.wav -o out.mp4 [--text "what it says"] [--language en]   (audio in: any voice drives the face)
avatar talk --wav conversation.wav --out turns/ [--persona assistant] [--language en]   (hands-free, offline)
avatar info
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from models.errors import AvatarError


def _parser() -> argparse.ArgumentParser:
    from models.version import VERSION

    p = argparse.ArgumentParser(prog="avatar", description="Text to talking-avatar video, offline.")
    p.add_argument("--version", action="version", version=f"avatar {VERSION}")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="speak TEXT with an animated portrait into an MP4")
    g.add_argument("text", help="what to say (use - to read standard input)")
    g.add_argument("-o", "--output", required=True, type=Path, help="MP4 file to write")
    _speech_options(g)
    g.add_argument("--voice-clip", type=Path, help="clone a voice from this 3-30 s clip for this run (needs XTTS)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    st = sub.add_parser(
        "stream", help="stream TEXT as a fragmented MP4 while it is made (prints time to first fragment)"
    )
    st.add_argument("text", help="what to say (use - to read standard input)")
    out = st.add_mutually_exclusive_group(required=True)
    out.add_argument("-o", "--output", type=Path, help="fragmented MP4 file to write (- for standard output)")
    out.add_argument("--play", action="store_true", help="pipe the stream into a player (ffplay, mpv or vlc)")
    _speech_options(st)
    _animate_parser(sub)
    t = sub.add_parser("talk", help="hands-free turns from a recording: answers when it pauses, stops when talked over")
    t.add_argument("--wav", type=Path, required=True, help="the microphone, recorded (any rate; played in real time)")
    t.add_argument("--out", type=Path, required=True, help="folder for each answer's MP4 (turn-N.mp4)")
    t.add_argument("--persona", help="persona id (default: the first in the personas file)")
    t.add_argument("--language", help="the language spoken (default: detected)")
    sub.add_parser("info", help="show device, engines and settings")
    e = sub.add_parser("eval", help="run scenarios and measure the videos (lip sync, blinks, jitter, timings)")
    e.add_argument("--scenarios", type=Path, required=True, help="YAML list of {id, text, language, avatar, voice}")
    e.add_argument("--out", type=Path, required=True, help="folder for report.json, report.md, plots, videos")
    e.add_argument("--url", help="evaluate a running server instead of the in-process pipeline")
    e.add_argument("--baseline", type=Path, help="an earlier report.json: flags times worse by >20%%")
    e.add_argument("--conversations", type=Path, help="also these conversation scenarios (YAML); needs --url")
    return p


def _animate_parser(sub) -> None:
    """`avatar animate`: speech from an audio file (any voice) drives the portrait."""
    a = sub.add_parser("animate", help="animate the portrait with speech from an audio file (any voice)")
    a.add_argument("audio", type=Path, help="the speech: wav, mp3, ogg/opus, flac, m4a or webm")
    a.add_argument("-o", "--output", required=True, type=Path, help="MP4 file to write")
    a.add_argument("--text", help="what the audio says, when known: the mouth is aligned to it")
    a.add_argument("--language", default="en", help="the language spoken (default: en)")
    a.add_argument("--avatar", type=Path, help="portrait photo (default: the bundled portrait)")
    a.add_argument("--fps", type=float, help="frames per second (default from settings: 25)")
    a.add_argument("--size", type=int, help="frame size in pixels, square (default from settings: 512)")
    a.add_argument("--seed", type=int, default=0, help="seed of blinks and head motion")
    a.add_argument("--json", action="store_true", help="print the timings as JSON")


def _speech_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--avatar", type=Path, help="portrait photo (default: the bundled portrait)")
    p.add_argument("--voice", help="voice name, or a Piper .onnx voice file")
    p.add_argument("--language", default="en", help="language code (default: en)")
    p.add_argument("--fps", type=float, help="frames per second (default from settings: 25)")
    p.add_argument("--size", type=int, help="frame size in pixels, square (default from settings: 512)")
    p.add_argument("--speed", type=float, default=1.0, help="speaking rate, 1.0 = normal")
    p.add_argument("--seed", type=int, default=0, help="seed of blinks and head motion")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")


def _progress(stage: str, done: int, total: int) -> None:
    """The frames made of those planned so far (the plan grows as each sentence is spoken)."""
    width = 30
    fill = int(width * done / max(total, 1))
    print(f"\r{stage:>7} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} frames", end="", file=sys.stderr)


def _generate(args: argparse.Namespace) -> int:
    from models.avatar.images import load_image
    from models.tts.base import remove_voice

    text = sys.stdin.read() if args.text == "-" else args.text
    image = load_image(args.avatar) if args.avatar else None
    if not args.output.parent.exists():
        raise AvatarError(f"output folder does not exist: {args.output.parent}", field="output")
    pipeline = _pipeline(args)
    if args.voice_clip:
        args.voice = _one_off_voice(pipeline, args.voice_clip)
    try:
        result = _run(pipeline, args, text, image)
    finally:
        if args.voice_clip:
            remove_voice(pipeline.tts, args.voice)
    t = result.timings
    if args.json:
        print(json.dumps({"output": str(result.path), **t.as_dict()}))
    else:
        print(
            f"wrote {result.path}: {t.audio_duration_s:.2f} s of video, {t.n_frames} frames | "
            f"tts {t.tts_ms:.0f} ms, avatar {t.avatar_ms:.0f} ms, encode {t.encode_ms:.0f} ms, "
            f"total {t.total_ms:.0f} ms (RTF {t.rtf:.3f})"
        )
    return 0


def _animate(args: argparse.Namespace) -> int:
    from models.avatar.images import load_image
    from models.media.decode import decode_audio_file
    from models.pipeline import Pipeline

    if not args.audio.is_file():
        raise AvatarError(f"audio file not found: {args.audio}", field="audio")
    if not args.output.parent.exists():
        raise AvatarError(f"output folder does not exist: {args.output.parent}", field="output")
    pipeline = Pipeline()
    audio, sr = decode_audio_file(args.audio.read_bytes(), pipeline.settings.audio_in.max_audio_s)
    image = load_image(args.avatar) if args.avatar else None
    result = pipeline.animate(audio, sr, args.output, text=args.text, language=args.language, image=image,
                              size=args.size, fps=args.fps, seed=args.seed)  # fmt: skip
    t = result.timings
    if args.json:
        print(json.dumps({"output": str(result.path), **t.as_dict()}))
    else:
        print(f"wrote {result.path}: {t.audio_duration_s:.2f} s of video, {t.n_frames} frames, mouth {t.mouth} | "
              f"align {t.align_ms:.0f} ms, avatar {t.avatar_ms:.0f} ms, encode {t.encode_ms:.0f} ms, "
              f"total {t.total_ms:.0f} ms (RTF {t.rtf:.3f})")  # fmt: skip
    return 0


def _stream(args: argparse.Namespace) -> int:
    from models.cli_stream import stream_command

    return stream_command(args, _pipeline)


def _pipeline(args: argparse.Namespace):
    """The pipeline, speaking with a Piper voice file when --voice names one (args.voice is then cleared)."""
    from models.pipeline import Pipeline
    from models.settings import load_settings
    from models.tts import create_engine

    settings = load_settings()
    tts = None
    if args.voice and (args.voice.endswith(".onnx") or os.path.sep in args.voice):
        tts = create_engine("piper", model_path=args.voice, intra_op_threads=settings.tts.intra_op_threads)
        args.voice = None
    return Pipeline(settings, tts=tts)


def _one_off_voice(pipeline, clip: Path) -> str:
    from models.tts.base import clone_voice

    if not clip.is_file():
        raise AvatarError(f"voice clip not found: {clip}", field="voice_clip")
    return clone_voice(pipeline.tts, clip.stem, clip.read_bytes())["id"]


def _run(pipeline, args: argparse.Namespace, text: str, image):
    from models.tts import SynthesisOptions

    progress = None if args.quiet or not sys.stderr.isatty() else _progress
    try:
        return pipeline.generate(
            text,
            args.output,
            language=args.language,
            image=image,
            voice=args.voice,
            options=SynthesisOptions(speed=args.speed),
            size=args.size,
            fps=args.fps,
            seed=args.seed,
            progress=progress,
        )
    finally:
        if progress:
            print(file=sys.stderr)


def _talk(args: argparse.Namespace) -> int:
    """Each event as a JSON line on standard output; answers into --out."""
    import asyncio

    from models.asr import load_transcriber
    from models.chat import ChatClient, Conversation
    from models.chat.personas import get_persona, load_personas
    from models.live.local import Stages, talk
    from models.live.vad import RATE
    from models.media.audio import read_audio, resample
    from models.pipeline import Pipeline

    if not args.wav.is_file():
        raise AvatarError(f"recording not found: {args.wav}", field="wav")
    args.out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline()
    s = pipeline.settings
    client, transcriber = ChatClient.from_settings(s.llm), load_transcriber(s)  # their errors say what to set
    persona = get_persona(load_personas(s.llm.personas_file), args.persona)
    audio, sr = read_audio(args.wav.read_bytes())
    conversation = Conversation.for_persona(persona, s.llm)
    stages = Stages(pipeline, transcriber, conversation, client, args.language)
    asyncio.run(talk(resample(audio, sr, RATE), args.out, stages, lambda e: print(json.dumps(e, ensure_ascii=False))))
    return 0


def _info(_: argparse.Namespace) -> int:
    from models.avatar.registry import available_renderers
    from models.device import resolve_device
    from models.settings import load_settings
    from models.tts import available_engines

    s = load_settings()
    info = {"device": resolve_device(s.device), "tts_engines": available_engines()}
    info |= {"renderers": available_renderers(), "settings": s.model_dump()}
    print(json.dumps(info, indent=2))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from models.evaluation.report import markdown, write_report
    from models.evaluation.runner import load_scenarios, run_local, run_remote

    scenarios = load_scenarios(args.scenarios)
    if args.conversations and not args.url:
        raise AvatarError("--conversations needs --url: a server with speech recognition and an LLM", field="url")
    if args.baseline and not args.baseline.is_file():
        raise AvatarError(f"baseline not found: {args.baseline}", field="baseline")
    videos = args.out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    if args.url:
        results = run_remote(scenarios, videos, args.url)
    else:
        from models.pipeline import Pipeline

        results = run_local(scenarios, videos, Pipeline())
    report = write_report(results, args.out, args.baseline)
    print(markdown(report["scenarios"], report["regressions"]), end="")
    print(f"report: {args.out / 'report.json'}")
    if args.conversations:
        _eval_conversations(args)
    return 1 if report["regressions"] else 0


def _eval_conversations(args: argparse.Namespace) -> None:
    """Spoken questions -> the answer's first fragment, per stage (ASR, LLM first token, first sentence)."""
    import json

    from models.evaluation.conversation import load_conversations, markdown, run_conversations

    rows = run_conversations(load_conversations(args.conversations), args.url, args.out)
    (args.out / "conversations.json").write_text(json.dumps(rows, indent=2))
    print(markdown(rows))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        commands = {"generate": _generate, "stream": _stream, "animate": _animate, "info": _info, "eval": _eval,
                    "talk": _talk}  # fmt: skip
        return commands[args.command](args)
    except AvatarError as exc:
        allowed = f" (allowed: {exc.allowed})" if exc.allowed is not None else ""
        print(f"avatar: error: {exc.message}{allowed}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("avatar: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (one line for users; AVATAR_DEBUG=1 shows the traceback)
        if os.environ.get("AVATAR_DEBUG"):
            raise
        print(f"avatar: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
