"""python -m oval.online: encode a live feed while the model keeps learning on it.

Each frame is encoded and written as it arrives; between frames the encoder takes --steps-per-frame
rate-distortion steps on a window of recent frames. With --adapt encoder only what the encoder alone
uses learns (g_a, and a temporal model's encoder adapter): the decoder side is untouched, so the stream's model
fingerprint stays true and the stock oval-decode reads it. --preview writes source | reconstruction
side by side with bpp, PSNR and fps drawn on it, to watch the model learn.
"""
import argparse
import collections
import json
import math
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from oval.errors import OvalError
from oval.files import atomic_output
from oval.losses import rd_loss
from oval.metrics import psnr


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m oval.online", description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="a file, /dev/video0, or an rtsp/http/udp URL")
    p.add_argument("--model", default="default", help="'default', a model file, checkpoint or run directory")
    p.add_argument("-o", "--output", required=True, metavar="OUT.oval", help="the stream to write")
    p.add_argument("--preview", metavar="VIDEO", help="side-by-side video of source and reconstruction")
    p.add_argument("--adapt", default="encoder", choices=("encoder", "full", "none"),
                   help="what learns: the encoder (stock decoder reads the stream as is), full (the decoder's "
                        "pixel-shaping weights too, sent in the stream as MODEL_UPDATE units), or nothing")
    p.add_argument("--update-every", type=int, default=8, metavar="N",
                   help="--adapt full: send the decoder's weight changes every N frames")
    p.add_argument("--update-step", type=int, default=8, metavar="K",
                   help="--adapt full: weight updates are quantised to steps of 2^-K")
    p.add_argument("--steps-per-frame", type=int, default=2, help="adaptation steps between two frames")
    p.add_argument("--window", type=int, default=4, help="recent frames the adaptation steps sample from")
    p.add_argument("--crop", type=int, default=256, help="adaptation crop size (whole frame when smaller)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate of the adaptation (Adam)")
    p.add_argument("--lmbda", type=float, default=None,
                   help="rate-distortion trade-off (default: the model's, at --quality)")
    p.add_argument("--quality", type=int, default=None, metavar="Q", help="quality level, as oval-encode")
    p.add_argument("--intra-period", type=int, default=None, metavar="N", help="as oval-encode")
    p.add_argument("--realtime", action="store_true", help="skip adaptation steps (never frames) to keep up")
    p.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    p.add_argument("--logdir", help="TensorBoard directory")
    p.add_argument("--save-model", metavar="PATH", help="write the adapted model (.safetensors) at the end")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs")
    p.add_argument("--json", action="store_true", help="print one JSON summary object on stdout, last")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary on stderr")
    p.add_argument("--seed", type=int, default=0, help="random seed of the adaptation's crops")
    return p.parse_args(argv)


def encoder_parameters(model) -> list:
    """What only the encoder uses: changing these leaves every decoded frame decodable as before."""
    if hasattr(model, "encoder_parameters"):
        return model.encoder_parameters()
    modules = [model.g_a] + ([model.encoder_adapter] if model.temporal else [])
    return [p for m in modules for p in m.parameters()]


