"""Validation through the real codec: frames -> .oval bytes -> decoded frames, with the numbers a
person compares models by (coded bpp, PSNR, MS-SSIM). Used by the trainer and by sweeps."""
import io

import numpy as np
import torch

from oval import codec
from oval.metrics import ms_ssim, psnr
from oval.models.store import fingerprint




@torch.no_grad()
def evaluate_frames(model, frames: list, device: torch.device, fps=25, quality=None, intra_period=None) -> dict:
    """Codes `frames` (uint8 HWC RGB) with `model` (tables are rebuilt first) and measures them.
    A temporal model codes them as one group of pictures unless intra_period says otherwise."""
    was_training = model.training
    model.eval()
    model.update()
    model.fingerprint = fingerprint(model)
    h, w = frames[0].shape[:2]
    sink = io.BytesIO()
    if intra_period is None:
        intra_period = 0 if model.temporal else 1
    encoder = codec.Encoder(model, sink, w, h, fps, len(frames), device, quality, intra_period)
    recons = [encoder.encode(f).recon for f in frames]
    encoder.close()
    src = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    rec = torch.from_numpy(np.stack(recons)).permute(0, 3, 1, 2).float() / 255
    bpp = 8 * encoder.bytes_written / (len(frames) * h * w)
    per_frame = [psnr(a, b) for a, b in zip(frames, recons)]
    # The last frame's PSNR: where a P-frame chain that drifts shows first (a 4-frame training run
    # collapsed on 32-frame groups while its 6-frame validation mean still improved).
    out = {"bpp": bpp, "psnr": float(np.mean(per_frame)), "psnr_last": float(per_frame[-1]),
           "ms_ssim": ms_ssim(src, rec), "mse": float(((src - rec) ** 2).mean()),
           "compression_ratio": 24.0 / bpp, "recon": recons[0]}
    out["distortion_per_bit"] = out["mse"] / bpp
    model.train(was_training)
    return out
