"""oval-encode and oval-decode: arguments, progress on stderr, summaries, --json, one-line errors."""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from oval.errors import OvalError, UsageError, out_of_memory

BACKENDS = ("torch", "onnxruntime", "tensorrt")  # oval.export.runtimes.BACKENDS, without importing it
PRESETS = ("fast", "medium", "slow", "slower")  # codec.PRESETS, without importing it


EPILOG = """exit status: 0 success, 1 an error (one line on stderr), 2 bad arguments, 130 interrupted.
Outputs are written under a temporary name (.NAME.part.EXT) and renamed when complete. A stream
with damaged or missing frames decodes every intact frame into NAME.partial.EXT and exits 1."""


def _version() -> str:
    from oval import __version__
    return f"%(prog)s {__version__}"


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", action="version", version=_version(), help="print the version and exit")
    p.add_argument("--model", default="default",
                   help="'default' (shipped), a .safetensors model, a .pt checkpoint or a training run directory")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where the transforms run: CUDA when present (auto), or as asked")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="runtime for the transforms; onnxruntime and tensorrt export the model once into "
                        "~/.cache/oval (or $OVAL_CACHE)")
    p.add_argument("--json", action="store_true", help="print one JSON summary object on stdout, last")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary on stderr")


def _progress(total, desc: str, quiet: bool):
    from tqdm import tqdm
    return tqdm(total=total or None, desc=desc, unit="frame", file=sys.stderr, disable=quiet,
                dynamic_ncols=True, leave=False, mininterval=0.5)


def _summary(kind: str, stats: dict) -> str:
    parts = [f"{kind} {stats['frames']} frames {stats['width']}x{stats['height']}",
             f"{stats['bytes']} bytes", f"{stats['bpp']:.4f} bpp", f"{stats['kbps']:.1f} kbps"]
    if stats.get("psnr") is not None:
        parts.append(f"PSNR {stats['psnr']:.2f} dB")
    if "intra_frames" in stats:
        parts.append(f"I-frames {stats['intra_frames']}, skipped {stats['skipped_frames']}")
    fps_key = "encode_fps" if kind == "encoded" else "decode_fps"
    parts.append(f"{stats[fps_key]:.1f} fps")
    return ", ".join(parts)


def _rates(n_bytes: int, frames: int, width: int, height: int, fps: float) -> dict:
    bpp = 8 * n_bytes / max(1, frames * width * height)
    kbps = 8 * n_bytes * fps / max(1, frames) / 1000
    return {"bpp": bpp, "kbps": kbps}


def _report(kind: str, stats: dict, args) -> None:
    if not args.quiet:
        print(_summary(kind, stats), file=sys.stderr)
    if args.json:
        print(json.dumps(stats))


def _run(fn, prog: str, argv) -> int:
    # Idle OpenMP workers sleep instead of spinning: on a machine busy with other work, spinning
    # threads fight it (measured: 10 frames of bikes on 2 loaded cores, 11.4 s spinning, 4.9 s
    # passive). Read when torch loads, so set before the lazy imports below; the user's value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return fn(argv)
    except OvalError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:
        if not out_of_memory(e):
            raise
        print(f"{prog}: error: out of memory ({str(e).splitlines()[0][:120]}); a smaller frame size, "
              f"--device cpu, or more memory is needed", file=sys.stderr)
        return 1


def _load(args, device, fingerprint: bytes | None = None):
    """The model, behind the runtime --backend asks for. Decoding with --model default picks the
    shipped model the stream names (older streams were coded with an earlier default)."""
    from oval.export import runtimes
    from oval.models.store import load_model, shipped_model_for
    spec = args.model
    if spec == "default" and fingerprint is not None:
        spec = shipped_model_for(fingerprint) or spec
    return runtimes.load(args.backend, load_model(spec, device), device)


# --- oval-encode ----------------------------------------------------------------------------

