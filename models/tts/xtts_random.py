"""Random-weight XTTS checkpoints built offline: for tests (tiny) and speed benchmarks (real size).

They load through the same production path as real XTTS-v2 weights (`model.pth`, `config.json`,
`vocab.json`), but say nothing intelligible.
"""

from __future__ import annotations

import json
from pathlib import Path

TINY_ARGS = {
    "gpt_layers": 2, "gpt_n_model_channels": 64, "gpt_n_heads": 2, "gpt_num_audio_tokens": 130,
    "gpt_start_audio_token": 128, "gpt_stop_audio_token": 129, "gpt_max_audio_tokens": 60,
    "gpt_max_text_tokens": 200, "gpt_use_perceiver_resampler": True, "decoder_input_dim": 64,
}  # fmt: skip
CORPUS = (
    "the quick brown fox jumps over the lazy dog. hello world, this is a test of speech. "
    "hola, buenos días a todos. el rápido zorro marrón salta sobre el perro perezoso. 0123456789 ?!.,;:'\"-"
)


def _vocab(path: Path, languages: list[str]) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["[STOP]", "[UNK]", "[SPACE]", "[START]"] + [f"[{lang}]" for lang in languages]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=special, initial_alphabet=list(set(CORPUS)))
    tok.train_from_iterator([CORPUS] * 4, trainer)
    tok.save(str(path))


def _tokenizer(vocab: Path):
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    return VoiceBpeTokenizer(vocab_file=str(vocab))


def build_random_xtts(
    folder: str | Path, tiny: bool = True, seed: int = 0, max_audio_tokens: int | None = None
) -> Path:
    """Write model.pth, config.json and vocab.json of a random XTTS into `folder`; returns the folder."""
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = XttsConfig()
    _vocab(folder / "vocab.json", list(cfg.languages))
    if tiny:
        for k, v in TINY_ARGS.items():
            setattr(cfg.model_args, k, v)
    if max_audio_tokens:  # random weights rarely emit the stop token: cap the generation length
        cfg.model_args.gpt_max_audio_tokens = max_audio_tokens
    cfg.model_args.tokenizer_file = str(folder / "vocab.json")
    model = Xtts(cfg)
    model.tokenizer = _tokenizer(folder / "vocab.json")
    model.init_models()  # the GPT is only built once a tokenizer is known
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    data = cfg.to_dict()
    data["model_args"]["tokenizer_file"] = ""  # resolved from the checkpoint folder when loading
    (folder / "config.json").write_text(json.dumps(data))
    return folder
