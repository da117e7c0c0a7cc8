"""python -m oval.train: train a model on a corpus or on video files (see README "Training").

Loss = λ · D + R: R in bits per pixel from the entropy model's likelihoods, D = 255² · MSE (or
1 - MS-SSIM); a multi-rate model draws a quality level, and so a λ, for every sample. Data comes
from a corpus (python -m oval.corpus build: photos with synthetic camera motion mixed with real
clips, rendered on the training device) or from video files (background loader threads).
Validation codes a held-out clip through the real entropy coder. RUN_DIR gets config.json,
TensorBoard events in logs/, checkpoints/last.pt and state/ (both resumable; state/ is compact
enough to commit), best.pt (lowest validation RD cost), slices.jsonl (one line per training slice)
and model.safetensors at the end. `--hours` stops cleanly at a wall-clock budget. Under torchrun
every process trains on its own shard of the data; rank 0 logs and saves.
"""
import dataclasses
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from oval import checkpoint, distributed
from oval.data import PrefetchLoader, usable_files, video_files
from oval.device import pick_device
from oval.errors import OvalError
from oval.io import read_frames
from oval.kernels import frames_to_tensor
from oval.losses import rd_loss
from oval.models.blocks import DepthConvBlock
from oval.models.store import P_FRAMES_TRAINED, build_model, save_model
from oval.train_config import TrainConfig, check_resume_keys, model_config, parse_args

def make_loader(cfg: TrainConfig, files: list, d: distributed.Dist):
    """Each rank reads its own shard of the files (or, with fewer files than ranks, its own seed)."""
    if files is None:  # a corpus: every rank renders its own batches from its own seed
        from oval.corpus.loader import CorpusLoader
        from oval.corpus.sources import FOOTAGE, PHOTO
        return CorpusLoader(cfg.data[0], cfg.crop, cfg.batch_size, cfg.frames + cfg.lead_frames, "train", d.device,
                            {PHOTO: cfg.photo_share, FOOTAGE: 1 - cfg.photo_share}, cfg.max_frames,
                            seed=cfg.seed + d.rank, progress=d.main, flat_share=cfg.flat_share)
    shard = files[d.rank::d.world] if len(files) >= d.world else files
    if cfg.loader == "dali" and cfg.frames > 1:
        raise OvalError("--loader dali reads single frames; use --loader pyav with --frames > 1")
    if cfg.loader in ("dali", "auto") and cfg.frames == 1:
        from oval import dali_loader
        if dali_loader.usable(shard, d.device) or cfg.loader == "dali":
            return dali_loader.DaliLoader(shard, cfg.crop, cfg.batch_size, d.device, seed=cfg.seed + d.rank)
    return PrefetchLoader(shard, cfg.crop, cfg.batch_size, cfg.max_frames, workers=cfg.workers,
                          seed=cfg.seed + d.rank, clip_length=cfg.frames + cfg.lead_frames)


def init_from(model, spec: str) -> tuple[int, str]:
    """Copies the tensors of a trained model whose names and shapes match; an intra model's
    factorized density seeds every quality level's. -> (how many tensors were copied, the stage
    the source was trained in, '' where unknown; "intra" where its P-frames code another signal;
    "inter" for an intra-stage run whose P-frames came trained from its own --init)."""
    from oval.models.store import load_model
    loaded = load_model(spec)
    metadata = getattr(loaded, "metadata", {})
    stage = metadata.get("stage", "")
    if stage == "intra" and metadata.get(P_FRAMES_TRAINED) == "1":
        stage = "inter"
    if getattr(getattr(loaded, "config", None), "residual", False) != getattr(model.config, "residual", False):
        stage = "intra"  # its P-frames code something else: only its intra half carries over
    source = loaded.state_dict()
    target = model.state_dict()
    copied = {}
    for name, tensor in target.items():
        candidates = [name]
        if name.startswith("intra_densities."):
            candidates.append("entropy_bottleneck." + name.split(".", 2)[2])
        for key in candidates:
            if key in source and source[key].shape == tensor.shape and "table_" not in key:
                copied[name] = source[key]
                break
    model.load_state_dict(copied, strict=False)
    if not copied:
        raise OvalError(f"--init {spec}: no tensor matches {model.arch}")
    for prefix, module in model.named_modules():  # blocks the source lacks (a deeper network) start as identities
        if isinstance(module, DepthConvBlock) and not any(f"{prefix}.{n}" in copied for n, _ in module.named_parameters()):
            module.become_identity()
    return len(copied), stage


