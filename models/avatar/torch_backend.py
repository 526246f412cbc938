"""Batched warping with torch.grid_sample: the frames of several requests in one call on the chosen device."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.avatar.warp import paint_mouth


def render_torch(jobs: Sequence, device: str, indices: range | None = None, chunk: int = 32) -> list[np.ndarray]:
    """One (n, S, S, 3) uint8 array per (avatar, controls) job; maps are built on the CPU, sampled on `device`."""
    import torch

    work = [(j, i) for j, (_, plan) in enumerate(jobs) for i in (indices or range(len(plan)))]
    outs: list[list[np.ndarray]] = [[] for _ in jobs]
    sources = {}
    for start in range(0, len(work), chunk):
        part = work[start : start + chunk]
        grids, imgs, paints = [], [], []
        for j, i in part:
            avatar, plan = jobs[j]
            mx, my, paint = avatar.builder.build(plan.pose(i))
            grids.append(_full_grid(avatar.portrait, mx, my))
            if j not in sources:
                sources[j] = torch.from_numpy(avatar.portrait.image).to(device).permute(2, 0, 1).float()
            imgs.append(sources[j])
            paints.append(paint)
        grid = torch.from_numpy(np.stack(grids)).to(device)
        out = torch.nn.functional.grid_sample(
            torch.stack(imgs), grid, mode="bilinear", padding_mode="reflection", align_corners=True
        )
        frames = out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for (j, _), frame, paint in zip(part, frames, paints, strict=True):
            m = jobs[j][0].portrait.mouth
            frame = np.ascontiguousarray(frame)
            paint_mouth(frame, paint, m.half_width, teeth=not m.shows_teeth)
            outs[j].append(frame)
    return [np.stack(o) for o in outs]


def _full_grid(portrait, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    """Normalised (S, S, 2) sampling grid: identity outside the head box."""
    s = portrait.size
    lin = np.linspace(-1, 1, s, dtype=np.float32)
    grid = np.empty((s, s, 2), np.float32)
    grid[..., 0], grid[..., 1] = lin[None, :], lin[:, None]
    x0, y0, x1, y1 = portrait.head_box
    scale = 2.0 / (s - 1)
    grid[y0:y1, x0:x1, 0] = mx * scale - 1
    grid[y0:y1, x0:x1, 1] = my * scale - 1
    return grid
