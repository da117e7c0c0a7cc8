"""Synthetic camera motion over still photos: every photo yields endless clips of known motion.

A clip is a window of a photo (at a random scale) seen through a moving virtual camera: smooth
sub-pixel pans with some acceleration, zooms, small rotations, handheld shake and brightness drift,
or no motion at all (a fixed camera must cost almost nothing). Frames are rendered by bicubic
`grid_sample`, batched, on whatever device the photos are on.
"""
import math

import torch
from torch.nn import functional as F


def motion_parameters(n: int, generator: torch.Generator, device=None) -> dict:
    """Random per-clip motion, in output pixels per frame (pans), log-scale per frame (zoom) and
    radians per frame (rotation). About one clip in six is a fixed camera."""
    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(device)

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(device)

    moving = (rand(n) > 1 / 6).float()
    speed = 10 ** (rand(n) * 1.4 - 0.7) * moving  # 0.2 .. 5 px per frame, log-uniform
    angle = rand(n) * 2 * math.pi
    return {
        "velocity": torch.stack([speed * torch.cos(angle), speed * torch.sin(angle)], 1),
        "acceleration": randn(n, 2) * 0.15 * moving[:, None],
        "zoom": randn(n) * 0.008 * (rand(n) < 0.4).float() * moving,
        "rotation": randn(n) * 0.003 * (rand(n) < 0.3).float() * moving,
        "shake": (rand(n) < 0.25).float() * rand(n) * 1.2 * moving,
        "brightness": randn(n) * 0.01 * (rand(n) < 0.3).float(),
    }


def affine_thetas(params: dict, frames: int, out_hw: tuple, window: int, generator: torch.Generator) -> torch.Tensor:
    """(n, T, 2, 3) matrices for F.affine_grid: output pixel -> window pixel, normalised."""
    h, w = out_hw
    n = params["velocity"].shape[0]
    device = params["velocity"].device
    t = torch.arange(frames, device=device, dtype=torch.float32)
    centre = params["velocity"][:, None, :] * t[None, :, None] + 0.5 * params["acceleration"][:, None, :] * (t**2)[None, :, None]
    shake = torch.randn(n, frames, 2, generator=generator).to(device) * params["shake"][:, None, None]
    centre = centre + shake - (centre + shake).mean(1, keepdim=True)  # keep the path centred in the window
    zoom = torch.exp(params["zoom"][:, None] * (t - (frames - 1) / 2)[None])
    rot = params["rotation"][:, None] * (t - (frames - 1) / 2)[None]
    cos, sin = torch.cos(rot) / zoom, torch.sin(rot) / zoom
    half = window / 2
    theta = torch.zeros(n, frames, 2, 3, device=device)
    theta[..., 0, 0] = cos * (w / 2) / half
    theta[..., 0, 1] = -sin * (h / 2) / half
    theta[..., 1, 0] = sin * (w / 2) / half
    theta[..., 1, 1] = cos * (h / 2) / half
    theta[..., :, 2] = centre / half
    return theta


def render_clips(windows: torch.Tensor, params: dict, frames: int, out_hw: tuple,
                 generator: torch.Generator) -> torch.Tensor:
    """windows (n, 3, S, S) float in [0, 1] -> clips (n, T, 3, h, w)."""
    n, _, size, _ = windows.shape
    theta = affine_thetas(params, frames, out_hw, size, generator)
    grid = F.affine_grid(theta.flatten(0, 1), (n * frames, 3, *out_hw), align_corners=False)
    src = windows[:, None].expand(n, frames, *windows.shape[1:]).flatten(0, 1)
    clips = F.grid_sample(src, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    clips = clips.view(n, frames, 3, *out_hw)
    t = torch.arange(frames, device=clips.device, dtype=clips.dtype)
    gain = 1 + params["brightness"][:, None] * t[None]
    return (clips * gain[:, :, None, None, None]).clamp_(0, 1)


def window_size(out_hw: tuple) -> int:
    """A square window large enough for the output plus the motion of a short clip."""
    return int(max(out_hw) * 1.5) // 16 * 16
