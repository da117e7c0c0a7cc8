"""How well each interpolation filter and compensation predicts a frame from the one before, with the same vectors.

    python benchmarks/interpolation.py CLIP [CLIP ...] [--frames N] [--level Q] [--charge C] [--json PATH]

For each pair of consecutive original frames, the block matching of oval.models.motion (at level
Q's smoothness for charge C at the default level) finds one set of vectors, and the previous frame
is moved with each filter a switchable-filter model can name (bilinear, bicubic) in each
compensation (motion.COMPENSATIONS: the smooth field, "obmc" the overlapped blocks; "obmc-search":
with the vectors refined for the overlapped blend, as an obmc model's encoder searches) and, for
reference only, warped along the smooth field with Lanczos windows of 3 and 4 lobes (what a sharper
filter than bicubic would add). Prints the mean PSNR of each prediction per clip and how often the
encoder's rule picks bicubic (smooth field). Original frames, not decoded ones: this measures the
filters, not a model.
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from oval.io import read_frames
from oval.models import motion, motion_search
from oval.samples import resolve


def _lanczos(t: torch.Tensor, lobes: int) -> torch.Tensor:
    t = t.abs()
    safe = torch.where(t < 1e-6, torch.ones_like(t), t)
    value = lobes * torch.sin(math.pi * safe) * torch.sin(math.pi * safe / lobes) / (math.pi ** 2 * safe * safe)
    return torch.where(t < 1e-6, torch.ones_like(t), torch.where(t < lobes, value, torch.zeros_like(t)))


def lanczos_warp(x: torch.Tensor, flow: torch.Tensor, lobes: int) -> torch.Tensor:
    """motion.warp with a Lanczos window (taps normalised to sum to 1, edges repeated): a gather per tap."""
    b, c, h, w = x.shape
    pos = motion.base_grid(h, w, x.device, flow.dtype) + flow
    x0, y0 = torch.floor(pos[:, 0]), torch.floor(pos[:, 1])
    taps = range(-lobes + 1, lobes + 1)
    wx = [_lanczos(pos[:, 0] - x0 - k, lobes) for k in taps]
    wy = [_lanczos(pos[:, 1] - y0 - k, lobes) for k in taps]
    norm = sum(wx) * sum(wy)
    flat, out = x.flatten(2), torch.zeros_like(x)
    for ky, weight_y in zip(taps, wy):
        rows = (y0 + ky).clamp(0, h - 1).long()
        for kx, weight_x in zip(taps, wx):
            index = (rows * w + (x0 + kx).clamp(0, w - 1).long()).flatten(1)[:, None].expand(b, c, h * w)
            out += flat.gather(2, index).view(b, c, h, w) * (weight_y * weight_x / norm)[:, None]
    return out.clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean().clamp_min(1e-12)))


COLUMNS = ("bilinear", "bicubic", "obmc-bilinear", "obmc-bicubic", "obmc-search-bilinear", "obmc-search-bicubic",
           "lanczos3", "lanczos4")


def clip_report(frames: list, level: int, charge: float = motion_search.SMOOTHNESS) -> dict:
    pictures = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    scores = {k: [] for k in COLUMNS}
    picks = []
    for prev, cur in zip(pictures, pictures[1:]):
        charge_now = motion_search.smoothness_for(level, 6, charge)
        vectors = motion_search.estimate(cur, prev, charge_now)
        refined = motion_search.estimate(cur, prev, charge_now, "overlapped")
        field = motion.flow(vectors, *cur.shape[-2:])
        for k, name in enumerate(motion.FILTERS):
            for compensation, column in (("smooth", name), ("obmc", f"obmc-{name}")):
                scores[column].append(psnr(motion.predict(prev, vectors, torch.tensor([k]), compensation), cur))
            scores[f"obmc-search-{name}"].append(psnr(motion.predict(prev, refined, torch.tensor([k]), "obmc"), cur))
        for lobes in (3, 4):
            scores[f"lanczos{lobes}"].append(psnr(lanczos_warp(prev, field, lobes), cur))
        picks.append(int(motion.choose_filters(cur, prev, vectors)[0]))
    return {"psnr": {k: float(np.mean(v)) for k, v in scores.items()}, "bicubic_share": float(np.mean(picks))}


def frame_pair_arguments(description: str) -> argparse.ArgumentParser:
    """The command line of the benchmarks that score predictions between consecutive frames."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("clips", nargs="+", metavar="CLIP")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--level", type=int, default=6, help="the quality level whose smoothness charge the search uses")
    p.add_argument("--json", metavar="PATH")
    return p


def read_clip(clip: str, frames: int) -> list:
    frames = read_frames(resolve(clip), frames)
    if len(frames) < 2:
        raise SystemExit(f"{clip}: needs two frames at least")
    return frames


def main(argv=None) -> int:
    p = frame_pair_arguments(__doc__.splitlines()[0])
    p.add_argument("--charge", type=float, default=motion_search.SMOOTHNESS,
                   help="the search's smoothness charge at the default level (motion_search.CHARGES are the encoder's)")
    args = p.parse_args(argv)
    report = {"frames": args.frames, "level": args.level, "charge": args.charge, "clips": {}}
    print(f"{'clip':32s} " + " ".join(f"{k:>13s}" for k in COLUMNS) + "  bicubic picked")
    for clip in args.clips:
        r = report["clips"][Path(clip).stem] = clip_report(read_clip(clip, args.frames), args.level, args.charge)
        print(f"{Path(clip).stem[:32]:32s} " + " ".join(f"{v:13.2f}" for v in r["psnr"].values())
              + f"  {100 * r['bicubic_share']:.0f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
