"""Throughput and bits per frame, per stage and end to end, at several frame sizes.

    python benchmarks/fps.py [--model default|PATH[#variant]] [--device auto|cpu|cuda] [--backend torch|onnxruntime|tensorrt]
                             [--sizes 360p,720p,1080p] [--frames N] [--clip bigbuckbunny] [--presets medium,fast]
                             [--json PATH]

Frames are real (a sample clip scaled to each size), written once as H.264 so the read stage
decodes video as oval-encode does. Every stage is timed per frame after a warm-up, with CUDA events
on a GPU and the host clock on the CPU; the figures are medians. encode_fps and decode_fps are the
codec's own sessions end to end on frames in memory (the encoder includes the reconstruction it
always makes); bits_per_frame is the mean size of a frame's unit in the stream. With several --presets, each
preset's encoder runs in turn, twice over, and each one's encode_fps and bits_per_frame are kept
under "presets" (the stages and the decoder are the first preset's).
"""
import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from oval import codec
from oval.bitstream import FramePacket
from oval.device import pick_device
from oval.export import runtimes
from oval.io import VideoReader, VideoWriter, read_frames
from oval.kernels import frames_to_tensor, tensor_to_frames
from oval.models.base import pad_to_stride
from oval.models.video import Reference
from oval.samples import resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rd import load_variant  # noqa: E402  (MODEL#variant, as every benchmark reads a model)

SIZES = {"240p": (240, 426), "360p": (360, 640), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920),
         "2160p": (2160, 3840)}


class Timer:
    """Per-stage samples in ms; CUDA events on GPU (no host sync inside the stage), host clock on CPU."""

    def __init__(self, device: torch.device):
        self.device, self.samples = device, {}

    def __call__(self, stage: str, fn):
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            end.synchronize()
            ms = start.elapsed_time(end)
        else:
            t = time.perf_counter()
            out = fn()
            ms = 1000 * (time.perf_counter() - t)
        self.samples.setdefault(stage, []).append(ms)
        return out

    def medians(self) -> dict:
        return {k: statistics.median(v) for k, v in self.samples.items()}


def scaled_frames(clip: str, n: int, size: tuple) -> list:
    path = resolve(clip)
    frames = read_frames(path, n)
    h, w = size
    out = []
    for f in frames:
        t = torch.from_numpy(f).permute(2, 0, 1)[None].float()
        t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        out.append(t[0].round().clamp(0, 255).byte().permute(1, 2, 0).contiguous().numpy())
    return out


def code_stages(model, x, shape, reference, timer, preset=None):
    """One frame through the coding stages, each timed: an intra model's frame, or a temporal
    model's P-frame when it has a reference (its steady state). preset: an oval-rt encoder's
    codec.Preset (None: the model's own search, no refinement)."""
    if not model.temporal:
        eb = model.entropy_bottleneck
        y = timer("analysis", lambda: model.analysis(x))
        data = timer("entropy_encode", lambda: eb.compress(y)[0])
        y_hat = timer("entropy_decode", lambda: eb.decompress([data], shape).to(x.device))
        return timer("synthesis", lambda: model.synthesis(y_hat).clamp_(0, 1)), None
    q = model.default_quality
    if reference is None:
        data = model.compress_frame(x, q, None)
        return model.decompress_frame(data, shape, q, None)
    if hasattr(model, "prior_inter"):  # oval-rt: the integer prior runs inside entropy coding
        return rt_stages(model, x, shape, reference, timer, preset)
    f, memory = timer("context", lambda: model.features(reference))
    mean, scale = timer("prior", lambda: model.entropy_parameters(reference, f, q))
    y = timer("analysis", lambda: model.encode_latent(x, q, f))
    data = timer("entropy_encode", lambda: model.gaussian.compress(y[0], mean[0], scale[0]))
    y_hat = timer("entropy_decode", lambda: model.gaussian.decompress(data, mean[0], scale[0])[None])
    x_hat, z = timer("synthesis", lambda: model.decode_latent(y_hat, q, f))
    return x_hat.clamp_(0, 1), Reference(z, memory)


