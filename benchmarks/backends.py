"""Backends side by side: encode and decode frames/s of each, and how far their reconstructions
differ when one decodes another's stream (the bitstream is identical in meaning; only float
rounding in the transforms differs).

    python benchmarks/backends.py [CLIP] [--backends torch,onnxruntime] [--frames N] [--device ...] [--json PATH]
"""
import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from oval import codec
from oval.device import pick_device
from oval.export import runtimes
from oval.io import read_frames
from oval.models.store import load_model
from oval.samples import resolve
from oval.metrics import psnr


def encode(model, frames, device):
    h, w = frames[0].shape[:2]
    codec.Encoder(model, io.BytesIO(), w, h, 25, 1, device).encode(frames[0])  # warm-up
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, w, h, 25, len(frames), device)
    times = []
    for f in frames:
        t = time.perf_counter()
        encoder.encode(f)
        times.append(time.perf_counter() - t)
    encoder.close()
    return sink.getvalue(), 1 / statistics.median(times)


def decode(model, stream: bytes, device):
    reader = codec.open_stream(io.BytesIO(stream))
    decoder = codec.Decoder(model, reader.header, device)
    packets = list(reader)
    decoder.decode(packets[0])  # warm-up
    frames, times = [], []
    for p in packets:
        t = time.perf_counter()
        frames.append(decoder.decode(p))
        times.append(time.perf_counter() - t)
    return frames, 1 / statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip", nargs="?", default="bikes")
    p.add_argument("--backends", default="torch,onnxruntime")
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--model", default="default")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    path = resolve(args.clip)
    frames = read_frames(path, args.frames)
    base = load_model(args.model, device)
    names = args.backends.split(",")
    models = {n: runtimes.load(n, base, device) for n in names}
    streams, rows = {}, []
    for n in names:
        streams[n], enc_fps = encode(models[n], frames, device)
        decoded, dec_fps = decode(models[n], streams[n], device)
        rows.append({"backend": n, "encode_fps": enc_fps, "decode_fps": dec_fps,
                     "psnr": float(np.mean([psnr(a, b) for a, b in zip(frames, decoded)]))})
    cross = []
    for enc in names:
        ref, _ = decode(models[enc], streams[enc], device)
        for dec in names:
            if dec == enc:
                continue
            got, _ = decode(models[dec], streams[enc], device)
            diff = np.stack([np.abs(a.astype(int) - b.astype(int)) for a, b in zip(ref, got)])
            cross.append({"encoded_by": enc, "decoded_by": dec, "max_pixel_diff": int(diff.max()),
                          "pixels_differing": float((diff > 0).mean()),
                          "psnr_change_db": float(np.mean([psnr(a, b) for a, b in zip(frames, got)])
                                                  - np.mean([psnr(a, b) for a, b in zip(frames, ref)]))})
    h, w = frames[0].shape[:2]
    print(f"{args.clip} {w}x{h}, {len(frames)} frames, device {device}; medians of per-frame times")
    print("| backend | encode fps | decode fps | PSNR |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['encode_fps']:.1f} | {r['decode_fps']:.1f} | {r['psnr']:.2f} dB |")
    if cross:
        print("\n| encoded by | decoded by | largest pixel difference | pixels differing | PSNR change |")
        print("|---|---|---|---|---|")
        for c in cross:
            print(f"| {c['encoded_by']} | {c['decoded_by']} | {c['max_pixel_diff']} | "
                  f"{c['pixels_differing']:.4%} | {c['psnr_change_db']:+.4f} dB |")
    if args.json:
        Path(args.json).write_text(json.dumps({"clip": args.clip, "device": str(device), "rows": rows,
                                               "cross": cross}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
