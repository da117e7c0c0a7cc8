"""Model files: save and load without executing code (safetensors, or torch.load(weights_only=True)),
and the fingerprint a stream records so a decoder can refuse the wrong model."""
import dataclasses
import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import torch

from oval.errors import OvalError
from oval.files import atomic_output
from oval.models.registry import model_class

FORMAT_TAG = "oval-model"


def default_weights_path() -> Path:
    return Path(str(resources.files("oval") / "weights" / "default.safetensors"))


def shipped_model_for(model_fingerprint: bytes) -> str | None:
    """The path of the shipped model (default or an earlier default) with this fingerprint, if any."""
    from safetensors import safe_open
    folder = default_weights_path().parent
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as f:
                recorded = (f.metadata() or {}).get("fingerprint")
        except Exception:
            continue
        if recorded == model_fingerprint.hex():
            return str(path)
    return None


def fingerprint(model: torch.nn.Module) -> bytes:
    """16 bytes of SHA-256 over the architecture id, the config fields marked "fingerprint" that are
    not at their default, and every tensor's name, dtype, shape and little-endian bytes. A marked
    field is a coding switch the tensors do not show (two models with the same weights code
    differently); its default is how models coded before it existed, so their fingerprints hold."""
    h = hashlib.sha256(model.arch.encode())
    config = getattr(model, "config", None)
    for field in dataclasses.fields(config) if dataclasses.is_dataclass(config) else ():
        value = getattr(config, field.name)
        if field.metadata.get("fingerprint") and value != field.default:
            h.update(f"config|{field.name}={json.dumps(value)}|".encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)  # flat: any memory format gives the same bytes
        h.update(f"{name}|{t.dtype}|{tuple(tensor.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()[:16]


def build_model(arch: str, config: dict) -> torch.nn.Module:
    try:
        cls = model_class(arch)
    except KeyError:
        raise OvalError(f"unknown model architecture {arch!r}") from None
    try:
        return cls(cls.Config(**config))
    except TypeError as e:
        raise OvalError(f"model config does not fit {arch!r}: {e}") from None


# Metadata (and a run's saved train_config) key: "1" where the P-frames have been trained, by the
# run or by the runs its --init came from. An intra-stage run on a model whose P-frames were
# trained records stage "intra" and keeps them; --init from it must not restart them.
P_FRAMES_TRAINED = "p_frames_trained"


def save_model(model: torch.nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Writes weights + entropy tables as safetensors, atomically (temporary name, then rename)."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT_TAG, "arch": model.arch, "config": json.dumps(dataclasses.asdict(model.config))}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    meta["fingerprint"] = fingerprint(model).hex()  # lets a decoder find a shipped model by a stream's id
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(Path(path)) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_safetensors(path: Path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types for damaged files
        raise OvalError(f"cannot read model file {path}: {str(e).splitlines()[0]}") from None
    if meta.get("format") != FORMAT_TAG or "arch" not in meta:
        raise OvalError(f"{path} is not an OVAL model file (missing metadata)")
    return meta["arch"], json.loads(meta.get("config", "{}")), state, meta


def _load_checkpoint(path: Path):
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise OvalError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "arch" not in ckpt:
        raise OvalError(f"{path} is not an OVAL checkpoint")
    meta = {k: str(v) for k, v in ckpt.get("train_config", {}).items() if k in ("lmbda", "steps", "stage")}
    meta.update(_p_frames_trained(ckpt.get("train_config", {})))
    return ckpt["arch"], ckpt.get("model_config", {}), ckpt["model"], meta


def resolve_model_path(spec: str) -> Path:
    """'default', a .safetensors file, a .pt checkpoint, or a training run directory."""
    if spec == "default":
        return default_weights_path()
    path = Path(spec)
    if path.is_dir():
        for candidate in ("model.safetensors", "checkpoints/best.pt", "checkpoints/last.pt", "state/state.json"):
            if (path / candidate).is_file():
                return path / candidate
        raise OvalError(f"no model found in directory {path} (expected model.safetensors, checkpoints/ or state/)")
    if not path.is_file():
        raise OvalError(f"model file not found: {path}")
    return path


def _load_run_state(path: Path):
    """A training run's compact state (state/state.json beside its weight shards)."""
    import json
    from oval import checkpoint
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise OvalError(f"cannot read {path}: {e}") from None
    model = build_model(meta.get("arch", ""), meta.get("model_config", {}))
    checkpoint.load_weights(path.parent.parent, model)
    return meta["arch"], model, {"steps": str(meta.get("step", "")),
                                 "stage": str(meta.get("train_config", {}).get("stage", "")),
                                 **_p_frames_trained(meta.get("train_config", {}))}


def _p_frames_trained(train_config: dict) -> dict:
    return {P_FRAMES_TRAINED: "1" if train_config[P_FRAMES_TRAINED] else "0"} if P_FRAMES_TRAINED in train_config else {}


def load_model(spec: str = "default", device: str | torch.device = "cpu") -> torch.nn.Module:
    """Loads a model ready to code: eval mode, entropy tables present, `.fingerprint` set."""
    path = resolve_model_path(spec)
    if path.name == "state.json":
        arch, model, meta = _load_run_state(path)
        model.update()
        model.fingerprint = fingerprint(model)
        model.source_path, model.metadata = str(path.parent.parent), meta
        return model.to(device).eval()
    if path.suffix == ".safetensors":
        arch, config, state, meta = _load_safetensors(path)
    else:
        arch, config, state, meta = _load_checkpoint(path)
    model = build_model(arch, config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), str(e))
        raise OvalError(f"model file {path} does not match architecture {arch!r}: {first}") from None
    if not model.tables_built():
        model.update()  # a training checkpoint saved before its tables were built
    model.fingerprint = fingerprint(model)
    recorded = meta.get("fingerprint")
    if recorded and recorded != model.fingerprint.hex():
        raise OvalError(f"model file {path} is damaged: its weights do not match the fingerprint it records")
    model.source_path = str(path)
    model.metadata = meta  # strings: lmbda, steps, data... as the trainer recorded them
    return model.to(device).eval()