class Adapter:
    """Rate-distortion steps on the encoder over a bounded window of recent frames.

    An intra model learns on crops of the window's frames; a temporal model on the window as one
    clip (first frame intra, the rest P-frames), as it is coded.
    """

    def __init__(self, model, lmbda: float, level: int, lr: float, window: int, crop: int, seed: int,
                 full: bool = False):
        self.model, self.lmbda, self.level, self.crop = model, lmbda, level, crop
        self.frames = collections.deque(maxlen=window)  # bounded: memory stays flat
        self.rng = random.Random(seed)
        for p in model.parameters():
            p.requires_grad_(False)
        # With full adaptation the decoder's weights learn in a shadow copy; frames are coded with
        # the values last sent in the stream, which is all the decoder knows.
        self.decoder_params = model.update_parameters() if full else []
        self.shadow = [p.detach().clone() for p in self.decoder_params]
        self.params = encoder_parameters(model) + self.decoder_params
        for p in self.params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.params, lr=lr)

    def _swap(self, values: list) -> list:
        """Puts `values` into the decoder parameters; returns what was there."""
        old = [p.detach().clone() for p in self.decoder_params]
        with torch.no_grad():
            for p, v in zip(self.decoder_params, values):
                p.copy_(v)
        return old

    def pending_update(self, step_log2: int):
        """The quantised change from the sent decoder weights to the learned ones, or None."""
        from oval.bitstream import ModelUpdate
        from oval.codec import UPDATE_PARAMETER_SET
        if not self.decoder_params:
            return None
        scale = 2.0 ** step_log2
        deltas = torch.cat([((s - p.detach()) * scale).round().flatten()
                            for s, p in zip(self.shadow, self.decoder_params)]).to(torch.int64)
        if not deltas.any():
            return None
        return ModelUpdate(UPDATE_PARAMETER_SET, step_log2, tuple(deltas.tolist()))

    def _batch(self, device) -> torch.Tensor:
        from oval.kernels import frames_to_tensor
        h, w = self.frames[0].shape[:2]
        ch, cw = min(self.crop, h) // 16 * 16, min(self.crop, w) // 16 * 16
        y, x = self.rng.randrange(h - ch + 1), self.rng.randrange(w - cw + 1)
        crops = [torch.from_numpy(np.ascontiguousarray(f[y:y + ch, x:x + cw])) for f in self.frames]
        batch = frames_to_tensor(torch.stack(crops).to(device), self.model.colour_space)
        return batch[None] if self.model.temporal else batch

    def step(self, device) -> float:
        sent = self._swap(self.shadow)
        try:
            return self._step(device)
        finally:
            self.shadow = self._swap(sent)

    def _step(self, device) -> float:
        x = self._batch(device)
        self.model.train()  # noisy quantisation for the rate term
        out = self.model(x, self.level) if self.model.temporal else self.model(x)
        self.model.eval()
        loss = rd_loss(out, x, self.lmbda, self.model.colour_space)["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # the graph ends here: nothing is kept across frames
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        return float(loss.detach())


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, img.width, 14), fill=(0, 0, 0))
    draw.text((3, 2), text, fill=(255, 255, 255))
    return np.asarray(img)