def to_model_input(frames: torch.Tensor, cfg: TrainConfig, noise: float = 0.0) -> torch.Tensor:
    """uint8 (B, [T,] H, W, 3) -> float (B, [T,] 3, H, W) in the model's colour space."""
    lead = frames.shape[:-3]
    x = frames_to_tensor(frames.reshape(-1, *frames.shape[-3:]), cfg.colour_space, noise=noise)
    return x.reshape(*lead, *x.shape[1:])


def lr_at(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Short linear warm-up, then cosine decay to min_lr over the steps (or, with --steps 0, over
    the --hours budget: time_fraction is the share of it used)."""
    warm = 200 if cfg.steps == 0 else min(200, cfg.steps // 10)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = min(1.0, time_fraction if cfg.steps == 0 else (step - warm) / max(1, cfg.steps - warm))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t))


def save_checkpoint(path: Path, model, optimizer, step: int, train_config: dict, rng: random.Random,
                    best: float, schedule_seconds: float = 0.0) -> None:
    tmp = path.with_name(path.name + ".part")
    torch.save({"arch": model.arch, "model_config": dataclasses.asdict(model.config),
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "best": best, "schedule_seconds": schedule_seconds, "train_config": train_config,
                "torch_rng": torch.get_rng_state(), "py_rng": rng.getstate()}, tmp)  # nested tuples of ints: safe for weights_only loading
    os.replace(tmp, path)


def load_checkpoint(path: Path, cfg: TrainConfig, model, optimizer,
                    rng: random.Random) -> tuple[int, float, float, dict]:
    """-> (step, best, schedule_seconds, the run's saved train_config)"""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    check_resume_keys(ckpt.get("train_config", {}), cfg, path)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["torch_rng"])
    version, state, gauss = ckpt["py_rng"]
    rng.setstate((version, tuple(state), gauss))
    return (ckpt["step"], ckpt.get("best", float("inf")), float(ckpt.get("schedule_seconds", 0.0)),
            ckpt.get("train_config", {}))


class Logger:
    """TensorBoard (rank 0 only) plus a line on stderr per log interval."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "logs"))

    def scalars(self, step: int, values: dict, prefix: str) -> None:
        if self.tb:
            for k, v in values.items():
                if v is not None and math.isfinite(v):
                    self.tb.add_scalar(f"{prefix}/{k}", v, step)

    def validation(self, step: int, stats: dict, source: np.ndarray, latents: torch.Tensor) -> None:
        if not self.tb:
            return
        self.scalars(step, {k: v for k, v in stats.items() if k != "recon"}, "val")
        recon = stats["recon"]
        error = np.clip(np.abs(source.astype(np.int16) - recon.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        self.tb.add_image("val/original|reconstruction|error", np.concatenate([source, recon, error], 1),
                          step, dataformats="HWC")
        self.tb.add_histogram("val/latents", latents, step)

    def close(self, hparams: dict, metrics: dict) -> None:
        if self.tb:
            self.tb.add_hparams(hparams, metrics, run_name="hparams")
            self.tb.close()


def validate(model, frames, d, logger, step, intra_only: bool = False) -> dict:
    """Codes the validation frames through the real codec: as one group of pictures, or all intra
    when only the intra model is being trained (its P-frame half is still untrained)."""
    from oval.evaluate import evaluate_frames
    stats = evaluate_frames(model, frames, d.device, intra_period=1 if intra_only else None)
    if hasattr(model, "g_a"):
        with torch.no_grad():
            latents = model.g_a(frames_to_tensor(torch.from_numpy(frames[0]).to(d.device))).round().cpu()
    else:
        latents = torch.zeros(1)
    logger.validation(step, stats, frames[0], latents)
    return stats


def machine_name(device: torch.device) -> str:
    cpu = f"{platform.machine()} CPU, {os.cpu_count()} cores"
    return f"{torch.cuda.get_device_name(device)} + {cpu}" if device.type == "cuda" else cpu


def validation_clip(cfg: TrainConfig, files) -> str:
    if cfg.val:
        return cfg.val
    if files is not None:
        return str(files[0])
    from oval.corpus.build import load_manifest
    manifest = load_manifest(Path(cfg.data[0]))
    clips = [i for i in manifest["items"] if i["split"] == "val" and i["kind"] == "footage"]
    if not clips:
        raise OvalError(f"{cfg.data[0]} has no validation clip: pass --val CLIP")
    return str(Path(cfg.data[0]) / clips[0]["path"])


def next_input(loader, cfg: TrainConfig, cuda: bool) -> tuple[torch.Tensor, torch.Tensor, list]:
    """-> (clean target, model input (noisy when --noise), source name of each sample)."""
    batch = loader.next_batch()
    if isinstance(batch, tuple):  # a corpus: float RGB clips (B, T, 3, h, w), already on the device
        x, sources = batch
        if cfg.frames == 1 and cfg.arch != "oval-rt":
            x = x[:, 0]
        if cfg.colour_space != "rgb":
            from oval.kernels import to_model_space
            x = to_model_space(x.flatten(0, -4), cfg.colour_space).view_as(x)
        x_in = (x + cfg.noise * torch.randn_like(x)).clamp(0, 1) if cfg.noise > 0 else x
    else:
        frames = batch.to(loader_device(loader), non_blocking=True)
        x = to_model_input(frames, cfg)  # the target is always the clean frame
        x_in = to_model_input(frames, cfg, cfg.noise) if cfg.noise > 0 else x
        if cfg.arch == "oval-rt" and x.dim() == 4:
            x, x_in = x[:, None], x_in[:, None]
        sources = ["data"] * x.shape[0]
    if cuda and x.dim() == 4:
        x, x_in = (t.contiguous(memory_format=torch.channels_last) for t in (x, x_in))
    return x, x_in, sources


def loader_device(loader) -> torch.device:
    return getattr(loader, "device", torch.device("cpu"))


def prepare_model(cfg: TrainConfig, resume: bool, d: distributed.Dist, rng: random.Random, out: Path):
    """The model to train, on its device, with its optimizer: fresh, initialised from another
    model, or resumed (full checkpoint, else the compact state).
    -> (model, optimizer, step, best, schedule_seconds already trained)."""
    model = build_model(cfg.arch, model_config(cfg))
    if model.levels and cfg.lmbda != TrainConfig(data=[], out="").lmbda:
        raise OvalError(f"--lmbda does not apply to {cfg.arch}: it trains each of its {model.levels} quality "
                        f"levels at its own λ ({', '.join(f'{x:g}' for x in model.lambdas)})")
    init_stage = ""
    if cfg.init and not resume:
        copied, init_stage = init_from(model, cfg.init)
        print(f"initialised {copied} tensors from {cfg.init}", file=sys.stderr)
    if cfg.backbone_weights and not resume:
        from oval.models.backbone import load_resnet_stem
        load_resnet_stem(model.g_a[0], cfg.backbone_weights)
    model = model.to(d.device)
    model.set_mixed_quantization(cfg.quantizer == "mixed")
    rt = cfg.arch == "oval-rt"
    if not rt and getattr(model, "temporal", False) != (cfg.frames > 1):
        raise OvalError(f"{cfg.arch} trains on " + ("clips: pass --frames 2 or more" if model.temporal
                                                    else "single frames: drop --frames"))
    if rt and cfg.stage == "inter" and cfg.init and not resume and init_stage not in ("inter", "joint"):
        # From an intra model (or one whose P-frames code another signal): P-frames start as good as
        # I-frames, the context switched off. From a model whose P-frames were trained (a new part
        # such as motion added), its P-frames go on.
        model.warm_start_inter()
        print("P-frame half warm-started as a copy of the intra half", file=sys.stderr)
    if rt and cfg.stage == "inter":  # the intra model is frozen: its transforms and prior take no steps
        for module in (model.g_a_intra, model.g_s_intra, model.prior_intra):
            module.requires_grad_(False)
        model.gain_intra.requires_grad_(False)
        model.inverse_gain_intra.requires_grad_(False)
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    new = [p for n, p in trained if cfg.new_part and n.startswith(cfg.new_part)]
    if cfg.new_part and not new:
        raise OvalError(f"--new-part {cfg.new_part}: no trained parameter of {cfg.arch} starts with it")
    groups = [{"params": [p for n, p in trained if not (cfg.new_part and n.startswith(cfg.new_part))], "lr_scale": 1.0}]
    if new:
        groups.append({"params": new, "lr_scale": cfg.new_part_lr_scale})
    optimizer = torch.optim.Adam(groups, lr=cfg.lr)
    step, best, schedule_seconds = 0, float("inf"), 0.0
    p_frames_trained = cfg.stage != "intra" or init_stage in ("inter", "joint")
    if resume:
        last = out / "checkpoints" / "last.pt"
        if last.is_file():
            step, best, schedule_seconds, saved = load_checkpoint(last, cfg, model, optimizer, rng)
        elif checkpoint.has_state(out):
            step, best, saved, schedule_seconds = checkpoint.load_state(out, model, optimizer, rng)
            check_resume_keys(saved, cfg, out / checkpoint.STATE_DIR)
        else:
            raise OvalError(f"nothing to resume: neither {last} nor {out / checkpoint.STATE_DIR} exists")
        p_frames_trained = cfg.stage != "intra" or bool(saved.get(P_FRAMES_TRAINED, False))
    return model, optimizer, step, best, schedule_seconds, p_frames_trained


class Statistics:
    """Running means of the training scalars, overall and per data source, between log lines."""

    def __init__(self):
        self.sums, self.seen, self.per_source, self.t0 = {"loss": 0.0, "bpp": 0.0, "psnr": 0.0}, 0, {}, time.time()

    def add(self, losses: dict, sources: list) -> None:
        self.seen += 1
        for k, v in (("loss", losses["loss"].item()), ("bpp", losses["bpp"].item()),
                     ("psnr", -10 * math.log10(max(losses["mse"].item(), 1e-10)))):
            self.sums[k] += v
        for name, b, m in zip(sources, losses["bpp_each"].tolist(), losses["mse_each"].tolist()):
            acc = self.per_source.setdefault(name, [0.0, 0.0, 0])
            acc[0] += b
            acc[1] += -10 * math.log10(max(m, 1e-10))
            acc[2] += 1

    def flush(self, step: int, logger: "Logger", extra: dict, crops_per_step: int) -> dict:
        """Writes the interval's means to TensorBoard, returns them, and starts a new interval."""
        elapsed = time.time() - self.t0
        stats = {k: v / max(1, self.seen) for k, v in self.sums.items()}
        stats.update(extra, frames_per_s=self.seen * crops_per_step / elapsed, steps_per_s=self.seen / elapsed)
        logger.scalars(step, stats, "train")
        for name, (b, p, n) in self.per_source.items():
            logger.scalars(step, {"bpp": b / n, "psnr": p / n, "samples": n}, f"source/{name}")
        self.__init__()
        return stats


def train(cfg: TrainConfig, resume: bool = False) -> Optional[Path]:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.time()
    d = distributed.init(pick_device(cfg.device))
    out = Path(cfg.out)
    from oval.corpus.build import is_corpus
    corpus = len(cfg.data) == 1 and is_corpus(cfg.data[0])
    files = None if corpus else usable_files(video_files(cfg.data), cfg.crop)
    val_frames = read_frames(validation_clip(cfg, files), cfg.val_frames)
    if d.main:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + d.rank)
    rng = random.Random(cfg.seed)
    model, optimizer, step, best, trained_before, p_frames_trained = prepare_model(cfg, resume, d, rng, out)
    saved_config = dict(dataclasses.asdict(cfg), **{P_FRAMES_TRAINED: p_frames_trained})
    rt = cfg.arch == "oval-rt"
    last, best_path = out / "checkpoints" / "last.pt", out / "checkpoints" / "best.pt"
    start_step = step
    if d.main:
        (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    cuda = d.device.type == "cuda"
    if cuda:
        if not rt:  # oval-rt's work is 1x1 convolutions on 5-D clips: nothing to gain
            model = model.to(memory_format=torch.channels_last)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # training only
    step_model = distributed.wrap(model, d)
    if cfg.compile:
        step_model = torch.compile(step_model)
    loader = make_loader(cfg, files, d)
    logger = Logger(out, d.main)
    from tqdm import tqdm
    bar = tqdm(total=cfg.steps or None, initial=step, desc="train", unit="step", file=sys.stderr,
               disable=not d.main, dynamic_ncols=True, mininterval=2.0)
    model.train()
    # --hours is the whole run's budget: a resumed run spends what is left of it and carries on
    # down the same learning-rate curve.
    deadline = started + cfg.hours * 3600 - trained_before if cfg.hours > 0 else float("inf")

    def schedule_seconds() -> float:
        return trained_before + time.time() - started
    statistics, skipped, val, last_save = Statistics(), 0, {}, time.time()

    def save_all() -> None:
        save_checkpoint(last, model, optimizer, step, saved_config, rng, best, schedule_seconds())
        checkpoint.save_state(out, model, optimizer, step, saved_config, rng, best, schedule_seconds())

    try:
        while (step < cfg.steps or cfg.steps == 0) and time.time() < deadline:
            used = schedule_seconds() / (cfg.hours * 3600) if cfg.hours > 0 else 0.0
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg, used) * group.get("lr_scale", 1.0)
            x, x_in, sources = next_input(loader, cfg, cuda)
            # A multi-rate model draws a quality level, and so a λ, for every sample.
            if model.levels:
                levels = torch.tensor([rng.randint(1, model.levels) for _ in range(x.shape[0])], device=x.device)
                lmbda = torch.tensor(model.lambdas, device=x.device)[levels - 1]
            else:
                levels, lmbda = None, cfg.lmbda
            # With lead frames, the I-frame and a drawn number of P-frames only make the reference.
            untrained = 1 + rng.randint(0, cfg.lead_frames) if cfg.lead_frames else 0
            if untrained:
                end = untrained + cfg.frames - 1
                x_in, x = x_in[:, :end], x[:, untrained:end]
            with torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=cuda):
                if rt:
                    coded = step_model(x_in, levels, train_intra=cfg.stage != "inter", untrained=untrained)
                else:
                    coded = step_model(x_in, int(levels[0])) if levels is not None else step_model(x_in)
                    if levels is not None:
                        lmbda = lmbda[0]
                losses = rd_loss(coded, x, lmbda, cfg.colour_space, cfg.distortion)
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if not distributed.all_finite(losses["loss"].detach(), d):
                skipped += 1  # skip a bad step rather than let it poison the weights
                continue
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            optimizer.step()
            statistics.add(losses, sources)
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                stats = statistics.flush(step, logger, {"lr": optimizer.param_groups[0]["lr"], "skipped": skipped,
                                                        "data_wait_fraction": loader.wait_fraction()},
                                         cfg.batch_size * d.world)
                bar.set_postfix(loss=f"{stats['loss']:.3f}", bpp=f"{stats['bpp']:.3f}", psnr=f"{stats['psnr']:.2f}")
                if d.main:
                    bar.write(f"step {step}/{cfg.steps}  loss {stats['loss']:.4f}  bpp {stats['bpp']:.4f}  "
                              f"psnr {stats['psnr']:.2f}  lr {stats['lr']:.2e}  {stats['steps_per_s']:.2f} steps/s  "
                              f"{stats['frames_per_s']:.0f} crops/s  data wait {stats['data_wait_fraction']:.1%}",
                              file=sys.stderr)
            if d.main and (step % cfg.val_every == 0 or step == cfg.steps):
                val = validate(model, val_frames, d, logger, step, rt and cfg.stage == "intra")
                q = model.default_quality
                lmbda_val = model.lambdas[q - 1] if model.levels else cfg.lmbda
                cost = lmbda_val * 255**2 * val["mse"] + val["bpp"]
                if cost < best:
                    best = cost
                    save_checkpoint(best_path, model, optimizer, step, saved_config, rng, best, schedule_seconds())
            if d.main and (step % cfg.save_every == 0 or time.time() - last_save > 60 * cfg.save_minutes):
                save_all()
                last_save = time.time()
    except KeyboardInterrupt:
        if d.main:
            save_all()
            record_slice(out, cfg, start_step, step, time.time() - started, d.device, val)
            print(f"\ninterrupted: saved step {step} to {last} (continue with --resume)", file=sys.stderr)
        raise
    finally:
        bar.close()
        loader.close()
    distributed.barrier(d)
    result = None
    if d.main:
        if step > start_step and step % cfg.val_every:
            val = validate(model, val_frames, d, logger, step, rt and cfg.stage == "intra")
        save_all()
        model.eval()
        model.update()
        meta = {"steps": step, "data": " ".join(cfg.data), "stage": cfg.stage if rt else ""}
        if rt:
            meta[P_FRAMES_TRAINED] = "1" if p_frames_trained else "0"
        if not model.levels:
            meta["lmbda"] = cfg.lmbda
        save_model(model, out / "model.safetensors", meta)
        hparams = {k: v for k, v in dataclasses.asdict(cfg).items() if isinstance(v, (int, float, str, bool))}
        logger.close(hparams, {"hparam/val_bpp": val.get("bpp", float("nan")),
                               "hparam/val_psnr": val.get("psnr", float("nan"))})
        record_slice(out, cfg, start_step, step, time.time() - started, d.device, val)
        print(f"wrote {out / 'model.safetensors'}", file=sys.stderr)
        result = out / "model.safetensors"
    distributed.shutdown(d)
    return result


def record_slice(out: Path, cfg: TrainConfig, start_step: int, end_step: int, seconds: float,
                 device: torch.device, val: dict) -> None:
    """One line per training slice in RUN_DIR/slices.jsonl: what the model card and its plot use.
    A resume that trains no step (its budget already spent) only re-exports the model: no slice."""
    import datetime
    if end_step <= start_step:
        return
    line = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "stage": cfg.stage, "start_step": start_step, "end_step": end_step,
            "wall_hours": round(seconds / 3600, 4), "machine": machine_name(device), "device": device.type,
            "data": " ".join(cfg.data), "frames": cfg.frames, "lead_frames": cfg.lead_frames, "crop": list(cfg.crop), "batch_size": cfg.batch_size,
            "val_bpp": val.get("bpp"), "val_psnr": val.get("psnr"), "val_psnr_last": val.get("psnr_last")}
    with open(out / "slices.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def main(argv=None) -> int:
    import signal
    # A slice stopped by `kill` (SIGTERM) saves and logs itself like one stopped by Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        cfg, resume = parse_args(argv)
        train(cfg, resume)
    except OvalError as e:
        print(f"oval.train: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
