"""python -m oval.sweep CONFIG.yaml --out DIR [--jobs N] [--dry-run]

Trains one model per point of a grid, converts a validation clip with each, and ranks them.

CONFIG (YAML):
    base:                 # arguments of python -m oval.train, shared by every point
      data: [clip.mp4]
      steps: 20
      device: cpu
    grid:                 # argument -> list of values; every combination is a point
      lmbda: [0.005, 0.02]
    val: held_out.mp4     # optional: the clip each model converts (default: base.val or the first data file)
    val_frames: 10        # optional

Any argument of oval.train may appear in base or grid: they are passed through as flags, so a new
training option needs no change here. Each point gets DIR/runs/NAME/ with its training run, its
stream (val.oval), its reconstruction (val_recon.mkv) and result.json. A failed point is recorded
and the sweep goes on; a re-run skips points that finished. DIR/summary.csv and summary.md rank
the points by rate-distortion cost at one λ (`rank_lmbda`, default 0.013) and mark the Pareto front; DIR/tb holds TensorBoard
HParams across runs and DIR/rd.png an RD scatter plot.
"""
import argparse
import csv
import itertools
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from oval.errors import OvalError


def load_config(path: str) -> dict:
    try:
        import yaml
    except ImportError:
        raise OvalError('sweeps read YAML: pip install "oval[sweep]"') from None
    try:
        config = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise OvalError(f"config not found: {path}") from None
    except yaml.YAMLError as e:
        raise OvalError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(config, dict) or not isinstance(config.get("base"), dict):
        raise OvalError(f"{path} needs a 'base:' mapping of training arguments")
    grid = config.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise OvalError(f"{path}: 'grid:' must map each argument to a non-empty list of values")
    if "data" not in config["base"]:
        raise OvalError(f"{path}: base needs 'data:'")
    return config


def to_flags(args: dict) -> list[str]:
    """{'batch_size': 4, 'data': [a, b], 'compile': True} -> ['--batch-size', '4', '--data', 'a', 'b', '--compile']"""
    flags = []
    for key, value in args.items():
        flag = "--" + str(key).replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            flags += [flag, *map(str, value)]
        else:
            flags += [flag, str(value)]
    return flags


def point_name(point: dict) -> str:
    text = "-".join(f"{k}={v}" for k, v in point.items()) or "base"
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", text)


def points(config: dict) -> list[dict]:
    grid = config.get("grid") or {}
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def check_arguments(config: dict, out: Path) -> None:
    """Parse every point with the trainer's own parser before anything runs."""
    from oval.train_config import parse_args
    for point in points(config):
        argv = to_flags({**config["base"], **point, "out": str(out / "runs" / point_name(point))})
        try:
            parse_args(argv)
        except SystemExit:
            raise OvalError(f"point {point_name(point)}: the arguments above are not valid for oval.train") from None


