"""python -m oval.train: train a model on video files (minimal loop; see README "Training").

Loss = lmbda * 255^2 * MSE + bpp, with bpp from the entropy model's likelihoods. Frames are
decoded once into memory (plus a half-size copy, so the model also sees coarser detail) and
random crops are drawn each step. Writes RUN_DIR/config.json, RUN_DIR/checkpoints/last.pt
(resumable) and, at the end, RUN_DIR/model.safetensors with the entropy tables built.
"""
import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from oval.device import pick_device
from oval.errors import OvalError
from oval.io import read_frames
from oval.kernels import frames_to_tensor
from oval.models.store import build_model, save_model


@dataclasses.dataclass
class TrainConfig:
    data: list
    out: str
    arch: str = "oval-factorized"
    N: int = 64
    M: int = 96
    steps: int = 5000
    batch_size: int = 8
    crop: int = 128
    lmbda: float = 0.013
    lr: float = 3e-4
    min_lr: float = 1e-5
    clip: float = 1.0
    max_frames: int = 300
    device: str = "auto"
    seed: int = 0
    log_every: int = 100
    save_every: int = 1000


def parse_args(argv=None) -> tuple[TrainConfig, bool]:
    p = argparse.ArgumentParser(prog="python -m oval.train", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", required=True, help="video files or directories of them")
    p.add_argument("--out", required=True, help="run directory")
    defaults = TrainConfig(data=[], out="")
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("data", "out"):
            continue
        p.add_argument("--" + field.name.replace("_", "-"), type=type(getattr(defaults, field.name)),
                       default=getattr(defaults, field.name))
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    args = vars(p.parse_args(argv))
    resume = args.pop("resume")
    return TrainConfig(**args), resume


def video_files(paths: list) -> list[Path]:
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in (".mp4", ".mkv", ".webm", ".avi", ".mov", ".y4m"))
        elif p.is_file():
            files.append(p)
        else:
            raise OvalError(f"data path not found: {p}")
    if not files:
        raise OvalError("no video files in --data")
    return files


def load_frames(cfg: TrainConfig) -> list[torch.Tensor]:
    """uint8 (H, W, 3) frames of every clip, and a half-size copy of each, big enough to crop."""
    frames = []
    for path in video_files(cfg.data):
        try:
            clip = read_frames(str(path), cfg.max_frames)
        except OvalError as e:
            print(f"warning: skipping {path}: {e}", file=sys.stderr)
            continue
        for f in clip:
            full = torch.from_numpy(f)
            frames.append(full)
            half = F.interpolate(full.permute(2, 0, 1)[None].float(), scale_factor=0.5, mode="area",
                                 antialias=False)[0].round().byte().permute(1, 2, 0).contiguous()
            frames.append(half)
    frames = [f for f in frames if min(f.shape[:2]) >= cfg.crop]
    if not frames:
        raise OvalError(f"no readable frames of at least {cfg.crop}x{cfg.crop} in --data")
    return frames


def random_batch(frames: list, cfg: TrainConfig, rng: random.Random) -> torch.Tensor:
    crops = []
    for _ in range(cfg.batch_size):
        f = frames[rng.randrange(len(frames))]
        y, x = rng.randrange(f.shape[0] - cfg.crop + 1), rng.randrange(f.shape[1] - cfg.crop + 1)
        crop = f[y:y + cfg.crop, x:x + cfg.crop]
        crops.append(crop.flip(1) if rng.random() < 0.5 else crop)
    return frames_to_tensor(torch.stack(crops))


def rd_loss(out: dict, x: torch.Tensor, lmbda: float) -> dict:
    num_pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bpp = sum(torch.log2(lik).sum() for lik in out["likelihoods"].values()) / -num_pixels
    mse = F.mse_loss(out["x_hat"], x)
    return {"loss": lmbda * 255**2 * mse + bpp, "bpp": bpp, "mse": mse}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Short linear warm-up, then cosine decay to min_lr."""
    warm = min(200, cfg.steps // 10)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def save_checkpoint(path: Path, model, optimizer, step: int, cfg: TrainConfig, rng: random.Random) -> None:
    tmp = path.with_name(path.name + ".part")
    torch.save({"arch": model.arch, "model_config": dataclasses.asdict(model.config),
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "train_config": dataclasses.asdict(cfg), "torch_rng": torch.get_rng_state(),
                "py_rng": rng.getstate()}, tmp)  # nested tuples of ints: safe for weights_only loading
    os.replace(tmp, path)


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    device = pick_device(cfg.device)
    out = Path(cfg.out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    model = build_model(cfg.arch, {"N": cfg.N, "M": cfg.M}).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step = 0
    last = out / "checkpoints" / "last.pt"
    if resume and last.is_file():
        ckpt = torch.load(str(last), map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        torch.set_rng_state(ckpt["torch_rng"])
        version, state, gauss = ckpt["py_rng"]
        rng.setstate((version, tuple(state), gauss))
    frames = load_frames(cfg)
    print(f"training {cfg.arch} on {len(frames)} frames, {cfg.steps} steps, device {device}", file=sys.stderr)
    model.train()
    t0, seen, skipped = time.time(), 0, 0
    stats = {"loss": 0.0, "bpp": 0.0, "psnr": 0.0}
    while step < cfg.steps:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        x = random_batch(frames, cfg, rng).to(device)
        losses = rd_loss(model(x), x, cfg.lmbda)
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(losses["loss"]):
            skipped += 1  # a bad step is skipped rather than allowed to poison the weights
            step += 1
            continue
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        optimizer.step()
        step += 1
        seen += 1
        stats["loss"] += losses["loss"].item()
        stats["bpp"] += losses["bpp"].item()
        stats["psnr"] += -10 * math.log10(max(losses["mse"].item(), 1e-10))
        if step % cfg.log_every == 0 or step == cfg.steps:
            rate = seen / (time.time() - t0)
            print(f"step {step}/{cfg.steps}  loss {stats['loss'] / seen:.4f}  bpp {stats['bpp'] / seen:.4f}  "
                  f"psnr {stats['psnr'] / seen:.2f}  lr {lr_at(step, cfg):.2e}  {rate:.1f} steps/s  "
                  f"skipped {skipped}", file=sys.stderr, flush=True)
            t0, seen = time.time(), 0
            stats = dict.fromkeys(stats, 0.0)
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(last, model, optimizer, step, cfg, rng)
    model.eval()
    model.update()
    save_model(model, out / "model.safetensors", {"lmbda": cfg.lmbda, "steps": step,
                                                   "data": ",".join(map(str, cfg.data))})
    print(f"wrote {out / 'model.safetensors'}", file=sys.stderr)
    return out / "model.safetensors"


def main(argv=None) -> int:
    try:
        cfg, resume = parse_args(argv)
        train(cfg, resume)
    except OvalError as e:
        print(f"oval.train: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("oval.train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