def run(args) -> dict:
    from oval import codec, io
    from oval.device import pick_device
    from oval.models.store import load_model, save_model

    if args.steps_per_frame < 0 or args.window < 1:
        raise OvalError("--steps-per-frame must be >= 0 and --window >= 1")
    out = Path(args.output)
    io.check_output_dir(out)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    reader = io.VideoReader(args.source, args.max_frames)
    model = load_model(args.model, device)
    level = model.default_quality if args.quality is None else args.quality
    try:
        codec.check_quality(model, level)
    except ValueError as e:
        raise OvalError(str(e)) from None
    if args.lmbda is not None:
        lmbda = args.lmbda
    elif model.levels:
        lmbda = model.lambdas[level - 1]
    else:
        lmbda = float(getattr(model, "metadata", {}).get("lmbda", 0.013))
    if args.update_every < 1 or not 0 <= args.update_step <= 30:
        raise OvalError("--update-every must be >= 1 and --update-step 0..30")
    adapter = (Adapter(model, lmbda, level, args.lr, args.window, args.crop, args.seed, full=args.adapt == "full")
               if args.adapt != "none" else None)
    info = reader.info
    fps = float(info.fps)
    tb = None
    if args.logdir:
        from torch.utils.tensorboard import SummaryWriter
        tb = SummaryWriter(args.logdir)
    stats = {"psnr": [], "bytes": [], "steps": [], "loss": [], "update_bytes": []}
    start = time.perf_counter()
    from tqdm import tqdm
    bar = tqdm(total=info.frame_count or None, desc="online", unit="frame", file=sys.stderr,
               disable=args.quiet, dynamic_ncols=True, leave=False, mininterval=0.5)
    try:
        with atomic_output(out) as tmp, open(tmp, "wb") as sink, \
                io.optional_writer(args.preview, 2 * info.width, info.height, info.fps) as preview:
            try:
                encoder = codec.Encoder(model, sink, info.width, info.height, info.fps, info.frame_count,
                                        device, level, args.intra_period)
            except ValueError as e:
                raise OvalError(str(e)) from None
            try:
                for i, rgb in enumerate(reader):
                    model.eval()
                    result = encoder.encode(rgb)
                    sink.flush()  # a source that drops mid-stream leaves every frame so far on disk
                    quality = psnr(rgb, result.recon)
                    stats["psnr"].append(quality)
                    stats["bytes"].append(result.bytes)
                    taken, losses = 0, []
                    if adapter:
                        adapter.frames.append(rgb)
                        for _ in range(args.steps_per_frame):
                            if args.realtime and time.perf_counter() - start > (i + 1) / fps:
                                break  # behind the source's clock: skip learning, never frames
                            losses.append(adapter.step(device))
                            taken += 1
                    stats["steps"].append(taken)
                    stats["loss"] += losses
                    bar.update(1)
                    bar.set_postfix(bpp=f"{8 * result.bytes / (info.width * info.height):.3f}", psnr=f"{quality:.2f}")
                    update = adapter.pending_update(args.update_step) if (
                        adapter and (i + 1) % args.update_every == 0) else None
                    if update is not None:
                        stats["update_bytes"].append(encoder.update_model(update))
                        if tb:
                            tb.add_scalar("online/update_bytes", stats["update_bytes"][-1], i)
                    elapsed = time.perf_counter() - start
                    bpp = 8 * result.bytes / (info.width * info.height)
                    if preview:
                        preview.write(np.concatenate([_label(rgb, "source"), _label(
                            result.recon, f"{bpp:.3f} bpp  {quality:.2f} dB  {(i + 1) / elapsed:.1f} fps")], 1))
                    if tb:
                        tb.add_scalar("online/bpp", bpp, i)
                        tb.add_scalar("online/psnr", quality, i)
                        tb.add_scalar("online/fps", (i + 1) / elapsed, i)
                        tb.add_scalar("online/adaptation_steps", taken, i)
                        if losses:
                            tb.add_scalar("online/adaptation_loss", float(np.mean(losses)), i)
            except (OvalError, KeyboardInterrupt) as e:  # source ended, dropped or Ctrl-C: close cleanly
                if not stats["psnr"]:
                    raise
                reason = str(e) or "interrupted"
                print(f"oval.online: {reason}; closing the stream after {len(stats['psnr'])} frames",
                      file=sys.stderr)
            if not stats["psnr"]:
                raise OvalError(f"no frames could be read from {args.source}")
            encoder.close()
    finally:
        bar.close()
        reader.close()
        if tb:
            tb.close()
    elapsed = time.perf_counter() - start
    if args.save_model:
        save_model(model, args.save_model, {"adapted_from": model.source_path, "lmbda": lmbda})
    n = len(stats["psnr"])
    n_bytes = out.stat().st_size
    finite = [v for v in stats["psnr"] if math.isfinite(v)]
    return {"frames": n, "width": info.width, "height": info.height, "bytes": n_bytes,
            "bpp": 8 * n_bytes / (n * info.width * info.height), "kbps": 8 * n_bytes * fps / n / 1000,
            "psnr": float(np.mean(finite)) if finite else None, "encode_fps": n / elapsed,
            "adapt": args.adapt, "adaptation_steps": int(sum(stats["steps"])),
            "quality": level, "updates": len(stats["update_bytes"]), "update_bytes": int(sum(stats["update_bytes"])),
            "update_bpp": 8 * sum(stats["update_bytes"]) / (n * info.width * info.height),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "output": str(out)}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except OvalError as e:
        print(f"oval.online: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("oval.online: interrupted", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"online: {result['frames']} frames, {result['bpp']:.4f} bpp (model updates {result['update_bpp']:.4f}), "
              f"PSNR {result['psnr']:.2f} dB, {result['encode_fps']:.1f} fps, "
              f"{result['adaptation_steps']} adaptation steps", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
