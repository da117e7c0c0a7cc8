"""How high can an oval-rt model's intra transforms reach? PSNR of one frame with its latent
rounded (as coded), unquantised, and unquantised with the latent fitted to the synthesis.

    python benchmarks/ceiling.py [CLIP ...] [--model default|PATH] [--levels 6,8,10] [--fit-steps N] [--json PATH]

A codec's top level cannot pass what its transforms can represent. "unquantised" takes the analysis'
latent as it is (no rounding, no rate): the ceiling of analysis and synthesis together at that
level. "fitted" then moves that latent by gradient descent (Adam, --fit-steps) to the one whose
synthesis is closest to the frame, at the top level: how much of the ceiling is the analysis'
(a latent the synthesis would decode better exists) and how much the synthesis'. A linear
transform of each 8x8 block with as many coefficients as the latent has channels (the frame's own
principal components) is printed beside them, as what a block transform of that size keeps.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from oval.io import read_frames
from oval.kernels import frames_to_tensor
from oval.models.store import load_model
from oval.samples import resolve


def psnr_of(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    mse = ((x_hat.clamp(0, 1) - x) ** 2).mean().item()
    return 10 * float(np.log10(1 / max(mse, 1e-12)))


def block_pca_psnr(x: torch.Tensor, coefficients: int) -> float:
    """Each 8x8 RGB block (192 values) kept in the frame's top `coefficients` principal components."""
    blocks = F.pixel_unshuffle(x.double(), 8)[0].flatten(1).T
    mean = blocks.mean(0)
    centred = blocks - mean
    _, vectors = torch.linalg.eigh(centred.T @ centred / len(blocks))
    basis = vectors[:, -coefficients:]
    kept = (centred @ basis @ basis.T + mean).T.reshape(1, -1, x.shape[-2] // 8, x.shape[-1] // 8)
    return psnr_of(F.pixel_shuffle(kept, 8).float(), x)


def _decoded(model, latent: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return model.g_s_intra(latent * model._gain(q, True, inverse=True), q)[0]


def fitted_psnr(model, x: torch.Tensor, q: torch.Tensor, start: torch.Tensor, steps: int) -> float:
    """The PSNR of the latent (from the analysis' `start`) that Adam fits to the synthesis."""
    latent = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=0.02)
    for _ in range(steps):
        loss = ((_decoded(model, latent, q) - x) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return psnr_of(_decoded(model, latent, q), x)


def ceiling(model, frame: np.ndarray, levels: list, fit_steps: int) -> dict:
    x = frames_to_tensor(torch.from_numpy(np.ascontiguousarray(frame)), model.colour_space)
    x = x[..., :x.shape[-2] // 64 * 64, :x.shape[-1] // 64 * 64]  # whole hyper-latent cells
    out = {"size": list(x.shape[-2:]), "levels": {}}
    latents = {}
    for level in levels:
        q = model._level(level)
        with torch.no_grad():
            y = latents[level] = model.g_a_intra(x, q) * model._gain(q, True)
            out["levels"][str(level)] = {name: psnr_of(_decoded(model, latent, q), x)
                                         for name, latent in (("rounded", torch.round(y)), ("unquantised", y))}
    if fit_steps:
        top = max(levels)
        out["fitted_top_level"] = fitted_psnr(model, x, model._level(top), latents[top], fit_steps)
    out["block_pca"] = block_pca_psnr(x, model.config.M)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="*", default=["carphone"])
    p.add_argument("--model", default="default")
    p.add_argument("--levels", default="6,8,10")
    p.add_argument("--fit-steps", type=int, default=100)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    model = load_model(args.model)
    if not hasattr(model, "g_s_intra"):
        raise SystemExit(f"{model.arch} has no oval-rt intra transforms to measure")
    try:
        levels = [int(v) for v in args.levels.split(",") if v]
    except ValueError:
        raise SystemExit(f"--levels takes comma-separated levels, not {args.levels!r}") from None
    if not levels or not all(1 <= v <= model.levels for v in levels):
        raise SystemExit(f"--levels must be within 1..{model.levels}")
    report = {"model": model.source_path, "fit_steps": args.fit_steps, "clips": {}}
    for clip in args.clips:
        frame = read_frames(resolve(clip), 1)[0]
        result = report["clips"][Path(clip).stem] = ceiling(model, frame, levels, args.fit_steps)
        cells = ", ".join(f"level {k}: {v['rounded']:.2f} coded / {v['unquantised']:.2f} unquantised"
                          for k, v in result["levels"].items())
        fitted = f"; fitted latent {result['fitted_top_level']:.2f}" if "fitted_top_level" in result else ""
        print(f"{Path(clip).stem}: {cells}{fitted}; {model.config.M}-coefficient block PCA "
              f"{result['block_pca']:.2f} dB")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
