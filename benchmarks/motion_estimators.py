"""Block matching against a pretrained SpyNet as the encoder's motion estimator, before any coding.

    python benchmarks/motion_estimators.py CLIP [CLIP ...] [--frames N] [--level Q] [--json PATH]

For each pair of consecutive original frames: the vectors of oval.models.motion's block matching
(at level Q's smoothness) and SpyNet's flow averaged over each 16x16 block into the same quarter-pel
vectors (oval.models.spynet). Prints per clip the PSNR of the bilinear motion-compensated prediction
with each set of vectors, what the vectors cost coded (bits per pixel, the stream's vector coder),
and each estimator's median time a frame on this machine; and, for reference, SpyNet's dense flow
warped directly (what the flow would give if it cost nothing to send). The ablation through the
whole codec is `benchmarks/compare.py default "default#spynet"`. Needs `pip install "oval[spynet]"`.
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from oval.models import motion, motion_search, spynet
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/interpolation.py, however this is loaded
from interpolation import frame_pair_arguments, psnr, read_clip  # noqa: E402


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def clip_report(frames: list, level: int, net) -> dict:
    pictures = [torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in frames]
    h, w = frames[0].shape[:2]
    rows = {"block matching": [], "spynet blocks": []}
    dense, seconds = [], {"block matching": [], "spynet blocks": []}
    for prev, cur in zip(pictures, pictures[1:]):
        matched, t_match = _timed(motion_search.estimate, cur, prev, motion_search.smoothness_for(level, 6))
        flow, t_flow = _timed(net, cur, prev)
        learned = spynet.block_vectors(flow)
        for name, vectors, t in (("block matching", matched, t_match), ("spynet blocks", learned, t_flow)):
            rows[name].append((psnr(motion.predict(prev, vectors), cur), 8 * len(motion.encode(vectors)) / (h * w)))
            seconds[name].append(t)
        dense.append(psnr(motion.warp(prev, flow), cur))
    report = {name: {"psnr": float(np.mean([r[0] for r in v])), "vector_bpp": float(np.mean([r[1] for r in v])),
                     "ms_per_frame": 1000 * float(np.median(seconds[name]))} for name, v in rows.items()}
    report["spynet dense (flow not coded)"] = {"psnr": float(np.mean(dense))}
    return report


def main(argv=None) -> int:
    args = frame_pair_arguments(__doc__.splitlines()[0]).parse_args(argv)
    net = spynet.load_spynet()
    report = {"frames": args.frames, "level": args.level, "threads": torch.get_num_threads(), "clips": {}}
    print(f"{'clip':28s} {'estimator':30s} {'PSNR':>7s} {'vector bpp':>10s} {'ms/frame':>9s}")
    for clip in args.clips:
        r = report["clips"][Path(clip).stem] = clip_report(read_clip(clip, args.frames), args.level, net)
        for name, row in r.items():
            extra = f" {row['vector_bpp']:10.4f} {row['ms_per_frame']:9.0f}" if "vector_bpp" in row else ""
            print(f"{Path(clip).stem[:28]:28s} {name:30s} {row['psnr']:7.2f}{extra}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
