"""Rate-distortion against ffmpeg's x264, x265 and SVT-AV1, with Bjøntegaard BD-rate.

    python benchmarks/rd.py CLIP [CLIP ...] --out DIR [--codecs x264,x264-veryfast,x265,svtav1]
                            [--models default[,PATH,...]] [--frames N] [--gop N] [--device ...]
                            [--codec-points EARLIER_RD_JSON]

CLIP is a video path or a sample name. A multi-rate model (the default) gives one OVAL point per
quality level (--qualities), a single-rate model one. Every codec codes the same frames, 4:2:0,
with a group of pictures of --gop frames; OVAL uses it as its intra period. With --gop above 1 OVAL
is also run all-intra, and the BD-rate of its temporal mode against its own all-intra mode is
reported (the measure of what prediction from the last frame buys). Metrics on the
decoded RGB frames: PSNR RGB, PSNR YUV (BT.601 full range, weighted 6:1:1), MS-SSIM; bpp counts the
whole output (elementary streams for the classical codecs). BD-rate (pchip) is OVAL's bitrate change against each codec at equal PSNR RGB:
negative means OVAL needs fewer bits. Encode fps: OVAL in-process, ffmpeg as the whole process.
DIR gets rd.json, one rd_CLIP.png per clip, and the streams. --codec-points takes the classical
codecs' points from an earlier rd.json instead of coding them again (they do not change with OVAL's
weights, and on 360p clips they are most of a run's time), where that run had the same clip, frame
count, GOP and CRFs; rd.json names the file they came from.
"""
import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from oval import codec
from oval.device import pick_device
from oval.metrics import ms_ssim, psnr
from oval.io import VideoReader
from oval.models.store import load_model
from oval.samples import resolve

# name -> (ffmpeg encoder arguments, quality sweep: CRF values)
CODECS = {
    "x264": (["-c:v", "libx264", "-preset", "medium"], (17, 22, 27, 32, 37, 42)),
    "x264-veryfast": (["-c:v", "libx264", "-preset", "veryfast"], (17, 22, 27, 32, 37, 42)),
    "x265": (["-c:v", "libx265", "-preset", "medium", "-x265-params", "log-level=error:info=0"],
             (20, 25, 30, 35, 40, 45)),
    "svtav1": (["-c:v", "libsvtav1", "-preset", "8"], (25, 32, 39, 46, 53, 60)),
}
# Elementary streams (IVF for AV1): the bytes counted are the codec's, with next to no container.
EXTENSION = {"x264": ".264", "x264-veryfast": ".264", "x265": ".hevc", "svtav1": ".ivf"}


def metrics(source: list, decoded: list) -> dict:
    from oval.kernels import frames_to_tensor
    src = torch.from_numpy(np.stack(source))
    dec = torch.from_numpy(np.stack(decoded))
    a, b = frames_to_tensor(src), frames_to_tensor(dec)
    ya, yb = frames_to_tensor(src, "ycbcr-bt601"), frames_to_tensor(dec, "ycbcr-bt601")
    per_channel = [float(10 * np.log10(1 / max(((ya[:, c] - yb[:, c]) ** 2).mean().item(), 1e-12))) for c in range(3)]
    return {"psnr": float(np.mean([psnr(s, d) for s, d in zip(source, decoded)])),
            "psnr_yuv": (6 * per_channel[0] + per_channel[1] + per_channel[2]) / 8, "ms_ssim": ms_ssim(a, b)}


def earlier_points(earlier: dict, name: str, clip_name: str, frames: list, gop: int):
    """One classical codec's points on a clip from an earlier rd.json (--codec-points), when that
    run coded the same clip (by the name its report gives and its size) with the same frame count,
    GOP and CRFs."""
    entry = earlier.get("clips", {}).get(clip_name) or {}
    h, w = frames[0].shape[:2]
    if (entry.get("frames"), entry.get("gop"), entry.get("size")) != (len(frames), gop, f"{w}x{h}"):
        return None
    points = entry.get("codecs", {}).get(name)
    return points if points and [pt["crf"] for pt in points] == list(CODECS[name][1]) else None


