"""BD-rate of OVAL models against one another: what a training option buys.

    python benchmarks/compare.py BASE [MODEL ...] [--clips carphone,bikes] [--frames N] [--gop N[,N...]] [--json PATH]

Every model codes the same frames at every quality level it has (or --qualities), with intra period
--gop; the BD-rate (pchip, PSNR RGB) of each MODEL against BASE is printed per clip and averaged
over the clips: negative means MODEL needs fewer bits for the same quality. A model named twice is
coded twice (entries are kept by position, and the base's own BD-rate is computed, not assumed).
Several intra periods (--gop 32,8,16,0; 0: only the first frame intra) code every model at each:
the base is then BASE at the first, and entries are named MODEL@PERIOD (the refresh ablation).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from oval.io import VideoReader
from oval.samples import resolve
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/rd.py, however this is loaded
from rd import bd_rate, oval_curve  # noqa: E402  (one interpolation, one BD-rate for every script)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="MODEL", help="the first is the base")
    p.add_argument("--clips", default="carphone")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--gop", default="32", help="intra period, or several, comma-separated (0: the first frame only)")
    p.add_argument("--qualities", default="", help="comma-separated quality levels (default: all each model has)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    gops = [int(g) for g in args.gop.split(",") if g]
    if len(args.models) * len(gops) < 2:
        raise SystemExit("compare needs a base model and at least one other model or intra period")
    qualities = [int(q) for q in args.qualities.split(",") if q]
    runs = [(m, g) for m in args.models for g in gops]
    names = [m if len(gops) == 1 else f"{m}@{g}" for m, g in runs]
    report = {"models": names, "gop": gops[0] if len(gops) == 1 else gops, "frames": args.frames, "clips": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            with VideoReader(resolve(clip), args.frames) as reader:
                frames, fps = list(reader), float(reader.info.fps)
            curves = [oval_curve([m], qualities, frames, fps, torch.device("cpu"), Path(tmp), g) for m, g in runs]
            report["clips"][Path(clip).stem] = [
                {"model": m, "points": [{k: v for k, v in pt.items() if k != "psnr_per_frame"} for pt in c],
                 "bd_rate_vs_base": bd_rate(curves[0], c)[0]} for m, c in zip(names, curves)]
    report["mean_bd_rate_vs_base"] = []
    for i, m in enumerate(names):
        values = [entries[i]["bd_rate_vs_base"] for entries in report["clips"].values()]
        known = [v for v in values if v is not None]
        report["mean_bd_rate_vs_base"].append(sum(known) / len(known) if len(known) == len(values) else None)
    for clip, entries in report["clips"].items():
        print(f"\n{clip}, {args.frames} frames, intra period {args.gop}; BD-rate against {names[0]}:")
        for e in entries:
            v = e["bd_rate_vs_base"]
            pts = ", ".join(f"{pt['bpp']:.3f}/{pt['psnr']:.2f}" for pt in e["points"])
            print(f"  {e['model']}: {'n/a' if v is None else f'{v:+.1f}%'}   (bpp/dB: {pts})")
    print(f"\nmean over {len(report['clips'])} clips:")
    for m, v in zip(names, report["mean_bd_rate_vs_base"]):
        print(f"  {m}: {'n/a (a clip without overlap)' if v is None else f'{v:+.1f}%'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