def _encode(argv) -> int:
    p = argparse.ArgumentParser(prog="oval-encode", description="Compress a video into an .oval stream.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="anything ffmpeg reads: a file, /dev/video0, an rtsp/http URL")
    p.add_argument("-o", "--output", required=True, metavar="OUT.oval", help="the stream to write")
    p.add_argument("--quality", type=int, default=None, metavar="Q",
                   help="quality level: 1..10 for the shipped model, rate and quality rise with Q (default 6); "
                        "single-rate models have only 0")
    p.add_argument("--intra-period", type=int, default=None, metavar="N",
                   help="an I-frame every N frames: 1 all intra, 0 only the first "
                        "(default 32 for temporal models, 1 for intra-only ones)")
    p.add_argument("--recon", metavar="RECON_VIDEO",
                   help="also write the decoded frames (.mkv lossless, .mp4, .y4m)")
    p.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    p.add_argument("--preset", default="medium", choices=PRESETS,
                   help="encoder effort: for models that move by overlapped blocks (the shipped default) "
                        "fast searches each block's own vector, medium refines them for the blend, slow "
                        "judges that with the frame's filter; slower also refines each frame's latent by "
                        "gradient steps (several times slower); any decoder reads each (default medium)")
    _common_args(p)
    args = p.parse_args(argv)

    from oval import codec, io
    from oval.device import pick_device, set_coding_math
    from oval.files import atomic_output
    from oval.metrics import psnr

    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError("--max-frames must be at least 1")
    out = Path(args.output)
    io.check_output_dir(out)
    if args.recon:
        io.check_output_dir(Path(args.recon))
    device = pick_device(args.device)
    set_coding_math()
    reader = io.VideoReader(args.input, args.max_frames)
    model = _load(args, device)
    try:  # values that depend on the model: still bad arguments (exit 2)
        codec.check_quality(model, model.default_quality if args.quality is None else args.quality)
        codec.intra_period_for(model, args.intra_period)
    except ValueError as e:
        reader.close()
        raise UsageError(str(e)) from None
    info = reader.info
    try:
        with atomic_output(out) as tmp, open(tmp, "wb") as sink, \
                io.optional_writer(args.recon, info.width, info.height, info.fps) as recon:
            try:
                encoder = codec.Encoder(model, sink, info.width, info.height, info.fps, info.frame_count,
                                        device, args.quality, args.intra_period, preset=args.preset)
            except ValueError as e:
                raise OvalError(str(e)) from None
            psnrs, start, interrupted = [], time.perf_counter(), False
            kinds = {"intra_frames": 0, "skipped_frames": 0}
            with _progress(info.frame_count, "encode", args.quiet) as bar:
                try:
                    for rgb in reader:
                        if rgb.shape[:2] != (info.height, info.width):
                            raise OvalError(f"frame {encoder.index} of {args.input} changes size to "
                                            f"{rgb.shape[1]}x{rgb.shape[0]}")
                        result = encoder.encode(rgb)
                        psnrs.append(psnr(rgb, result.recon))
                        kinds["intra_frames"] += result.frame_type == codec.FrameType.INTRA
                        kinds["skipped_frames"] += result.skipped
                        if recon:
                            recon.write(result.recon)
                        bar.update(1)
                except KeyboardInterrupt:
                    # A live source (no known length) only ends when the user stops it: close the
                    # stream cleanly. A file cut short stays the error it is (nothing is kept).
                    if info.frame_count or not psnrs:
                        raise
                    interrupted = True
            elapsed = time.perf_counter() - start
            if not psnrs:
                raise OvalError(f"no frames could be read from {args.input}")
            encoder.close()
    finally:
        reader.close()
    frames = len(psnrs)
    n_bytes = out.stat().st_size
    finite = [v for v in psnrs if math.isfinite(v)]
    stats = {"frames": frames, "width": info.width, "height": info.height, "bytes": n_bytes,
             **_rates(n_bytes, frames, info.width, info.height, float(info.fps)),
             "psnr": sum(finite) / len(finite) if finite else None,
             "encode_fps": frames / elapsed, "model": model.arch, "quality": encoder.header.quality,
             "intra_period": encoder.header.intra_period, **kinds, "fingerprint": model.fingerprint.hex(),
             "device": str(device), "backend": args.backend, "preset": args.preset, "output": str(out)}
    if interrupted:
        print(f"oval-encode: interrupted: closed the live stream after {frames} frames", file=sys.stderr)
    _report("encoded", stats, args)
    return 130 if interrupted else 0


# --- oval-decode ----------------------------------------------------------------------------

def _decode(argv) -> int:
    p = argparse.ArgumentParser(prog="oval-decode", description="Decode an .oval stream into a video.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN.oval", help="the stream to decode")
    p.add_argument("-o", "--output", required=True, metavar="OUT_VIDEO",
                   help="output video; the extension picks the format (.mkv lossless, .mp4, .y4m)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse streams whose frames have more pixels (default: 8K UHD, 33177600); "
                        "decoding needs about 200 bytes of memory per pixel")
    _common_args(p)
    args = p.parse_args(argv)

    from oval import bitstream, codec, io
    from oval.device import pick_device, set_coding_math

    out = Path(args.output)
    if out.suffix.lower() not in io.WRITE_FORMATS:
        raise OvalError(f"unsupported output format {out.suffix or '(none)'}; use one of {', '.join(io.WRITE_FORMATS)}")
    io.check_output_dir(out)
    if not os.path.isfile(args.input):
        raise OvalError(f"input not found: {args.input}")
    device = pick_device(args.device)
    set_coding_math()
    with open(args.input, "rb") as source:
        try:
            limits = bitstream.Limits(max_pixels=args.max_pixels) if args.max_pixels else None
            reader = codec.open_stream(source, limits)
        except bitstream.FormatError as e:
            raise OvalError(f"{args.input}: {e}") from None
        header = reader.header
        model = _load(args, device, header.model_fingerprint)
        try:
            decoder = codec.Decoder(model, header, device)
        except bitstream.FormatError as e:
            raise OvalError(f"{args.input}: {e}") from None
        writer = io.VideoWriter(out, header.width, header.height, codec.fps_fraction(header))
        first_error, corrupt, frames, previous = None, 0, 0, None
        start = time.perf_counter()
        try:
            with _progress(header.frame_count, "decode", args.quiet) as bar:
                try:
                    for item in reader:
                        if isinstance(item, bitstream.ModelUpdate):
                            decoder.apply_update(item)
                            continue
                        if isinstance(item, bitstream.LostUpdate):
                            # Updates shape pixels only: later frames still decode, less well.
                            first_error = first_error or (f"the model update before frame {item.before_frame} "
                                                          f"is corrupt ({item.reason})")
                            continue
                        lost = isinstance(item, bitstream.CorruptFrame)
                        if lost or not decoder.can_decode(item):
                            # A lost frame, or a P-frame that refers to one: conceal until the
                            # next I-frame by repeating the last good frame, keeping the timing.
                            decoder.drop_reference()
                            corrupt += 1
                            reason = item.reason if lost else "its reference frame was lost"
                            first_error = first_error or f"frame {item.index} is corrupt ({reason})"
                            if previous is None:
                                continue
                            rgb = previous
                        else:
                            rgb = decoder.decode(item)
                        writer.write(rgb)
                        previous, frames = rgb, frames + 1
                        bar.update(1)
                except bitstream.FormatError as e:
                    first_error = first_error or str(e)
            elapsed = time.perf_counter() - start
        except BaseException:
            writer.abort()
            raise
        if first_error:
            if frames == 0:
                writer.abort()
                raise OvalError(f"{args.input}: {first_error}; no frame could be decoded")
            writer.path = out.with_name(f"{out.stem}.partial{out.suffix}")
            writer.close()
            concealed = f", {corrupt} corrupt frames concealed" if corrupt else ""
            raise OvalError(f"{args.input}: {first_error}; {frames - corrupt} intact frames{concealed} "
                            f"written to {writer.path}")
        writer.close()
    n_bytes = os.path.getsize(args.input)
    fps = float(codec.fps_fraction(header))
    stats = {"frames": frames, "width": header.width, "height": header.height, "bytes": n_bytes,
             **_rates(n_bytes, frames, header.width, header.height, fps),
             "decode_fps": frames / elapsed if elapsed > 0 else 0.0, "model": header.model_arch,
             "device": str(device), "backend": args.backend, "output": str(out)}
    _report("decoded", stats, args)
    return 0


def encode_main(argv=None) -> int:
    return _run(_encode, "oval-encode", argv)


def decode_main(argv=None) -> int:
    return _run(_decode, "oval-decode", argv)


if __name__ == "__main__":
    sys.exit(encode_main())
