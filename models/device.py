"""One place that decides where tensors live: an explicit setting, else cuda, else mps, else cpu."""

from __future__ import annotations

import glob
import os
import platform

from models.errors import InvalidInput

CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(setting: str | None = "auto") -> str:
    """'cuda' / 'mps' / 'cpu'. torch is optional: without it everything runs on the CPU."""
    setting = (setting or "auto").lower()
    if setting.split(":")[0] not in CHOICES:
        raise InvalidInput(f"unknown device {setting!r}", allowed=list(CHOICES), field="device")
    if setting != "auto":
        return setting
    if not _may_have_gpu():
        return "cpu"  # importing torch to find out costs ~1 s of CPU in every process that asks
    try:
        import torch
    except ImportError:
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")  # ops MPS lacks fall back to the CPU
        return "mps"
    return "cpu"


def _may_have_gpu() -> bool:
    """False only where no GPU can be: Linux without NVIDIA device nodes (/dev/nvidia0...; WSL2: /dev/dxg) and not
    macOS on Apple silicon. Anything else asks torch."""
    if platform.system() == "Darwin":
        return platform.machine() == "arm64"
    if platform.system() != "Linux":
        return True
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/dxg")