def codec_curve(name: str, clip: Path, frames: list, fps: float, gop: int, streams: Path, cache: Path,
                earlier: dict, clip_name: str) -> list:
    """Every CRF point of one classical codec on one clip; kept in `cache` by clip, frame count and
    GOP, so a run that measures other OVAL models reuses them, or taken from an earlier run's rd.json."""
    reused = earlier_points(earlier, name, clip_name, frames, gop)
    if reused is not None:
        return reused
    key = {"clip": str(clip), "frames": len(frames), "gop": gop, "codec": name, "crfs": list(CODECS[name][1])}
    path = cache / f"{Path(clip).stem}.{name}.json"
    stored = json.loads(path.read_text()) if path.is_file() else {}
    if stored.get("key") == key:
        return stored["points"]
    points = [ffmpeg_point(name, crf, frames, fps, gop, streams) for crf in CODECS[name][1]]
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "points": points}))
    return points


def ffmpeg_point(name: str, crf: int, frames: list, fps: float, gop: int, out: Path) -> dict:
    args, _ = CODECS[name]
    h, w = frames[0].shape[:2]
    path = out / f"{name}_crf{crf}{EXTENSION[name]}"
    gop_args = ["-g", str(gop)] + (["-keyint_min", str(gop)] if name.startswith("x264") else [])
    if name == "x265":
        args = args[:-1] + [args[-1] + f":keyint={gop}:min-keyint={gop}"]
        gop_args = []
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", *args, "-crf", str(crf), *gop_args,
           "-pix_fmt", "yuv420p", str(path)]
    raw = np.stack(frames).tobytes()
    start = time.perf_counter()
    proc = subprocess.run(cmd, input=raw, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{name} crf {crf}: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    dec = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    decoded = list(np.frombuffer(dec, np.uint8).reshape(-1, h, w, 3))[:len(frames)]
    bpp = 8 * path.stat().st_size / (len(frames) * w * h)
    return {"crf": crf, "bpp": bpp, **metrics(frames, decoded), "encode_fps": len(frames) / elapsed}


def oval_point(model, frames: list, fps: float, device, out: Path, quality: int, intra_period: int) -> dict:
    h, w = frames[0].shape[:2]
    codec.Encoder(model, io.BytesIO(), w, h, fps, 1, device, quality).encode(frames[0])  # warm-up, untimed
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, w, h, fps, len(frames), device, quality, intra_period,
                            charge_probe_period=getattr(model, "charge_probe_period", None),
                            intra_boost=getattr(model, "intra_boost", 0),
                            level_cycle=getattr(model, "level_cycle", ()),
                            charge_probe_at=getattr(model, "charge_probe_at", None))
    start = time.perf_counter()
    decoded = [encoder.encode(f).recon for f in frames]
    elapsed = time.perf_counter() - start
    encoder.close()
    name = Path(model.source_path).stem.replace("#", "_")
    (out / f"oval_{name}_q{quality}_i{intra_period}.oval").write_bytes(sink.getvalue())
    per_frame = [psnr(a, b) for a, b in zip(frames, decoded)]
    return {"model": model.source_path, "quality": quality, "intra_period": intra_period,
            "bpp": 8 * encoder.bytes_written / (len(frames) * w * h), **metrics(frames, decoded),
            "encode_fps": len(frames) / elapsed, "psnr_per_frame": per_frame}


