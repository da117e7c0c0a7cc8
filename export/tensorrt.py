"""TensorRT engines from the exported ONNX graphs, and a runtime that runs them on torch CUDA tensors.

Written against TensorRT 10's Python API (explicit batch, named I/O tensors, execute_async_v3).
TensorRT is not on PyPI's default index for every platform: where it is missing, every entry point
here fails with one line naming the package.
"""
from pathlib import Path

import torch

from oval.errors import OvalError


def require_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise OvalError("TensorRT is not installed: pip install tensorrt (NVIDIA's Python wheels; "
                        "needs an NVIDIA GPU and driver), or use --backend onnxruntime") from None
    return tensorrt


def profile_shapes(profile, stride: int, latent_channels: int) -> dict:
    """Optimisation-profile shapes (min, opt, max) for each graph's input, batch 1.

    Frame sizes are rounded up to the stride, as the codec pads them; the decoder's input is in
    latent units (frame size / stride).
    """
    def frame(hw):
        h, w = (-(-v // stride) * stride for v in hw)
        return (1, 3, h, w)

    def latent(hw):
        h, w = (-(-v // stride) for v in hw)
        return (1, latent_channels, h, w)

    sizes = (profile.min, profile.opt, profile.max)
    for a, b in zip(sizes, sizes[1:]):
        if a[0] > b[0] or a[1] > b[1]:
            raise OvalError("engine sizes must grow from --min-size to --opt-size to --max-size")
    return {"x": tuple(frame(s) for s in sizes), "y_hat": tuple(latent(s) for s in sizes)}


def graph_profile_shapes(profile, stride: int, examples: tuple, names_in: tuple, example_side: int = 64) -> dict:
    """Profile shapes for every input of a multi-input graph (oval-rt's, see RTModel.graphs): a 4-D
    input scales with the frame as its example does with the example frame (example_side pixels:
    frames 1:1, 1/8-resolution features 1:8); any other input (the quality level) keeps its shape."""
    frames = profile_shapes(profile, stride, 1)["x"]
    shapes = {}
    for name, example in zip(names_in, examples):
        if example.dim() == 4:
            scale = example.shape[-1] / example_side
            shapes[name] = tuple((1, example.shape[1], int(f[2] * scale), int(f[3] * scale)) for f in frames)
        else:
            shapes[name] = (tuple(example.shape),) * 3
    return shapes


def build_engine(onnx_path: Path, engine_path: Path, input_name, shapes, precision: str = "fp32",
                 workspace_bytes: int = 2 << 30) -> None:
    """input_name + shapes (min, opt, max) for a one-input graph, or input_name=None and shapes a
    dict name -> (min, opt, max) for every input of a multi-input graph."""
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise OvalError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        config.set_flag(trt.BuilderFlag.BF16)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in (shapes.items() if input_name is None else [(input_name, shapes)]):
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise OvalError(f"TensorRT failed to build an engine from {onnx_path.name}")
    tmp = engine_path.with_name(engine_path.name + ".part")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(engine_path)


class Engine:
    """One engine run on torch CUDA tensors (no host copies): named inputs in order, one output
    returned as a tensor, several as a tuple."""

    def __init__(self, path: Path, input_names, output_names, device: torch.device):
        trt = require_tensorrt()
        if device.type != "cuda":
            raise OvalError("--backend tensorrt needs a CUDA device")
        self.device = device
        self.input_names = (input_names,) if isinstance(input_names, str) else tuple(input_names)
        self.output_names = (output_names,) if isinstance(output_names, str) else tuple(output_names)
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise OvalError(f"cannot load TensorRT engine {path} (built by another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
                  trt.int64: torch.int64, trt.bfloat16: torch.bfloat16}
        self.dtypes = {name: dtypes[self.engine.get_tensor_dtype(name)]
                       for name in self.input_names + self.output_names}

    def __call__(self, *inputs: torch.Tensor):
        kept = []  # the converted inputs must outlive the launch
        for name, t in zip(self.input_names, inputs, strict=True):
            t = t.to(self.device, self.dtypes[name]).contiguous()
            kept.append(t)
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        outs = []
        for name in self.output_names:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise OvalError("TensorRT execution failed")
        stream.synchronize()
        outs = [o.float() for o in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)


def build_engines(model, onnx_dir: Path, profile, precision: str = "fp32", rebuild: bool = False) -> list:
    """Every engine the model needs, from the ONNX graphs in onnx_dir into onnx_dir/engines (an
    engine per graph for a multi-graph model, encoder and decoder otherwise), recorded in its
    manifest.json. Engines already there are kept unless `rebuild`. -> the engine files, relative."""
    from oval.export.onnx import read_manifest, write_manifest
    engines = onnx_dir / "engines"
    engines.mkdir(exist_ok=True)
    if hasattr(model, "graphs"):
        jobs = [(name, None, graph_profile_shapes(profile, model.stride, examples, names_in))
                for name, (_, examples, names_in, _) in model.graphs().items()]
    else:
        shapes = profile_shapes(profile, model.stride, model.config.M)
        jobs = [("encoder", "x", shapes["x"]), ("decoder", "y_hat", shapes["y_hat"])]
    for name, input_name, job_shapes in jobs:
        plan = engines / f"{name}.plan"
        if rebuild or not plan.is_file():
            build_engine(onnx_dir / f"{name}.onnx", plan, input_name, job_shapes, precision)
    files = [f"engines/{name}.plan" for name, _, _ in jobs]
    manifest = read_manifest(onnx_dir)
    manifest["tensorrt"] = {"engines": files, "precision": precision}
    write_manifest(onnx_dir, manifest)
    return files


def graph_engines(model, engines: Path, device: torch.device) -> dict:
    """name -> Engine for every graph of a multi-graph model."""
    return {name: Engine(engines / f"{name}.plan", names_in, names_out, device)
            for name, (_, _, names_in, names_out) in model.graphs().items()}