def run_point(config: dict, point: dict, out: Path) -> dict:
    name = point_name(point)
    run_dir = out / "runs" / name
    result_path = run_dir / "result.json"
    if result_path.is_file():
        previous = json.loads(result_path.read_text())
        if previous.get("status") == "ok":
            return previous | {"skipped": True}
    run_dir.mkdir(parents=True, exist_ok=True)
    base = config["base"]
    result = {"name": name, "point": point, "run_dir": str(run_dir), "status": "failed"}
    start = time.time()
    train = [sys.executable, "-m", "oval.train", *to_flags({**base, **point, "out": str(run_dir)})]
    with open(run_dir / "train.log", "w") as log:
        proc = subprocess.run(train, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        lines = (run_dir / "train.log").read_text().strip().splitlines()
        result["error"] = lines[-1] if lines else f"training exited with {proc.returncode}"
        return _write(result_path, result)
    val = str(config.get("val") or base.get("val") or _first(base["data"]))
    frames = int(config.get("val_frames", 10))
    encode = [sys.executable, "-m", "oval.cli", val, "-o", str(run_dir / "val.oval"), "--model", str(run_dir),
              "--recon", str(run_dir / "val_recon.mkv"), "--max-frames", str(frames), "--json", "--quiet",
              "--device", str(base.get("device", "auto"))]
    proc = subprocess.run(encode, capture_output=True, text=True)
    if proc.returncode != 0:
        result["error"] = (proc.stderr.strip().splitlines() or ["conversion failed"])[-1]
        return _write(result_path, result)
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(status="ok", bpp=stats["bpp"], psnr=stats["psnr"], encode_fps=stats["encode_fps"],
                  ms_ssim=_ms_ssim(val, run_dir / "val_recon.mkv", frames), seconds=time.time() - start)
    return _write(result_path, result)


def _first(data):
    from oval.data import video_files
    return video_files(data if isinstance(data, list) else [data])[0]


def _ms_ssim(source: str, recon: Path, frames: int) -> float:
    import torch
    from oval.metrics import ms_ssim
    from oval.io import read_frames
    a = torch.from_numpy(np.stack(read_frames(source, frames))).permute(0, 3, 1, 2).float() / 255
    b = torch.from_numpy(np.stack(read_frames(str(recon)))).permute(0, 3, 1, 2).float() / 255
    return ms_ssim(a, b)


def _write(path: Path, result: dict) -> dict:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    return result


RANK_LMBDA = 0.013  # the trade-off points are ranked at, unless the config's rank_lmbda says otherwise


def rank(results: list[dict], lmbda: float = RANK_LMBDA) -> list[dict]:
    """By rate-distortion cost at one λ, λ·255²·MSE + bpp (lower first): the point a codec at that
    trade-off would pick. (PSNR per bit would always favour the lowest rate.)"""
    ok = [r for r in results if r["status"] == "ok"]
    for r in ok:  # Pareto: no other point has fewer bits and more quality
        r["pareto"] = not any(o["bpp"] <= r["bpp"] and o["psnr"] >= r["psnr"] and o is not r
                              and (o["bpp"], o["psnr"]) != (r["bpp"], r["psnr"]) for o in ok)
        r["rd_cost"] = lmbda * 255**2 * 10 ** (-r["psnr"] / 10) + r["bpp"]
    ok.sort(key=lambda r: r["rd_cost"])
    for i, r in enumerate(ok, 1):
        r["rank"] = i
    return ok + [r for r in results if r["status"] != "ok"]


def write_summary(results: list[dict], keys: list, out: Path, lmbda: float = RANK_LMBDA) -> None:
    columns = ["rank", "name", "status", *keys, "bpp", "psnr", "ms_ssim", "encode_fps", "rd_cost", "pareto",
               "error", "run_dir"]
    rows = [{c: r.get(c, r["point"].get(c, "")) for c in columns} for r in results]
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    shown = [c for c in columns if c not in ("run_dir", "error")]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(fmt(row[c]) for c in shown) + " |" for row in rows]
    failed = [f"- {r['name']}: {r.get('error', '')}" for r in results if r["status"] != "ok"]
    text = f"# Sweep results\n\nRanked by rate-distortion cost at λ = {lmbda:g}, λ·255²·MSE + bpp (lower first; " \
           "the config's `rank_lmbda` sets λ); `pareto` marks points no other point beats in both bits and PSNR." \
           "\n\n" + "\n".join(lines) + "\n"
    if failed:
        text += "\n## Failed\n" + "\n".join(failed) + "\n"
    (out / "summary.md").write_text(text)


def write_tensorboard(results: list[dict], out: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter
    for r in results:
        if r["status"] != "ok":
            continue
        hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in r["point"].items()}
        with SummaryWriter(str(out / "tb" / r["name"])) as writer:
            writer.add_hparams(hparams, {f"sweep/{k}": r[k] for k in ("bpp", "psnr", "ms_ssim", "encode_fps")},
                               run_name=".")


def write_plot(results: list[dict], out: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print('note: no RD plot (pip install "oval[sweep]" for matplotlib)', file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in results if r["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([r["bpp"] for r in ok], [r["psnr"] for r in ok], c=["crimson" if r["pareto"] else "grey" for r in ok])
    for r in ok:
        ax.annotate(r["name"], (r["bpp"], r["psnr"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR RGB (dB)")
    ax.set_title("sweep: validation clip (red: Pareto front)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "rd.png", dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m oval.sweep", description=__doc__.splitlines()[2])
    p.add_argument("config", metavar="CONFIG.yaml", help="base arguments and the grid to sweep (YAML)")
    p.add_argument("--out", required=True, help="sweep directory")
    p.add_argument("--jobs", type=int, default=1, help="points trained at once")
    p.add_argument("--dry-run", action="store_true", help="print the training commands and stop")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config)
        out = Path(args.out)
        check_arguments(config, out)
        todo = points(config)
        if args.dry_run:
            for point in todo:
                flags = to_flags({**config["base"], **point, "out": str(out / "runs" / point_name(point))})
                print("python -m oval.train " + " ".join(flags))
            return 0
        out.mkdir(parents=True, exist_ok=True)
        print(f"sweep: {len(todo)} points, {args.jobs} at a time, into {out}", file=sys.stderr)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(lambda pt: run_point(config, pt, out), todo))
        for r in results:
            state = "skipped (done before)" if r.get("skipped") else r["status"]
            detail = f"{r['bpp']:.4f} bpp, {r['psnr']:.2f} dB" if r["status"] == "ok" else r.get("error", "")
            print(f"  {r['name']}: {state}: {detail}", file=sys.stderr)
        lmbda = float(config.get("rank_lmbda", RANK_LMBDA))
        ranked = rank(results, lmbda)
        write_summary(ranked, list((config.get("grid") or {}).keys()), out, lmbda)
        write_tensorboard(ranked, out)
        write_plot(ranked, out)
        print(f"wrote {out / 'summary.md'}", file=sys.stderr)
        return 0 if any(r["status"] == "ok" for r in results) else 1
    except OvalError as e:
        print(f"oval.sweep: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