# Coding switches an oval-rt model can be measured without (ablations at inference, same weights):
# "MODEL#no-skip" codes every element, "MODEL#no-second-pass" gives the checkerboard's second half
# the first pass's means, "MODEL#no-context" gives the P-frame transforms a zero temporal context
# (the previous frame then informs only the entropy model, as in the first-generation model),
# "MODEL#no-motion" sends zero vectors from a model with explicit motion (what the vectors give),
# "MODEL#bilinear-only" has a switchable-filter model's encoder always name bilinear, "MODEL#spynet"
# takes the vectors from a pretrained SpyNet's flow instead of the block matching (oval.models.spynet),
# "MODEL#smoothness=V" runs the block matching with charge V at the default level (motion_search.SMOOTHNESS);
# with V = A/B (or more), the encoder chooses between the charges as codec.Encoder does (probing them
# on the first P-frame of each group and every CHARGE_PROBE_PERIOD P-frames), "MODEL#charge-probe=N"
# probes every N P-frames (1: each P-frame coded with every charge, the cheapest kept; 0: never),
# "MODEL#charge-probe-at=K" probes each group's P-frame K (from 0) too, the period counted from it,
# "MODEL#vector-predictor=V" sends the vectors against predictor V (motion.PREDICTORS; a new fingerprint),
# "MODEL#compensation=V" moves the reference by the vectors as V says (motion.COMPENSATIONS; a new fingerprint),
# "MODEL#intra-boost=K" codes the I-frames K levels above the P-frames (codec.Encoder's intra_boost),
# "MODEL#level-cycle=A/B/.." codes the k-th P-frame of a group A, B, .. levels off the stream's
# quality, cyclically (codec.Encoder's level_cycle; "-1/-1/-1/0": every fourth P-frame one level up),
# "MODEL#search=V" has an obmc model's encoder search as motion_search.SEARCHES V says (the codec's presets),
# "MODEL#block-search" the same as #search=block,
# "MODEL#refine=N" refines each frame's latent by N gradient steps before coding (oval.models.refine),
# "MODEL#refine=N/M" the I-frames' by N, the P-frames' by M,
# "MODEL#vector-rate=K" weighs the overlapped searches' last choice of each vector by its bits at K
# times λ·255² per squared error (motion_search.RATE_WEIGHT; 0: no such choice, the vectors as searched).
# "MODEL#skip-frames" lets the encoder send a P-frame as its motion alone where that costs less
# (RTConfig.skip_frames; a new fingerprint), "MODEL#skip-weight=K" weighs a skipped frame's squared
# error K times in that choice (RTModel.skip_error_weight).
# "MODEL#adapted-hyper-tables" lets the encoder code ẑ's channels with tables fitted to each frame
# (RTConfig.adapted_hyper_tables, oval.models.hyper_tables; a new fingerprint).
# Variants combine: "default#smoothness=0.0006/0.002#charge-probe=1".
VARIANTS = ("no-skip", "no-second-pass", "no-context", "no-motion", "bilinear-only", "block-search", "spynet", "smoothness=V", "vector-rate=V",
            "charge-probe=V", "vector-predictor=V", "intra-boost=V", "level-cycle=V", "charge-probe-at=V", "compensation=V",
            "search=V", "refine=V", "skip-frames", "skip-weight=V", "adapted-hyper-tables")


def load_variant(spec: str, device):
    path, *variants = spec.split("#")
    model = load_model(path, device)
    for variant in variants:
        apply_variant(model, path, variant, device)
    model.source_path = spec
    return model


