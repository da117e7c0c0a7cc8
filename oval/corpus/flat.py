"""Flat and smooth pictures: what real video has plenty of (walls, sky, studio backdrops, title
cards, letterbox bars) and the corpus's photographs have little of. A codec must learn that such
content costs almost nothing; without it the shipped model spent 131 KB on one flat grey 4K frame.

Each window is one of: a constant colour, a linear gradient, a soft radial blob over a colour, or
a photo window blurred to its lowest frequencies, with a little sensor-like noise on some. They
move like photo clips (oval.corpus.motion), so P-frames learn that a still or panning flat area
predicts for free.
"""
import torch
from torch.nn import functional as F


def flat_windows(n: int, size: int, generator: torch.Generator, photos: list = (), device=None) -> torch.Tensor:
    """n windows (n, 3, size, size) in [0, 1]; `photos` (uint8 HWC tensors) feed the blurred kind."""
    def rand(*shape):
        return torch.rand(*shape, generator=generator)

    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        kind = int(rand(1) * (4 if photos else 3))
        base = rand(3, 1, 1)
        if kind == 0:  # a constant colour
            win = base.expand(3, size, size).clone()
        elif kind == 1:  # a linear gradient between two colours
            angle = rand(1) * 6.2832
            t = (torch.cos(angle) * xx + torch.sin(angle) * yy) * 0.5 + 0.5
            win = base + (rand(3, 1, 1) - base) * t[None] * rand(1)
        elif kind == 2:  # a soft blob over a colour
            cx, cy, r = rand(1) * 2 - 1, rand(1) * 2 - 1, 0.2 + rand(1)
            blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r**2)
            win = base + (rand(3, 1, 1) - base) * blob[None]
        else:  # a photo's lowest frequencies: a window shrunk to a few pixels and blown up again
            photo = photos[int(rand(1) * len(photos)) % len(photos)]
            h, w = photo.shape[:2]
            side = min(h, w)
            y, x = int(rand(1) * (h - side + 1)), int(rand(1) * (w - side + 1))
            crop = photo[y:y + side, x:x + side].permute(2, 0, 1)[None].float().cpu() / 255
            tiny = F.interpolate(crop, size=(4 + int(rand(1) * 12),) * 2, mode="area")
            win = F.interpolate(tiny, size=(size, size), mode="bicubic", align_corners=False)[0]
        if rand(1) < 0.3:  # faint noise, as a camera sensor leaves on a wall
            win = win + torch.randn(3, size, size, generator=generator) * (rand(1) * 0.01)
        out.append(win.clamp(0, 1))
    return torch.stack(out).to(device)
