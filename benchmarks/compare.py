"""BD-rate of OVAL models against one another: what a training option buys.

    python benchmarks/compare.py BASE MODEL [MODEL ...] [--clips carphone,bikes] [--frames N] [--gop N] [--json PATH]

Every model codes the same frames at every quality level it has, with intra period --gop; the
BD-rate (pchip, PSNR RGB) of each MODEL against BASE is printed per clip: negative means MODEL
needs fewer bits for the same quality.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from oval.io import VideoReader
from oval.samples import CLIPS, sample_path
from rd import bd_rate, oval_curve  # benchmarks/rd.py, beside this script


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="MODEL", help="the first is the base")
    p.add_argument("--clips", default="carphone")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--gop", type=int, default=32)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    if len(args.models) < 2:
        raise SystemExit("compare needs a base model and at least one other")
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            path = str(sample_path(clip)) if clip in CLIPS else clip
            with VideoReader(path, args.frames) as reader:
                frames, fps = list(reader), float(reader.info.fps)
            curves = {m: oval_curve([m], [], frames, fps, torch.device("cpu"), Path(tmp), args.gop)
                      for m in args.models}
            base = curves[args.models[0]]
            report[Path(clip).stem] = {m: {"points": [{k: v for k, v in pt.items() if k != "psnr_per_frame"}
                                                      for pt in c],
                                           "bd_rate_vs_base": bd_rate(base, c)[0] if m != args.models[0] else 0.0}
                                       for m, c in curves.items()}
    for clip, models in report.items():
        print(f"\n{clip}, {args.frames} frames, intra period {args.gop}; BD-rate against {args.models[0]}:")
        for m, r in models.items():
            v = r["bd_rate_vs_base"]
            pts = ", ".join(f"{pt['bpp']:.3f}/{pt['psnr']:.2f}" for pt in r["points"])
            print(f"  {m}: {'n/a' if v is None else f'{v:+.1f}%'}   (bpp/dB: {pts})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
