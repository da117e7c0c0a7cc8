"""Picture quality measures, one home for each: PSNR of uint8 frames, MS-SSIM of float tensors."""
import numpy as np


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two pictures (pixel values 0..255)."""
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = mse(a, b)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def ms_ssim(a, b) -> float:
    """MS-SSIM of float NCHW tensors in [0, 1]; a smaller window so small crops and clips fit."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    win = 7 if min(a.shape[-2:]) > 6 * 16 else 3
    if min(a.shape[-2:]) <= (win - 1) * 16:
        return float("nan")  # too small for five scales
    return float(_ms_ssim(a.float(), b.float(), data_range=1.0, win_size=win))
