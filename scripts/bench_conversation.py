"""Conversation benchmark: spoken questions (configs/conversations.yaml) against a real `bentoml serve`, the time
from the end of the user's speech to the answer's first video fragment, by stage.

    python scripts/bench_conversation.py [--readme docs]

Speech recognition uses the Whisper in the BentoML model store when one was imported, else a tiny random
Whisper built here (its time is then not a real model's). The LLM is `llm.base_url` when configured (a real
local LLM), else a fake OpenAI-compatible server on loopback that writes `--token-ms` per token (the repository's
test double). The target: first fragment <= ASR + LLM first sentence + 0.4 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from readme_section import replace_section  # noqa: E402


def _whisper(tmp: Path) -> str:
    """'imported' if the store has Whisper; else a tiny random one is imported into a temporary store."""
    from models.model_store import find_model
    from models.settings import load_settings

    if find_model(load_settings().asr.model):
        return "the imported Whisper"
    import import_models

    from models.asr.whisper_random import build_transformers_whisper

    os.environ["BENTOML_HOME"] = str(tmp / "bentoml")
    import_models.main(["whisper", "--from", str(build_transformers_whisper(tmp / "whisper-src"))])
    return "a tiny random Whisper (no real model imported: ASR time is not a real model's)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--token-ms", type=float, default=30, help="the fake LLM's time per token")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from models.evaluation.conversation import load_conversations, markdown, run_conversations
    from models.settings import load_settings
    from services.launcher import Server

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        asr = _whisper(tmp)
        llm, env = load_settings().llm, {"AVATAR_DATA_DIR": str(tmp / "data")}
        fake = None
        if not llm.base_url:
            from tests.fake_llm import FakeLLM

            fake = FakeLLM(
                "Sure! It is sunny and warm today. Take a hat, and drink some water when you go out for a walk.",
                delay_s=args.token_ms / 1000,
            ).__enter__()
            env |= {"AVATAR__LLM__BASE_URL": fake.base_url, "AVATAR__LLM__MODEL": "fake"}
        try:
            with Server(".", env, args.out / "serve-conversation.log", cwd=ROOT) as server:
                scenarios = load_conversations(ROOT / "configs" / "conversations.yaml")
                run_conversations(scenarios[:1], server.url, tmp)  # warm-up
                rows = run_conversations(scenarios, server.url, tmp)
        finally:
            if fake:
                fake.__exit__(None, None, None)
    what = f"{llm.model} at {llm.base_url}" if not fake else f"a fake LLM writing a token every {args.token_ms:g} ms"
    table = markdown(rows) + f"\n\nASR: {asr}; LLM: {what}; 512x512, 25 fps, all-in-one `bentoml serve .` on CPU."
    (args.out / "conversation.json").write_text(json.dumps(rows, indent=2))
    print(table)
    if args.readme:
        replace_section(args.readme, "conversation", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
