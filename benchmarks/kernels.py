"""Colour kernels: the torch reference against the fused CuPy kernel (CUDA events, medians).

    python benchmarks/kernels.py [--device auto|cpu|cuda] [--size 1920x1080] [--batch 8] [--json PATH]

On CPU only the reference runs (there is no fast path to compare).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from oval import kernels
from oval.device import pick_device


def timed(fn, device, repeats=20, warmup=3) -> float:
    """Median milliseconds of fn(); CUDA events on GPU, perf_counter on CPU."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            samples.append(1000 * (time.perf_counter() - t))
    return statistics.median(samples)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    w, h = map(int, args.size.split("x"))
    frames = torch.randint(0, 256, (args.batch, h, w, 3), dtype=torch.uint8, device=device)
    x = kernels.frames_to_tensor(frames, "ycbcr-bt709")
    ops = {"to_tensor ycbcr": lambda: kernels.frames_to_tensor(frames, "ycbcr-bt709"),
           "to_tensor ycbcr + noise": lambda: kernels.frames_to_tensor(frames, "ycbcr-bt709", noise=0.02),
           "to_frames ycbcr": lambda: kernels.tensor_to_frames(x, "ycbcr-bt709")}
    fast = device.type == "cuda" and kernels.cupy_available()
    rows = []
    for name, fn in ops.items():
        kernels.force_reference(True)
        ref = timed(fn, device)
        kernels.force_reference(False)
        row = {"op": name, "reference_ms": ref}
        if fast:
            row["cupy_ms"] = timed(fn, device)
            row["speedup"] = ref / row["cupy_ms"]
        rows.append(row)
    print(f"{args.batch} frames of {w}x{h} on {device}" + ("" if fast else " (reference only: no CUDA + CuPy)"))
    print("| op | reference (ms) | CuPy (ms) | speedup |")
    print("|---|---|---|---|")
    for r in rows:
        cupy_ms = f"{r['cupy_ms']:.2f}" if "cupy_ms" in r else "-"
        speedup = f"{r['speedup']:.1f}x" if "speedup" in r else "-"
        print(f"| {r['op']} | {r['reference_ms']:.2f} | {cupy_ms} | {speedup} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "size": args.size, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