def apply_variant(model, path: str, variant: str, device) -> None:
    variant, _, value = variant.partition("=")
    if value:
        variant += "=V"
    if variant and (variant not in VARIANTS or not hasattr(model, "prior_inter")):
        raise SystemExit(f"unknown variant {variant!r} for {model.arch}; oval-rt has {', '.join(VARIANTS)}")
    for prior in (getattr(model, "prior_intra", None), getattr(model, "prior_inter", None)):
        if prior is not None and variant == "no-skip":
            prior.skip = False
        if prior is not None and variant == "no-second-pass":
            prior.checkerboard = False
    if variant == "no-context":  # the context has the reference feature's shape: no need to compute it
        from oval.models.rt import Conditioning

        def no_context(reference, moves=None):
            if moves is None:
                return Conditioning(torch.zeros_like(reference.feature), reference.latent16)
            latent16 = model._moved(moves.vectors, reference.feature, reference.latent16)[1]
            return Conditioning(torch.zeros_like(reference.feature), latent16,
                                model._predict(moves, reference.picture))
        model._context = no_context
    if variant in ("no-motion", "bilinear-only"):
        from oval.models.rt import Motion
    if variant == "no-motion":
        if not getattr(model.config, "motion", False):
            raise SystemExit(f"{path} has no explicit motion: #no-motion needs a model trained with --motion")
        from oval.models import motion
        model.estimate_motion = lambda x, reference, level, charge=None, search=None: Motion(torch.zeros(
            1, 2, *motion.blocks_of(*x.shape[-2:]), dtype=torch.long, device=x.device),
            0 if model.config.switchable_filter else None)
        model.smoothness_charges = ()
    if variant == "block-search":
        model.motion_search = "block"
    if variant == "search=V":
        from oval.models import motion_search
        if value not in motion_search.SEARCHES:
            raise SystemExit(f"#search= takes {' or '.join(motion_search.SEARCHES)}, not {value!r}")
        model.motion_search = value
    if variant == "vector-rate=V":
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not weight >= 0:  # nan too
            raise SystemExit(f"#vector-rate= needs a number, 0 or more (0: vectors not chosen by their bits), not {value!r}")
        model.vector_rate_weight = weight
    if variant == "refine=V":
        steps = value.split("/")
        if len(steps) > 2 or not all(s.isdigit() for s in steps):
            raise SystemExit(f"#refine= needs a whole number of gradient steps, or two as N/M, not {value!r}")
        model.refine_steps = (int(steps[0]), int(steps[-1]))
    if variant == "spynet":
        if not getattr(model.config, "motion", False):
            raise SystemExit(f"{path} has no explicit motion: #spynet needs a model trained with --motion")
        from oval.models import spynet
        net = spynet.load_spynet(device=device)
        model.estimate_motion = lambda x, reference, level, charge=None, search=None: model.motion_for(
            x, reference, spynet.block_vectors(net(x, reference.picture)))
        model.smoothness_charges = ()
    if variant == "smoothness=V":
        if not getattr(model.config, "motion", False):
            raise SystemExit(f"{path} has no explicit motion: #smoothness= needs a model trained with --motion")
        try:
            model.smoothness_charges = tuple(float(v) for v in value.split("/"))
        except ValueError:
            raise SystemExit(f"#smoothness= needs a number or several as A/B, not {value!r}") from None
    if variant == "charge-probe=V":
        if not value.isdigit():
            raise SystemExit(f"#charge-probe= needs a whole number of P-frames, not {value!r}")
        model.charge_probe_period = int(value)
    if variant == "charge-probe-at=V":
        if not value.isdigit():
            raise SystemExit(f"#charge-probe-at= needs a P-frame's place in the group (0 or more), not {value!r}")
        model.charge_probe_at = int(value)
    if variant == "intra-boost=V":
        if not value.isdigit():
            raise SystemExit(f"#intra-boost= needs a whole number of levels, not {value!r}")
        model.intra_boost = int(value)
    if variant == "level-cycle=V":
        try:
            model.level_cycle = tuple(int(v) for v in value.split("/"))
        except ValueError:
            raise SystemExit(f"#level-cycle= needs whole numbers of levels as A/B/C, not {value!r}") from None
    for switch, choices in (("vector-predictor", "PREDICTORS"), ("compensation", "COMPENSATIONS")):
        if variant == f"{switch}=V":  # a coding switch the weights do not see: a new fingerprint
            from oval.models import motion
            from oval.models.store import fingerprint
            if not getattr(model.config, "motion", False):
                raise SystemExit(f"{path} has no explicit motion: #{switch}= needs a model trained with --motion")
            if value not in getattr(motion, choices):
                raise SystemExit(f"#{switch}= takes {' or '.join(getattr(motion, choices))}, not {value!r}")
            setattr(model.config, switch.replace("-", "_"), value)
            model.fingerprint = fingerprint(model)
    if variant == "skip-frames":
        from oval.models.store import fingerprint
        if not getattr(model.config, "switchable_filter", False):
            raise SystemExit(f"{path} has no switchable filter: #skip-frames needs one trained with --switchable-filter")
        model.config.skip_frames = True
        model.fingerprint = fingerprint(model)
    if variant == "adapted-hyper-tables":
        from oval.models.store import fingerprint
        model.config.adapted_hyper_tables = True
        model.fingerprint = fingerprint(model)
    if variant == "skip-weight=V":
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not weight > 0:
            raise SystemExit(f"#skip-weight= needs a number above 0, not {value!r}")
        model.skip_error_weight = weight
    if variant == "bilinear-only":
        if not getattr(model.config, "switchable_filter", False):
            raise SystemExit(f"{path} has no switchable filter: #bilinear-only needs one trained with --switchable-filter")
        choose = model.estimate_motion
        model.estimate_motion = lambda x, reference, level, charge=None, search=None: Motion(
            choose(x, reference, level, charge).vectors, 0)


