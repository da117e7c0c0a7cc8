"""Training state that survives a new machine: compact, resumable, safe to load.

A run's state is kept as safetensors files small enough to commit and to carry between machines
(each shard at most SHARD_BYTES): the model's float tensors in float32 (integer buffers and entropy
tables are rebuilt by `model.update()`), Adam's moments in bfloat16, and a JSON file with the step,
the training config and the random-number state. `--resume` reads it when the full checkpoint
(checkpoints/last.pt) is not there, for example on a fresh machine after a clone.
"""
import json
import os
import random
from pathlib import Path

import torch

from oval.errors import OvalError
from oval.files import atomic_output

SHARD_BYTES = 12 * 2**20
STATE_DIR = "state"


def _derived(name: str) -> bool:
    """Buffers rebuilt from the float weights: integer prior weights and entropy tables."""
    leaf = name.rsplit(".", 1)[-1]
    return leaf in ("w_int", "b_int", "shift") or leaf.startswith("table_") or leaf == "scale_table"


def _write_shards(tensors: dict, folder: Path, stem: str) -> list:
    from safetensors.torch import save_file
    shards, current, size = [], {}, 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if current and size + t.numel() * t.element_size() > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[name] = t
        size += t.numel() * t.element_size()
    shards.append(current)
    names = []
    for i, shard in enumerate(shards):
        path = folder / f"{stem}-{i:02d}.safetensors"
        with atomic_output(path) as tmp:
            save_file(shard, str(tmp))
        names.append(path.name)
    return names


def _read_shards(folder: Path, names: list) -> dict:
    from safetensors.torch import load_file
    out = {}
    for name in names:
        try:
            out.update(load_file(str(folder / name)))
        except Exception as e:
            raise OvalError(f"cannot read training state {folder / name}: {str(e).splitlines()[0]}") from None
    return out


def save_state(run_dir: Path, model, optimizer, step: int, train_config: dict, rng: random.Random,
               best: float, schedule_seconds: float = 0.0) -> Path:
    """schedule_seconds: wall-clock time trained so far, so that a resumed --hours run continues its
    learning-rate schedule instead of restarting it."""
    folder = Path(run_dir) / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v for k, v in model.state_dict().items() if not _derived(k)}
    names = list(dict(model.named_parameters()))
    moments = {}
    for i, p in enumerate(model.parameters()):
        state = optimizer.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                moments[f"{names[i]}|{key}"] = state[key].to(torch.bfloat16)
    steps = {names[i]: float(optimizer.state[p]["step"]) for i, p in enumerate(model.parameters())
             if "step" in optimizer.state.get(p, {})}
    import dataclasses
    meta = {"step": step, "best": best, "schedule_seconds": schedule_seconds, "arch": model.arch,
            "model_config": dataclasses.asdict(model.config),
            "train_config": train_config,
            "weights": _write_shards(weights, folder, "weights"),
            "moments": _write_shards(moments, folder, "adam") if moments else [],
            "adam_steps": steps, "py_rng": [rng.getstate()[0], list(rng.getstate()[1]), rng.getstate()[2]]}
    tmp = folder / "state.json.part"
    tmp.write_text(json.dumps(meta))
    os.replace(tmp, folder / "state.json")
    return folder


def has_state(run_dir: Path) -> bool:
    return (Path(run_dir) / STATE_DIR / "state.json").is_file()


def _meta(folder: Path) -> dict:
    try:
        return json.loads((folder / "state.json").read_text())
    except (OSError, ValueError) as e:
        raise OvalError(f"cannot read {folder / 'state.json'}: {e}") from None


def load_weights(run_dir: Path, model) -> dict:
    """The model weights of a run's state (no optimizer); -> the state's metadata."""
    folder = Path(run_dir) / STATE_DIR
    meta = _meta(folder)
    if meta.get("arch") != model.arch:
        raise OvalError(f"training state in {folder} is for {meta.get('arch')}, not {model.arch}")
    try:
        missing, unexpected = model.load_state_dict(_read_shards(folder, meta["weights"]), strict=False)
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        raise OvalError(f"training state in {folder} does not fit the model: {first}") from None
    missing = [k for k in missing if not _derived(k)]
    if missing or unexpected:
        raise OvalError(f"training state in {folder} does not fit the model: "
                        f"{(missing or unexpected)[0]} {'missing' if missing else 'unexpected'}")
    return meta


def load_state(run_dir: Path, model, optimizer, rng: random.Random) -> tuple[int, float, dict, float]:
    """Loads weights and optimizer moments into model/optimizer;
    -> (step, best, train_config, schedule_seconds)."""
    folder = Path(run_dir) / STATE_DIR
    meta = load_weights(run_dir, model)
    moments = _read_shards(folder, meta["moments"])
    names = dict(model.named_parameters())
    for key, value in moments.items():
        name, kind = key.split("|")
        p = names[name]
        state = optimizer.state[p]
        state[kind] = value.to(p.device, torch.float32)
        state["step"] = torch.tensor(meta["adam_steps"].get(name, 0.0))
    version, internal, gauss = meta["py_rng"]
    rng.setstate((version, tuple(internal), gauss))
    return (meta["step"], meta.get("best", float("inf")), meta.get("train_config", {}),
            float(meta.get("schedule_seconds", 0.0)))
