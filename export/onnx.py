"""Export a model's transforms to ONNX (dynamic batch, height and width), with its entropy tables
and a manifest beside them, and check the graphs in ONNX Runtime against torch on real frames.

    DIR/encoder.onnx        x (N, 3, H, W) float in [0, 1]  ->  y (N, M, H/16, W/16)
    DIR/decoder.onnx        y_hat (N, M, h, w)              ->  x_hat (N, 3, 16h, 16w)
    DIR/entropy.safetensors the integer coding tables (table_offsets, table_lengths, table_counts)
    DIR/manifest.json       model id, fingerprint, shapes, opset, versions, parity
"""
import dataclasses
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from oval.errors import OvalError
from oval.files import atomic_output

MANIFEST_FORMAT = "oval-export"
MANIFEST_VERSION = 1


@dataclasses.dataclass
class SizeProfile:
    """Frame sizes an engine is built for (TensorRT optimisation profiles), as (height, width)."""

    min: tuple = (16, 16)  # oval-rt codes in stripes as short as two rows of its 1/8 grid
    opt: tuple = (720, 1280)
    max: tuple = (2160, 3840)


def parse_size(text: str) -> tuple:
    """'1280x720' (W x H) -> (720, 1280) as (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OvalError(f"size {text!r} is not WIDTHxHEIGHT") from None
    if w < 1 or h < 1:
        raise OvalError(f"size {text!r} must be positive")
    return (h, w)


def _require_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise OvalError("ONNX export needs onnx and onnxruntime: pip install onnx onnxruntime") from None
    return onnx, onnxruntime


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple, opset: int) -> None:
    tmp = path.with_name(path.name + ".part")
    axes = {names[0]: {0: "batch", 2: "height", 3: "width"}, names[1]: {0: "batch", 2: "out_height", 3: "out_width"}}
    # The TorchScript exporter: plain ONNX ops for every layer (GDN's bound is a Max), verified here
    # against ONNX Runtime, and no onnxscript needed. torch marks it deprecated; the torch.export-based
    # exporter is the one to move to once it is checked the same way.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (example,), str(tmp), input_names=[names[0]], output_names=[names[1]],
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    os.replace(tmp, path)


def session(path: Path, device: torch.device):
    _, ort = _require_onnx()
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=providers)


def _parity(model, out: Path, frames: list) -> dict:
    """Largest |ORT - torch| on real frames, for each graph."""
    from oval.kernels import frames_to_tensor
    from oval.models.base import pad_to_stride
    enc, dec = session(out / "encoder.onnx", torch.device("cpu")), session(out / "decoder.onnx", torch.device("cpu"))
    cpu_model = model.to("cpu")
    worst = {"encoder_max_abs_diff": 0.0, "decoder_max_abs_diff": 0.0}
    for frame in frames:
        x = pad_to_stride(frames_to_tensor(torch.from_numpy(frame)), model.stride)
        with torch.no_grad():
            y = cpu_model.g_a(x)
            y_hat = torch.round(y)
            x_hat = cpu_model.g_s(y_hat)
        y_ort = enc.run(None, {"x": x.numpy()})[0]
        x_ort = dec.run(None, {"y_hat": y_hat.numpy()})[0]
        worst["encoder_max_abs_diff"] = max(worst["encoder_max_abs_diff"], float(np.abs(y_ort - y.numpy()).max()))
        worst["decoder_max_abs_diff"] = max(worst["decoder_max_abs_diff"], float(np.abs(x_ort - x_hat.numpy()).max()))
    return worst


def _export_graph(module, inputs: tuple, path: Path, names_in: tuple, names_out: tuple, opset: int) -> None:
    """One named graph of a model that declares several (oval-rt): 4-D tensors get dynamic batch,
    height and width; the level index a dynamic batch."""
    axes = {}
    for name, t in zip(names_in, inputs):
        axes[name] = {0: "batch", 2: "height", 3: "width"} if t.dim() == 4 else {0: "batch"}
    for name in names_out:
        axes[name] = {0: "batch", 2: "out_height", 3: "out_width"}
    tmp = path.with_name(path.name + ".part")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(tmp), input_names=list(names_in), output_names=list(names_out),
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    os.replace(tmp, path)


def graph_runner(path: Path, device: torch.device, names_in: tuple):
    """A callable running one exported graph in ONNX Runtime on torch tensors."""
    sess = session(path, device)

    def run(*inputs):
        feed = {n: t.detach().to("cpu").contiguous().numpy() for n, t in zip(names_in, inputs)}
        outs = [torch.from_numpy(o).to(device) for o in sess.run(None, feed)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    return run


def _graph_inputs(model, frame: np.ndarray) -> dict:
    """Real inputs for every graph of a multi-graph model, from one frame."""
    from oval.kernels import frames_to_tensor
    from oval.models.base import pad_to_stride
    x = pad_to_stride(frames_to_tensor(torch.from_numpy(frame)), model.stride)
    q = torch.tensor([model.default_quality - 1])
    with torch.no_grad():
        y = torch.round(model.g_a_intra(x, q))
        _, feature = model.g_s_intra(y, q)
        context = model.context(feature)
    motion = getattr(model.config, "motion", False)  # a motion model's context also takes the warped picture
    return {"g_a_intra": (x, q), "g_s_intra": (y, q), "g_a_inter": (x, q, context), "g_s_inter": (y, q, context),
            "context": (feature, x) if motion else (feature,)}


def _export_graphs(model, out: Path, frames: list, opset: int, profile: SizeProfile) -> dict:
    onnx, ort = _require_onnx()
    graphs, parity = {}, {}
    for name, (module, example, names_in, names_out) in model.graphs().items():
        _export_graph(module, example, out / f"{name}.onnx", names_in, names_out, opset)
        try:
            onnx.checker.check_model(onnx.load(str(out / f"{name}.onnx")), full_check=True)
        except onnx.checker.ValidationError as e:
            raise OvalError(f"{name}.onnx failed the ONNX checker: {str(e).splitlines()[0]}") from None
        graphs[name] = {"file": f"{name}.onnx", "inputs": list(names_in), "outputs": list(names_out)}
    for frame in frames:
        inputs = _graph_inputs(model, frame)
        for name, entry in graphs.items():
            run = graph_runner(out / entry["file"], torch.device("cpu"), tuple(entry["inputs"]))
            with torch.no_grad():
                ref = model.run_graph(name, *inputs[name])
            got = run(*inputs[name])
            ref, got = (ref if isinstance(ref, tuple) else (ref,)), (got if isinstance(got, tuple) else (got,))
            diff = max(float((a - b).abs().max()) for a, b in zip(ref, got))
            parity[f"{name}_max_abs_diff"] = max(parity.get(f"{name}_max_abs_diff", 0.0), diff)
    from safetensors.torch import save_file
    integer = {k: v.cpu().contiguous() for k, v in model.state_dict().items()
               if k.rsplit(".", 1)[-1] in ("w_int", "b_int", "shift") or ".table_" in k}
    with atomic_output(out / "entropy.safetensors") as tmp:
        save_file(integer, str(tmp), metadata={"fingerprint": model.fingerprint.hex(), "table_bits": "16"})
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "arch": model.arch,
                "config": dataclasses.asdict(model.config), "fingerprint": model.fingerprint.hex(),
                "stride": model.stride, "opset": opset, "graphs": graphs, "tables": "entropy.safetensors",
                # The integer prior (table choice) stays in torch: exact integer arithmetic in float64.
                "latent_networks": "torch (integer prior)",
                "profile": {k: list(v) for k, v in dataclasses.asdict(profile).items()},
                "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
                "parity": parity}
    write_manifest(out, manifest)
    return manifest


def export_onnx(model, out: Path, frames: list, opset: int = 17, profile: SizeProfile = SizeProfile()) -> dict:
    """Writes the graphs, tables and manifest into `out`; returns the manifest."""
    onnx, ort = _require_onnx()
    out.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    if hasattr(model, "graphs"):
        return _export_graphs(model, out, frames, opset, profile)
    M = model.config.M
    _export(model.g_a, torch.rand(1, 3, 64, 64), out / "encoder.onnx", ("x", "y"), opset)
    _export(model.g_s, torch.zeros(1, M, 4, 4), out / "decoder.onnx", ("y_hat", "x_hat"), opset)
    for name in ("encoder.onnx", "decoder.onnx"):
        try:
            onnx.checker.check_model(onnx.load(str(out / name)), full_check=True)
        except onnx.checker.ValidationError as e:
            raise OvalError(f"{name} failed the ONNX checker: {str(e).splitlines()[0]}") from None
    from safetensors.torch import save_file
    tables = {k: v.cpu().contiguous() for k, v in model.state_dict().items() if ".table_" in k}
    with atomic_output(out / "entropy.safetensors") as tmp:
        save_file(tables, str(tmp), metadata={"fingerprint": model.fingerprint.hex(), "table_bits": "16"})
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "arch": model.arch,
                "config": dataclasses.asdict(model.config), "fingerprint": model.fingerprint.hex(),
                "stride": model.stride, "opset": opset,
                "graphs": {"encoder": {"file": "encoder.onnx", "input": ["batch", 3, "height", "width"],
                                       "output": ["batch", M, "height/16", "width/16"]},
                           "decoder": {"file": "decoder.onnx", "input": ["batch", M, "h", "w"],
                                       "output": ["batch", 3, "16h", "16w"]}},
                "tables": "entropy.safetensors",
                # A temporal model's latent-resolution networks (context, prior, adapters, gains)
                # stay in torch beside the exported transforms.
                "latent_networks": "torch" if getattr(model, "temporal", False) else None,
                "profile": {k: list(v) for k, v in dataclasses.asdict(profile).items()},
                "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
                "parity": _parity(model, out, frames)}
    write_manifest(out, manifest)
    return manifest


def write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / "manifest.json.part"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out / "manifest.json")


def read_manifest(out: Path) -> dict | None:
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return manifest if manifest.get("format") == MANIFEST_FORMAT else None
