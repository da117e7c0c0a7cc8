"""OVAL against JPEG (Pillow, 4:2:0) and x264 at equal bits per pixel, on real clips.

    python benchmarks/baselines.py CLIP [CLIP ...] [--model default] [--frames N] [--json PATH]

CLIP is a video path or a sample name (bikes, bigbuckbunny, carphone). OVAL's rate is the whole
.oval stream (header and per-frame overhead included) over all pixels; JPEG's is the sum of its
files; x264's is the sum of its packets (libx264 through PyAV, preset medium, 4:2:0, its default
GOP, so it predicts from earlier frames while this OVAL model codes every frame alone). PSNR is RGB,
8-bit, averaged over frames, for all three. JPEG and x264 are swept over their quality settings and
interpolated (linearly in log-rate, rd.curve_value) to OVAL's bpp, and the other way round to OVAL's PSNR.
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
from oval.samples import resolve
from oval.metrics import psnr
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/rd.py, however this is loaded
from rd import curve_value, style_rd_axes  # noqa: E402  (one interpolation, one BD-rate for every script)

JPEG_QUALITIES = (1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95)
X264_CRFS = (12, 18, 23, 28, 33, 38, 43, 48, 51)


def read_clip(clip: str, n: int):
    path = resolve(clip)
    with VideoReader(path, n) as reader:
        return list(reader), reader.info


def oval_point(model, frames, info, device) -> dict:
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, info.width, info.height, info.fps, len(frames), device)
    start = time.perf_counter()
    psnrs = [psnr(f, encoder.encode(f).recon) for f in frames]
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
            psnrs.append(psnr(f, np.asarray(Image.open(buf).convert("RGB"))))
        h, w = frames[0].shape[:2]
        curve.append({"quality": q, "bpp": 8 * n_bytes / (len(frames) * h * w), "psnr": float(np.mean(psnrs))})
    return curve


def x264_curve(frames, fps) -> list[dict]:
    import av
    h, w = frames[0].shape[:2]
    curve = []
    for crf in X264_CRFS:
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
        enc.time_base, enc.framerate = 1 / fps, fps
        enc.options = {"crf": str(crf), "preset": "medium"}
        packets = []
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts = i
            packets += enc.encode(frame)
        packets += enc.encode(None)
        n_bytes = sum(p.size for p in packets)
        dec = av.CodecContext.create("h264", "r")
        decoded = [d for p in packets for d in dec.decode(p)] + list(dec.decode(None))
        psnrs = [psnr(f, d.to_ndarray(format="rgb24")) for f, d in zip(frames, decoded)]
        curve.append({"crf": crf, "bpp": 8 * n_bytes / (len(frames) * h * w), "psnr": float(np.mean(psnrs))})
    return curve


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="+", metavar="CLIP")
    p.add_argument("--model", default="default")
    p.add_argument("--frames", type=int, default=30, help="frames per clip (from the start)")
    p.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    p.add_argument("--json", metavar="PATH", help="write all numbers, the JPEG and x264 curves included")
    p.add_argument("--plot", metavar="PNG", help="draw PSNR against bpp, one panel per clip")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    model = load_model(args.model, device)
    rows = []
    for clip in args.clips:
        frames, info = read_clip(clip, args.frames)
        point = oval_point(model, frames, info, device)
        row = {"clip": clip, "size": f"{info.width}x{info.height}", "frames": len(frames), "oval": point}
        for name, curve in (("jpeg", jpeg_curve(frames)), ("x264", x264_curve(frames, info.fps))):
            row[name] = {"psnr_at_oval_bpp": curve_value(curve, "bpp", "psnr", point["bpp"]),
                         "bpp_at_oval_psnr": curve_value(curve, "psnr", "bpp", point["psnr"]),
                         "curve": curve}
        rows.append(row)
    print("| clip | size | frames | OVAL bpp | OVAL PSNR | JPEG PSNR at that bpp | JPEG bpp for that PSNR "
          "| x264 PSNR at that bpp | x264 bpp for that PSNR |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["clip"], r["size"], str(r["frames"]), f"{r['oval']['bpp']:.3f}", f"{r['oval']['psnr']:.2f} dB"]
        for name in ("jpeg", "x264"):
            at_bpp, at_psnr, curve = r[name]["psnr_at_oval_bpp"], r[name]["bpp_at_oval_psnr"], r[name]["curve"]
            lo, hi = min(c["bpp"] for c in curve), max(c["bpp"] for c in curve)
            cells.append(f"{at_bpp:.2f} dB" if at_bpp is not None else f"n/a (swept {lo:.3f}-{hi:.3f} bpp)")
            cells.append(f"{at_psnr:.3f}" if at_psnr is not None else "n/a")
        print("| " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": model.arch, "fingerprint": model.fingerprint.hex(),
                                               "rows": rows}, indent=2))
    if args.plot:
        plot(rows, args.plot)
    return 0


def plot(rows: list, path: str) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit('--plot needs matplotlib: pip install "oval[bench]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(4.5 * len(rows), 4), squeeze=False)
    for ax, r in zip(axes[0], rows):
        for name, style in (("jpeg", "s-"), ("x264", "^-")):
            curve = sorted(r[name]["curve"], key=lambda c: c["bpp"])
            ax.plot([c["bpp"] for c in curve], [c["psnr"] for c in curve], style, ms=4,
                    label="JPEG (Pillow, 4:2:0)" if name == "jpeg" else "x264 medium (inter)")
        ax.plot([r["oval"]["bpp"]], [r["oval"]["psnr"]], "o", ms=9, color="crimson", label="OVAL default (intra)")
        style_rd_axes(ax, f"{r['clip']} {r['size']}, {r['frames']} frames")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
