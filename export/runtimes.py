"""The codec's --backend: torch, onnxruntime or tensorrt behind one interface.

A runtime is the loaded model with its full-resolution transforms (analysis g_a, synthesis g_s)
running elsewhere; the entropy model stays the integer tables, so a stream written by any backend
decodes with any other.
"""
import copy
import os
from pathlib import Path

import numpy as np
import torch

from oval.errors import OvalError

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def cache_dir(model) -> Path:
    root = Path(os.environ.get("OVAL_CACHE") or Path.home() / ".cache" / "oval")
    return root / "export" / model.fingerprint.hex()


def _probe_frame() -> np.ndarray:
    """A deterministic smooth frame for the parity check of a cached export."""
    yy, xx = np.mgrid[0:144, 0:176]
    chans = [127 + 100 * np.sin(0.07 * xx + 0.05 * yy + c) for c in range(3)]
    return np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)


def ensure_export(model, out: Path | None = None) -> Path:
    """ONNX graphs for this model (by fingerprint), exported once into the cache."""
    from oval.export.onnx import export_onnx, read_manifest
    out = out or cache_dir(model)
    manifest = read_manifest(out)
    if manifest is None or manifest.get("fingerprint") != model.fingerprint.hex():
        export_onnx(model, out, [_probe_frame()])
    return out


def runtime_model(model, analysis, synthesis, backend: str):
    """The model with another runtime behind its full-resolution transforms.

    A shallow copy that shares the weights; `analysis` and `synthesis` (callables that move tensors
    where they run) shadow the model's own. Entropy coding and any latent-resolution networks
    stay the model's, so streams are interchangeable between backends.
    """
    runtime = copy.copy(model)
    object.__setattr__(runtime, "analysis", analysis)
    object.__setattr__(runtime, "synthesis", synthesis)
    object.__setattr__(runtime, "backend", backend)
    return runtime


def _ort_transform(path: Path, device: torch.device):
    from oval.export.onnx import session
    sess = session(path, device)
    name = sess.get_inputs()[0].name

    def run(t: torch.Tensor) -> torch.Tensor:
        out = sess.run(None, {name: t.detach().to("cpu", torch.float32).contiguous().numpy()})[0]
        return torch.from_numpy(out).to(device)

    return run


def _tensorrt_model(model, device: torch.device):
    from oval.export import tensorrt as trt_export
    from oval.export.onnx import SizeProfile
    trt_export.require_tensorrt()
    if device.type != "cuda":
        raise OvalError("--backend tensorrt needs a CUDA device (--device cuda)")
    out = ensure_export(model)
    trt_export.build_engines(model, out, SizeProfile())
    engines = out / "engines"
    if hasattr(model, "graphs"):
        return _graph_model(model, trt_export.graph_engines(model, engines, device), "tensorrt")
    return runtime_model(model, trt_export.Engine(engines / "encoder.plan", "x", "y", device),
                        trt_export.Engine(engines / "decoder.plan", "y_hat", "x_hat", device), "tensorrt")


def _graph_model(model, runners: dict, backend: str):
    """A multi-graph model (oval-rt) whose float graphs run elsewhere: `runners` maps each graph's
    name to a callable on torch tensors."""
    runtime = copy.copy(model)
    object.__setattr__(runtime, "run_graph", lambda name, *inputs: runners[name](*inputs))
    object.__setattr__(runtime, "backend", backend)
    return runtime


def _ort_graph_model(model, device: torch.device):
    from oval.export.onnx import graph_runner, read_manifest
    out = ensure_export(model)
    graphs = read_manifest(out)["graphs"]
    return _graph_model(model, {name: graph_runner(out / g["file"], device, tuple(g["inputs"]))
                                for name, g in graphs.items()}, "onnxruntime")


def load(backend: str, model, device: torch.device):
    """The model itself for torch; the model over exported graphs for the others."""
    if backend == "torch":
        return model
    if backend == "onnxruntime" and hasattr(model, "graphs"):
        return _ort_graph_model(model, device)
    if backend == "onnxruntime":
        out = ensure_export(model)
        return runtime_model(model, _ort_transform(out / "encoder.onnx", device),
                            _ort_transform(out / "decoder.onnx", device), "onnxruntime")
    if backend == "tensorrt":
        return _tensorrt_model(model, device)
    raise OvalError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
