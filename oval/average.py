"""Averages the weights of models trained from one starting point: a model soup (Wortsman et al.
2022). Runs fine-tuned from the same weights with different seeds stay in one basin of the loss,
so their mean is a model too, often better than each (two cores can train two slices at once).

    python -m oval.average RUN_A RUN_B [...] --out averaged.safetensors

Only the float parameters are averaged; the integer prior networks and coding tables are rebuilt
from the averaged weights (RTModel.update), so the result decodes exactly like any trained model.
"""
import argparse
import json
import sys

import torch

from oval.errors import OvalError
from oval.models.store import fingerprint, load_model, save_model


def average_models(models: list) -> torch.nn.Module:
    """The first model, its float parameters replaced by the mean over all; the others must share
    its architecture, config and parameter shapes."""
    if len(models) < 2:
        raise OvalError("averaging needs two models or more")
    first = models[0]
    for other in models[1:]:
        if other.arch != first.arch or other.config != first.config:
            raise OvalError(f"{other.source_path} is not the architecture and config of {first.source_path}: "
                            "only runs from one starting point average into a model")
    params = [dict(m.named_parameters()) for m in models]
    with torch.no_grad():
        for name, tensor in params[0].items():
            tensor.copy_(torch.stack([p[name].detach() for p in params]).mean(0))
    first.update()
    first.fingerprint = fingerprint(first)
    return first


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m oval.average", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="MODEL", help="model files or training run directories")
    p.add_argument("--out", required=True, help="the averaged model (.safetensors)")
    args = p.parse_args(argv)
    try:
        models = [load_model(spec) for spec in args.models]
        averaged = average_models(models)
        meta = {k: v for k, v in models[0].metadata.items() if k in ("stage", "data", "p_frames_trained")}
        meta["averaged_from"] = json.dumps([m.metadata.get("steps", "") for m in models])
        save_model(averaged, args.out, meta)
    except OvalError as e:
        print(f"oval.average: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: the mean of {len(models)} models, fingerprint {averaged.fingerprint.hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
