"""OVAL against JPEG (Pillow, 4:2:0) at equal bits per pixel, on real clips.

    python benchmarks/jpeg.py CLIP [CLIP ...] [--model default] [--frames N] [--json PATH]

CLIP is a video path or a sample name (bikes, bigbuckbunny, carphone). OVAL's rate is the whole
.oval stream (header and per-frame overhead included) over all pixels; JPEG's is the sum of its
files. PSNR is RGB, 8-bit, averaged over frames, for both. JPEG is swept over qualities 1..95 and
interpolated (linearly in bpp) to OVAL's bpp, and the other way round to OVAL's PSNR.
"""
import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from oval import codec
from oval.device import pick_device
from oval.io import VideoReader
from oval.models.store import load_model
from oval.samples import CLIPS, sample_path

JPEG_QUALITIES = (1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95)


def read_clip(clip: str, n: int):
    path = str(sample_path(clip)) if clip in CLIPS else clip
    with VideoReader(path, n) as reader:
        return list(reader), reader.info


def oval_point(model, frames, info, device) -> dict:
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, info.width, info.height, info.fps, len(frames), device)
    start = time.perf_counter()
    psnrs = [codec.psnr(f, encoder.encode(f).recon) for f in frames]
    elapsed = time.perf_counter() - start
    encoder.close()
    pixels = len(frames) * info.width * info.height
    return {"bpp": 8 * encoder.bytes_written / pixels, "psnr": float(np.mean(psnrs)),
            "encode_fps": len(frames) / elapsed}


def jpeg_curve(frames) -> list[dict]:
    from PIL import Image
    curve = []
    for q in JPEG_QUALITIES:
        n_bytes, psnrs = 0, []
        for f in frames:
            buf = io.BytesIO()
            Image.fromarray(f).save(buf, format="JPEG", quality=q, subsampling=2, optimize=True)
            n_bytes += buf.tell()
            buf.seek(0)
            psnrs.append(codec.psnr(f, np.asarray(Image.open(buf).convert("RGB"))))
        h, w = frames[0].shape[:2]
        curve.append({"quality": q, "bpp": 8 * n_bytes / (len(frames) * h * w), "psnr": float(np.mean(psnrs))})
    return curve


def interpolate(curve, key_from, key_to, value):
    """Piecewise-linear curve[key_to] at curve[key_from] == value; None outside the swept range."""
    pts = sorted((p[key_from], p[key_to]) for p in curve)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    if not xs[0] <= value <= xs[-1]:
        return None
    return float(np.interp(value, xs, ys))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="+", metavar="CLIP")
    p.add_argument("--model", default="default")
    p.add_argument("--frames", type=int, default=30, help="frames per clip (from the start)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", metavar="PATH", help="write all numbers, the JPEG curves included")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    model = load_model(args.model, device)
    rows = []
    for clip in args.clips:
        frames, info = read_clip(clip, args.frames)
        point = oval_point(model, frames, info, device)
        curve = jpeg_curve(frames)
        rows.append({"clip": clip, "size": f"{info.width}x{info.height}", "frames": len(frames),
                     "oval": point, "jpeg_psnr_at_oval_bpp": interpolate(curve, "bpp", "psnr", point["bpp"]),
                     "jpeg_bpp_at_oval_psnr": interpolate(curve, "psnr", "bpp", point["psnr"]),
                     "jpeg_lowest": min(curve, key=lambda c: c["bpp"]), "jpeg_curve": curve})
    print("| clip | size | frames | OVAL bpp | OVAL PSNR | JPEG PSNR at that bpp | JPEG bpp for that PSNR |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lo = r["jpeg_lowest"]
        at_bpp = (f"{r['jpeg_psnr_at_oval_bpp']:.2f} dB" if r["jpeg_psnr_at_oval_bpp"] is not None
                  else f"n/a (JPEG's lowest: {lo['bpp']:.3f} bpp, {lo['psnr']:.2f} dB)")
        at_psnr = f"{r['jpeg_bpp_at_oval_psnr']:.3f}" if r["jpeg_bpp_at_oval_psnr"] is not None else "n/a"
        print(f"| {r['clip']} | {r['size']} | {r['frames']} | {r['oval']['bpp']:.3f} | "
              f"{r['oval']['psnr']:.2f} dB | {at_bpp} | {at_psnr} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": model.arch, "fingerprint": model.fingerprint.hex(),
                                               "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