def oval_curve(specs: list, qualities, frames, fps, device, out: Path, intra_period: int) -> list:
    points = []
    for spec in specs:
        model = load_variant(spec, device)
        levels = qualities or (list(range(1, model.levels + 1)) if model.levels else [0])
        if not model.temporal:
            intra_period = 1
        points += [oval_point(model, frames, fps, device, out, q, intra_period) for q in levels]
    return points


def curve_value(curve: list, key_from: str, key_to: str, value: float):
    """curve[key_to] where curve[key_from] == value: piecewise linear in log-rate (bpp), PSNR as is;
    None outside the swept range. The one interpolation every benchmark uses."""
    def axis(key, v):
        return np.log(v) if key == "bpp" else v
    pts = sorted((axis(key_from, p[key_from]), axis(key_to, p[key_to])) for p in curve)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x = axis(key_from, value)
    if not xs[0] <= x <= xs[-1]:
        return None
    y = float(np.interp(x, xs, ys))
    return float(np.exp(y)) if key_to == "bpp" else y


def front(points: list) -> list:
    """The points no other point of the curve beats (fewer or equal bits and higher PSNR), by rate:
    a setting that costs more bits for less quality is one nobody would pick (x264 on flat content
    at its top CRFs; an OVAL level that codes a flat frame in more bits than the level above it)."""
    kept = []
    for p in sorted(points, key=lambda p: (p["bpp"], -p["psnr"])):
        if not kept or p["psnr"] > kept[-1]["psnr"]:
            kept.append(p)
    return kept


def bd_rate(anchor: list, test: list) -> tuple:
    """(OVAL's BD-rate in % against the anchor curve, None or a note) or (None, why there is none).
    Both curves are taken on their fronts; the note names any OVAL point left off."""
    a, t = front(anchor), front(test)
    dropped = [p for p in test if p not in t]
    note = None
    if dropped:
        note = "OVAL points off its own front left out: " + ", ".join(
            f"q{p.get('quality', '?')} ({p['bpp']:.3f} bpp, {p['psnr']:.2f} dB)" for p in dropped)
    if len(t) < 2:
        return None, "needs two or more OVAL rate points" + (f" ({note})" if note else "")
    lo, hi = max(a[0]["psnr"], t[0]["psnr"]), min(a[-1]["psnr"], t[-1]["psnr"])
    if len(a) < 2 or lo >= hi:
        return None, "the curves do not overlap in PSNR"
    import warnings

    import bjontegaard
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = bjontegaard.bd_rate([p["bpp"] for p in a], [p["psnr"] for p in a], [p["bpp"] for p in t],
                                        [p["psnr"] for p in t], method="pchip", require_matching_points=False,
                                        min_overlap=0)
        except ValueError as e:  # one clip's odd curve must not lose a whole run's measurements
            return None, f"no BD-rate: {e}"
    return (float(value), note) if np.isfinite(value) else (None, "no finite BD-rate")


