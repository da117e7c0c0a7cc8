"""What an oval-rt model costs, for the benchmarks and the model card: multiply-adds per pixel of
each part, and its parameters."""
import numpy as np
import torch
from torch import nn

from oval.models.rt import RTModel


def macs_per_pixel(model: RTModel, height: int = 256, width: int = 256) -> dict:
    """Multiply-adds per pixel of each part, counted on a forward pass. The priors are split into
    the float hyper-analysis (encoder only) and the integer networks (encoder and decoder, float64)."""
    from oval.models.blocks import macs_per_pixel as count
    q = torch.tensor([0])
    x = torch.rand(1, 3, height, width)
    y = torch.zeros(1, model.config.M, height // 8, width // 8)
    f = torch.zeros(1, model.config.C, height // 8, width // 8)
    out = {"analysis_intra": count(model.g_a_intra, height, width, x, q),
           "synthesis_intra": count(model.g_s_intra, height, width, y, q),
           "context": count(model.context, height, width, f) + (
               count(model.motion_stem, height, width, torch.zeros(1, 192, height // 8, width // 8))
               if model.config.motion else 0),
           "analysis_inter": count(model.g_a_inter, height, width, x, q, f),
           "synthesis_inter": count(model.g_s_inter, height, width, y, q, f)}
    for name, prior, args in (("intra", model.prior_intra, (y,)), ("inter", model.prior_inter, (y, y))):
        hyper_analysis = count(prior.h_a, height, width, y)
        out[f"hyper_analysis_{name}"] = hyper_analysis
        out[f"integer_prior_{name}"] = count(prior, height, width, *args) - hyper_analysis
    return out


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(model: RTModel) -> dict:
    """Sizes for the model card."""
    return {"parameters": parameter_count(model),
            "integer_prior_parameters": int(sum(np.prod(m.w_int.shape) for m in model.modules()
                                                if hasattr(m, "w_int")))}
