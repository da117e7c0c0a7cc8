"""python -m oval.export CHECKPOINT|RUN_DIR|default --out DIR [--tensorrt] [--fp16|--bf16] [--opset N]
                         [--min-size WxH --opt-size WxH --max-size WxH] [--clip CLIP]

Writes the encoder and decoder as ONNX graphs (dynamic batch, height and width), the entropy tables
and a manifest; checks each graph with onnx.checker and runs it in ONNX Runtime against torch on real
frames. With --tensorrt it also builds serialized TensorRT engines with those sizes as the profile.
"""
import argparse
import sys
from pathlib import Path

from oval.errors import OvalError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m oval.export", description=__doc__.splitlines()[3])
    p.add_argument("model", metavar="CHECKPOINT|RUN_DIR|default", help="the model to export")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    p.add_argument("--tensorrt", action="store_true", help="also build TensorRT engines (needs tensorrt + a GPU)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="TensorRT engines in fp16")
    precision.add_argument("--bf16", action="store_true", help="TensorRT engines in bf16")
    p.add_argument("--min-size", default="16x16", help="smallest frame, WxH (engine profile)")
    p.add_argument("--opt-size", default="1280x720", help="frame size to optimise for, WxH")
    p.add_argument("--max-size", default="3840x2160", help="largest frame, WxH")
    p.add_argument("--clip", default="bikes", help="video (or sample name) whose frames check the graphs")
    p.add_argument("--frames", type=int, default=3, help="frames of --clip used for the parity check")
    args = p.parse_args(argv)
    try:
        return run(args)
    except OvalError as e:
        print(f"oval.export: error: {e}", file=sys.stderr)
        return 1


def _frames(clip: str, n: int) -> list:
    from oval.export.runtimes import _probe_frame
    from oval.io import read_frames
    from oval.samples import resolve
    try:
        path = resolve(clip)
        return read_frames(path, n)
    except OvalError as e:
        print(f"note: {e}; checking on a synthetic frame instead", file=sys.stderr)
        return [_probe_frame()]


def run(args) -> int:
    from oval.export import tensorrt as trt_export
    from oval.export.onnx import SizeProfile, export_onnx, parse_size
    from oval.models.store import load_model

    profile = SizeProfile(parse_size(args.min_size), parse_size(args.opt_size), parse_size(args.max_size))
    if args.tensorrt:
        trt_export.require_tensorrt()  # fail before the export work, with the package to install
    model = load_model(args.model, "cpu")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OvalError(f"--out {out} exists and is not a directory")
    manifest = export_onnx(model, out, _frames(args.clip, args.frames), args.opset, profile)
    parity = manifest["parity"]
    files = ", ".join(g["file"] for g in manifest["graphs"].values())
    print(f"wrote {out}: {files}, entropy.safetensors, manifest.json "
          f"(model {model.arch} {model.fingerprint.hex()[:16]})", file=sys.stderr)
    print("ONNX Runtime vs torch, largest difference: " + ", ".join(
        f"{k.replace('_max_abs_diff', '')} {v:.2e}" for k, v in parity.items()), file=sys.stderr)
    if args.tensorrt:
        precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
        trt_export.build_engines(model, out, profile, precision, rebuild=True)
        print(f"wrote TensorRT engines ({precision}) to {out / 'engines'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
