"""Does error drift through a long group of pictures? PSNR and bits against frame index.

    python benchmarks/drift.py [CLIP] [--model default|PATH] [--quality Q] [--frames N] [--out DIR]

Codes the clip twice with the same model and quality: one I-frame followed only by P-frames
(intra period 0), and all intra. A codec whose P-frames accumulate error shows PSNR falling with
the frame index; OVAL codes each P-frame's latent in full (the past only informs the probabilities
and the synthesis), so it should not. DIR gets drift.json and drift.png.
"""
import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

from oval import codec
from oval.io import read_frames
from oval.models.store import load_model
from oval.samples import resolve
from oval.metrics import psnr


def per_frame(model, frames: list, quality, intra_period: int) -> dict:
    h, w = frames[0].shape[:2]
    encoder = codec.Encoder(model, io.BytesIO(), w, h, 25, len(frames), torch.device("cpu"), quality, intra_period)
    results = [encoder.encode(f) for f in frames]
    return {"psnr": [psnr(f, r.recon) for f, r in zip(frames, results)],
            "bpp": [8 * r.bytes / (w * h) for r in results]}


def summary(curve: dict, span: int = 10) -> dict:
    p = curve["psnr"]
    return {"bpp": float(np.mean(curve["bpp"])), "psnr": float(np.mean(p)),
            f"psnr_frames_1_{span}": float(np.mean(p[1:1 + span])), f"psnr_last_{span}": float(np.mean(p[-span:]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip", nargs="?", default="bikes")
    p.add_argument("--model", default="default")
    p.add_argument("--quality", type=int, default=None)
    p.add_argument("--frames", type=int, default=250)
    p.add_argument("--out", default="drift")
    args = p.parse_args(argv)
    model = load_model(args.model)
    if not model.temporal:
        raise SystemExit(f"model {model.arch} has no P-frames: nothing can drift")
    path = resolve(args.clip)
    frames = read_frames(path, args.frames)
    result = {"clip": Path(args.clip).stem, "frames": len(frames), "model": model.source_path,
              "quality": args.quality or model.default_quality,
              "one_gop": per_frame(model, frames, args.quality, 0), "all_intra": per_frame(model, frames, args.quality, 1)}
    result["summary"] = {k: summary(result[k]) for k in ("one_gop", "all_intra")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "drift.json").write_text(json.dumps(result, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    for key, label in (("one_gop", "I then P-frames only"), ("all_intra", "all intra")):
        top.plot(result[key]["psnr"], label=label)
        bottom.plot(result[key]["bpp"], label=label)
    top.set_ylabel("PSNR RGB (dB)")
    bottom.set_ylabel("bits per pixel")
    bottom.set_xlabel("frame index")
    top.set_title(f"{result['clip']}, quality {result['quality']}: PSNR and rate against frame index")
    top.legend()
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "drift.png", dpi=110)
    for key, s in result["summary"].items():
        print(f"{key}: {s['bpp']:.4f} bpp, {s['psnr']:.2f} dB; frames 1-10 {s['psnr_frames_1_10']:.2f} dB, "
              f"last 10 {s['psnr_last_10']:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