def plot(clip: str, result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in result["codecs"].items():
        pts = sorted(points, key=lambda p: p["bpp"])
        ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], "o-", ms=3, label=name)
    for key, style, label in (("oval", "D-", f"OVAL (intra period {result['gop']})"),
                              ("oval_intra", "D--", "OVAL all-intra")):
        pts = sorted(result.get(key) or [], key=lambda p: p["bpp"])
        if pts:
            ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], style, ms=6, color="crimson", label=label,
                    alpha=1.0 if key == "oval" else 0.5)
    style_rd_axes(ax, f"{clip}, {result['frames']} frames, GOP {result['gop']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def style_rd_axes(ax, title: str) -> None:
    """The look of every rate-distortion plot: log-rate axis, PSNR, grid, legend."""
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR RGB (dB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def record(run_dir: Path, report: dict) -> None:
    """One line of held-out results for the run's training log: the hours trained so far (every
    slice in slices.jsonl), the clips, and the mean BD-rate against each codec."""
    import datetime
    slices = [json.loads(line) for line in (run_dir / "slices.jsonl").read_text().splitlines() if line.strip()]
    line = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "steps": slices[-1]["end_step"] if slices else 0,
            "hours": round(sum(s["wall_hours"] for s in slices), 4), "gop": report["gop"], "frames": report["frames"],
            "clips": sorted(report["clips"]),
            "mean_bd_rate": {c: v["mean_bd_rate"] for c, v in report["summary"].items()}}
    with open(run_dir / "heldout.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="+", metavar="CLIP")
    p.add_argument("--out", required=True)
    p.add_argument("--codecs", default="x264,x264-veryfast,x265,svtav1")
    p.add_argument("--models", default="default", help="comma-separated model files (or default)")
    p.add_argument("--qualities", default="", help="comma-separated quality levels (default: all the model has)")
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--gop", type=int, default=1, help="group of pictures for every codec, OVAL's intra period")
    p.add_argument("--device", default="cpu")
    p.add_argument("--codec-points", metavar="RD_JSON", help="take the classical codecs' points from an earlier "
                   "rd.json where it coded the same clip, frames, GOP and CRFs (they do not depend on OVAL's weights)")
    p.add_argument("--record", metavar="RUN_DIR", help="append the mean BD-rates to RUN_DIR/heldout.jsonl, "
                                                       "with the run's training hours (benchmarks/training_log.py)")
    args = p.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("rd.py needs the ffmpeg command (Debian/Ubuntu: apt-get install ffmpeg)")
    codecs = args.codecs.split(",")
    unknown = [c for c in codecs if c not in CODECS]
    if unknown:
        raise SystemExit(f"unknown codec {unknown[0]!r}; choose from {', '.join(CODECS)}")
    device = pick_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    earlier = {}
    if args.codec_points:
        try:
            earlier = json.loads(Path(args.codec_points).read_text())
        except (OSError, ValueError) as e:
            raise SystemExit(f"--codec-points {args.codec_points}: cannot read it ({e})")
        if not isinstance(earlier, dict) or not isinstance(earlier.get("clips"), dict):
            raise SystemExit(f"--codec-points {args.codec_points}: not an rd.json (no clips)")
    report = {}
    # "default" (or a run directory) names other weights after a new model ships or a run trains on:
    # measured points are reused only for the same weights.
    fingerprints = [load_model(spec.partition("#")[0]).fingerprint.hex() for spec in args.models.split(",")]
    for clip in args.clips:
        path = resolve(clip)
        with VideoReader(path, args.frames) as reader:
            frames, fps = list(reader), float(reader.info.fps)
        name = Path(clip).stem
        streams = out / "streams" / name
        streams.mkdir(parents=True, exist_ok=True)
        specs = args.models.split(",")
        qualities = [int(q) for q in args.qualities.split(",") if q]
        # Measured points are kept per clip as they are made: a run stopped after hours of coding
        # (Ctrl-C, a lost machine) reuses them when started again with the same settings.
        points = out / "points" / f"{name}.json"
        key = {"clip": str(path), "models": args.models, "fingerprints": fingerprints, "qualities": qualities,
               "frames": args.frames, "gop": args.gop, "codecs": codecs}
        cached = json.loads(points.read_text()) if points.is_file() else {}
        if cached.get("key") == key:
            result = cached["result"]
            print(f"{name}: points measured before, reused from {points}", file=sys.stderr)
        else:
            result = {"frames": len(frames), "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}", "gop": args.gop,
                      "oval": oval_curve(specs, qualities, frames, fps, device, streams, args.gop),
                      "codecs": {c: codec_curve(c, path, frames, fps, args.gop, streams, out / "points", earlier, name)
                                 for c in codecs}}
            if args.gop != 1:
                result["oval_intra"] = oval_curve(specs, qualities, frames, fps, device, streams, 1)
            points.parent.mkdir(exist_ok=True)
            points.write_text(json.dumps({"key": key, "result": result}))
        if args.gop != 1:
            result["bd_rate_temporal_vs_intra"], _ = bd_rate(result["oval_intra"], result["oval"])
        result["bd_rate"], result["bd_rate_note"] = {}, {}
        for c, pts in result["codecs"].items():
            result["bd_rate"][c], result["bd_rate_note"][c] = bd_rate(pts, result["oval"])
        if "x264" in result["codecs"]:
            crf22 = next(pt for pt in result["codecs"]["x264"] if pt["crf"] == 22)
            top = max(result["oval"], key=lambda pt: pt["bpp"])
            result["top_level_vs_x264_crf22"] = {"oval_psnr": top["psnr"], "x264_crf22_psnr": crf22["psnr"],
                                                 "reached": top["psnr"] >= crf22["psnr"]}
        # The bits each codec needs for the PSNR of OVAL's points (None outside its swept range).
        result["bpp_at_oval_psnr"] = {c: [curve_value(pts, "psnr", "bpp", o["psnr"]) for o in result["oval"]]
                                      for c, pts in result["codecs"].items()}
        report[name] = result
        plot(name, result, out / f"rd_{name}.png")
    summary = {}
    for c in codecs:
        values = [r["bd_rate"][c] for r in report.values()]
        known = [v for v in values if v is not None]
        summary[c] = {"mean_bd_rate": sum(known) / len(known) if known else None, "clips": len(values),
                      "clips_with_bd_rate": len(known)}
    report_file = {"clips": report, "summary": summary, "models": args.models, "frames": args.frames,
                   "gop": args.gop, "codec_points": args.codec_points}
    (out / "rd.json").write_text(json.dumps(report_file, indent=2))
    if args.record:
        record(Path(args.record), report_file)
    for name, r in report.items():
        print(f"\n{name} {r['size']}, {r['frames']} frames, GOP {r['gop']}")
        print("| codec | setting | bpp | PSNR RGB | PSNR YUV 6:1:1 | MS-SSIM | encode fps |")
        print("|---|---|---|---|---|---|---|")
        rows = [("OVAL", f"{Path(o['model']).name} q{o['quality']} i{o['intra_period']}", o)
                for o in r["oval"] + r.get("oval_intra", [])]
        rows += [(c, f"crf {pt['crf']}", pt) for c, pts in r["codecs"].items() for pt in pts]
        for codec_name, setting, pt in rows:
            print(f"| {codec_name} | {setting} | {pt['bpp']:.4f} | {pt['psnr']:.2f} | {pt['psnr_yuv']:.2f} | "
                  f"{pt['ms_ssim']:.4f} | {pt['encode_fps']:.1f} |")
        for c, v in r["bd_rate"].items():
            note = r["bd_rate_note"][c]
            shown = (f"{v:+.1f}%" + (f" ({note})" if note else "")) if v is not None else f"n/a ({note})"
            print(f"BD-rate of OVAL against {c}: {shown}")
        if "bd_rate_temporal_vs_intra" in r:
            v = r["bd_rate_temporal_vs_intra"]
            shown = f"{v:+.1f}%" if v is not None else "n/a"
            print(f"BD-rate of OVAL intra period {r['gop']} against OVAL all-intra: {shown}")
        if "top_level_vs_x264_crf22" in r:
            t = r["top_level_vs_x264_crf22"]
            print(f"OVAL's top level {t['oval_psnr']:.2f} dB, x264 CRF 22 {t['x264_crf22_psnr']:.2f} dB")
    print(f"\nmean BD-rate of OVAL over {len(report)} clips (clips with an overlap):")
    for c, v in summary.items():
        shown = f"{v['mean_bd_rate']:+.1f}%" if v["mean_bd_rate"] is not None else "n/a"
        print(f"  against {c}: {shown} ({v['clips_with_bd_rate']}/{v['clips']} clips)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
