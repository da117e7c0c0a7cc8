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


def build_engine(onnx_path: Path, engine_path: Path, input_name: str, shapes: tuple, precision: str = "fp32",
                 workspace_bytes: int = 2 << 30) -> None:
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
    profile.set_shape(input_name, *shapes)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise OvalError(f"TensorRT failed to build an engine from {onnx_path.name}")
    tmp = engine_path.with_name(engine_path.name + ".part")
    tmp.write_bytes(bytes(serialized))
    tmp.replace(engine_path)


class Engine:
    """One engine with one input and one output, run on torch CUDA tensors (no host copies)."""

    def __init__(self, path: Path, input_name: str, output_name: str, device: torch.device):
        trt = require_tensorrt()
        if device.type != "cuda":
            raise OvalError("--backend tensorrt needs a CUDA device")
        self.device, self.input_name, self.output_name = device, input_name, output_name
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise OvalError(f"cannot load TensorRT engine {path} (built by another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32).contiguous()
        self.context.set_input_shape(self.input_name, tuple(x.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=torch.float32,
                          device=self.device)
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise OvalError("TensorRT execution failed")
        stream.synchronize()
        return out