def rt_stages(model, x, shape, reference, timer, preset=None):
    """An oval-rt P-frame: "prior" times the decoder's integer networks alone; the entropy stages
    include them (the encoder runs them once to code, the decoder once to decode)."""
    prior, q = model.prior_inter, model.default_quality
    lv = model._level(q)
    search, steps = (None, 0) if preset is None else (preset.search, preset.refine_steps[1])
    moves = None
    if model.config.motion:  # estimation is the encoder's alone; coding the vectors costs both sides little
        moves = timer("motion_estimation", lambda: model.estimate_motion(x, reference, q, search=search))
        motion_bytes = timer("motion_coding", lambda: model._motion_header(moves))
    cond = timer("context", lambda: model._context(reference, moves))
    context, latent16 = cond.context, cond.latent16
    y = timer("analysis", lambda: model._analyse(model._to_code(x, cond.prediction), lv, context) * model._gain(lv, False))
    y, z = timer("refinement", lambda: model._refined(y, x, lv, steps, cond)) if steps else (y, None)
    data = timer("entropy_encode", lambda: prior.compress(y, latent16, z)[0])
    z = torch.zeros(1, model.config.Z, -(-shape[0] // 4), -(-shape[1] // 4), dtype=torch.float64, device=x.device)
    timer("prior", lambda: prior._exact_params(z, shape, latent16))
    y16 = timer("entropy_decode", lambda: prior.decompress(data, shape, latent16, device=x.device))
    if moves is not None:
        timer("motion_decoding", lambda: model._read_motion(motion_bytes, shape, x.device))
    y_hat = (y16 / 16).float() * model._gain(lv, False, inverse=True)
    x_hat, feature = timer("synthesis", lambda: model._synthesise(y_hat, lv, context))
    x_hat = model._from_coded(x_hat, cond.prediction).clamp_(0, 1)
    return x_hat, type(reference)(feature, y16, x_hat if model.config.motion else None)


def bench_size(model, frames: list, device: torch.device, workdir: Path, presets: tuple = (codec.DEFAULT_PRESET,)) -> dict:
    h, w = frames[0].shape[:2]
    src = workdir / f"in_{w}x{h}.mp4"
    writer = VideoWriter(src, w, h)
    for f in frames:
        writer.write(f)
    writer.close()
    timer = Timer(device)
    shape = codec.latent_shape(model, w, h)
    out_writer = VideoWriter(workdir / f"out_{w}x{h}.mkv", w, h)
    reference = None
    with torch.no_grad(), VideoReader(str(src)) as reader:
        decoded = iter(reader)
        for i in range(len(frames)):  # frame 0 warms up (and is a temporal model's I-frame)
            rgb = timer("read", lambda: next(decoded))
            x = timer("colour_in", lambda: pad_to_stride(
                frames_to_tensor(torch.from_numpy(rgb).to(device), model.colour_space), model.stride))
            x_hat, reference = code_stages(model, x, shape, reference, timer, codec.PRESETS[presets[0]])
            out = timer("colour_out", lambda: tensor_to_frames(x_hat[:, :, :h, :w], model.colour_space).cpu().numpy()[0])
            timer("write", lambda: out_writer.write(out))
            if i == 0:
                timer.samples = {}
    out_writer.close()
    stages = timer.medians()

    # Each preset's encoder in turn, twice over, so that a busy machine slows each alike.
    runs, streams = {preset: ([], []) for preset in presets}, {}
    for _ in range(2 if len(presets) > 1 else 1):
        for preset in presets:
            streams[preset], sizes, times = encode_session(model, frames, device, preset)
            runs[preset] = sizes, runs[preset][1] + times  # the same frames: the same sizes each round
    sink, (sizes, enc_times) = streams[presets[0]], runs[presets[0]]
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(model, reader.header, device)
    packets = [p for p in reader if isinstance(p, FramePacket)]
    decoder.decode(packets[0])
    dec_times = []
    for p in packets[1:]:
        t = time.perf_counter()
        decoder.decode(p)
        dec_times.append(time.perf_counter() - t)
    bits = 8 * float(np.mean(sizes[1:]))
    result = {"width": w, "height": h, "frames": len(frames), "stages_ms": stages, "preset": presets[0],
              "encode_fps": 1 / statistics.median(enc_times), "decode_fps": 1 / statistics.median(dec_times),
              "bits_per_frame": bits, "bpp": bits / (w * h)}
    if len(presets) > 1:
        result["presets"] = {preset: {"encode_fps": 1 / statistics.median(times),
                                      "bits_per_frame": 8 * float(np.mean(sizes[1:]))}
                             for preset, (sizes, times) in runs.items()}
    return result


def encode_session(model, frames: list, device: torch.device, preset: str) -> tuple:
    """The codec's encoder on the frames after one warm-up frame: (the stream, each frame's bytes,
    each frame's seconds)."""
    h, w = frames[0].shape[:2]
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, w, h, 25, len(frames), device, preset=preset)
    encoder.encode(frames[0])
    sizes, times = [], []
    for f in frames:
        t = time.perf_counter()
        sizes.append(encoder.encode(f).bytes)
        times.append(time.perf_counter() - t)
    encoder.close()
    return sink, sizes, times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="torch", choices=runtimes.BACKENDS)
    p.add_argument("--sizes", default="360p,720p,1080p")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--clip", default="bigbuckbunny")
    p.add_argument("--presets", default=codec.DEFAULT_PRESET,
                   help="encoder presets (codec.PRESETS) to time, comma-separated; the first is the stages' and "
                        "the decoder's (default %(default)s)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    presets = tuple(args.presets.split(","))
    if not presets or any(preset not in codec.PRESETS for preset in presets):
        raise SystemExit(f"--presets takes names from {', '.join(codec.PRESETS)}, not {args.presets!r}")
    device = pick_device(args.device)
    from oval.device import set_coding_math
    set_coding_math()  # what oval-encode and oval-decode run with
    model = runtimes.load(args.backend, load_variant(args.model, device), device)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sizes.split(","):
            if name not in SIZES:
                raise SystemExit(f"unknown size {name!r}; choose from {', '.join(SIZES)}")
            frames = scaled_frames(args.clip, args.frames + 1, SIZES[name])
            results[name] = bench_size(model, frames, device, Path(tmp), presets)
    stages = list(next(iter(results.values()))["stages_ms"])
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"{args.clip} scaled, {args.frames} timed frames per size, backend {args.backend}, {device_name}")
    print("| size | " + " | ".join(f"{s} (ms)" for s in stages) + " | encode fps | decode fps | bits/frame |")
    print("|---|" + "---|" * (len(stages) + 3))
    for name, r in results.items():
        cells = [f"{r['stages_ms'][s]:.1f}" for s in stages]
        print(f"| {name} | " + " | ".join(cells) + f" | {r['encode_fps']:.2f} | {r['decode_fps']:.2f} | "
              f"{r['bits_per_frame']:.0f} |")
        for preset, run in r.get("presets", {}).items():
            print(f"  {name} preset {preset}: encode {run['encode_fps']:.2f} fps, {run['bits_per_frame']:.0f} bits/frame")
    macs = None
    if hasattr(model, "graphs"):
        from oval.models.rt_cost import macs_per_pixel
        macs = {k: round(v) for k, v in macs_per_pixel(model).items()}
        print("multiply-adds per pixel: " + ", ".join(f"{k} {v}" for k, v in macs.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"backend": args.backend, "device": device_name, "sizes": results,
                                               "macs_per_pixel": macs, "model": args.model}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
