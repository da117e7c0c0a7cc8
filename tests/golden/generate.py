"""Regenerate the golden streams and their per-frame hashes: python tests/golden/generate.py [--all]

Run it when a golden stream is added or a golden model changes on purpose. A stream whose model
is unchanged (the same fingerprint) keeps its bytes: it is decoded again and must give the frames
recorded before, or the script stops (decoding changed). --all re-encodes every stream, for a
change of the format (change oval.bitstream.FORMAT_VERSION with it). tests/test_golden.py decodes every stream here and
compares each frame's MD5 with expected.json, as FFmpeg's FATE does with framemd5, or, where they
differ, the frames with the reference decode kept beside each stream (NAME.frames.npz): the latents
and table indices are exact on every machine (each frame's check proves them), but the float
synthesis rounds differently on another CPU's kernels (on one AVX-512 VM, its AVX-512, AVX2 and
plain kernels differed by at most one level, in 3 of 100,000 values of these streams), so a stream decodes within a tolerance of its reference
(oval.metrics.ROUNDING_TOLERANCE)
everywhere and to its recorded MD5s on the machine kind that recorded them. A stream without a
reference file gets one from this machine's decode.

The streams cover every frame type (I, P), every quality level, each colour space, odd sizes,
explicit motion (both vector predictors, both compensations) and the shipped default model. Small untrained models (seeded) keep the files tiny; their weights are
committed beside the streams, so a retrained default changes only the default's entries.
"""
import hashlib
import io
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent

# name -> (model, quality, intra period (None: the model's defaults), frames, crop (h, w)[, scene cuts])
STREAMS = {
    "factorized_intra": ("tiny_factorized", 0, 1, 3, (45, 71)),
    "video_rgb_q1_gop2": ("tiny_video_rgb", 1, 2, 5, (48, 64)),
    "video_rgb_q6_gop0": ("tiny_video_rgb", 6, 0, 4, (45, 71)),
    "video_rgb_q4_gop3": ("tiny_video_rgb", 4, 3, 3, (37, 50)),
    "video_bt601_q2_gop3": ("tiny_video_bt601", 2, 3, 4, (32, 48)),
    "video_bt709_q5_gop2": ("tiny_video_bt709", 5, 2, 3, (32, 48)),
    "video_q3_gop4_memory": ("tiny_video_memory", 3, 4, 5, (48, 64)),
    "rt_q3_gop3": ("tiny_rt", 3, 3, 5, (48, 64)),
    "rt_q10_gop0_odd": ("tiny_rt", 10, 0, 4, (45, 71)),
    # Untrained P-frames cost more than I-frames: without scene cuts, so that they stay P-frames.
    "rt_motion_q5_gop0": ("tiny_rt_motion", 5, 0, 5, (48, 80), False),
    "rt_residual_q4_gop0": ("tiny_rt_residual", 4, 0, 4, (48, 80), False),
    "rt_filter_q7_gop0": ("tiny_rt_filter", 7, 0, 5, (48, 80), False),
    "rt_median_vectors_q6_gop0": ("tiny_rt_median", 6, 0, 4, (64, 112), False),
    "rt_obmc_q6_gop0": ("tiny_rt_obmc", 6, 0, 4, (64, 112), False),
    "rt_skip_q5_gop0": ("tiny_rt_skip", 5, 0, 5, (64, 112), False),
    "default": ("default", None, None, 4, (144, 176)),  # its default quality and intra period
    # Earlier defaults ship on so that their streams decode: each keeps a golden stream.
    "shipped_rt_skip_2026_12_04": ("rt-skip-2026-12-04", None, None, 4, (144, 176)),
    "shipped_rt_deep2_2026_12_03": ("rt-deep2-2026-12-03", None, None, 4, (144, 176)),
    "shipped_rt_deep_2026_12_02": ("rt-deep-2026-12-02", None, None, 4, (144, 176)),
    "shipped_rt_obmc_2026_12_02": ("rt-obmc-2026-12-02", None, None, 4, (144, 176)),
    "shipped_rt_intra2_2026_12_02": ("rt-intra2-2026-12-02", None, None, 4, (144, 176)),
    "shipped_rt_flat_2026_12_01": ("rt-flat-2026-12-01", None, None, 4, (144, 176)),
    "shipped_rt_lead_2026_12_01": ("rt-lead-2026-12-01", None, None, 4, (144, 176)),
    "shipped_rt_filter_2026_12_01": ("rt-filter-2026-12-01", None, None, 4, (144, 176)),
    "shipped_rt_motion_2026_12_01": ("rt-motion-2026-12-01", None, None, 4, (144, 176)),
    "shipped_rt_2026_11_25": ("rt-2026-11-25", None, None, 4, (144, 176)),
    "shipped_video_2026_11_25": ("video-2026-11-25", None, None, 4, (144, 176)),
    "shipped_factorized_2026_11_24": ("factorized-2026-11-24", None, 1, 2, (144, 176)),
}
SHIPPED = ("default", "rt-skip-2026-12-04", "rt-deep2-2026-12-03", "rt-deep-2026-12-02", "rt-obmc-2026-12-02", "rt-intra2-2026-12-02", "rt-flat-2026-12-01", "rt-lead-2026-12-01", "rt-filter-2026-12-01", "rt-motion-2026-12-01", "rt-2026-11-25", "video-2026-11-25", "factorized-2026-11-24")

# name -> (arch, config, seed)
MODELS = {
    "tiny_factorized": ("oval-factorized", {"N": 8, "M": 8}, 1),
    "tiny_video_rgb": ("oval-video", {"N": 8, "M": 8, "C": 8}, 2),
    "tiny_video_bt601": ("oval-video", {"N": 8, "M": 8, "C": 8, "colour_space": "ycbcr-bt601"}, 3),
    "tiny_video_bt709": ("oval-video", {"N": 8, "M": 8, "C": 8, "colour_space": "ycbcr-bt709"}, 4),
    "tiny_video_memory": ("oval-video", {"N": 8, "M": 8, "C": 8, "memory": True}, 5),
    "tiny_rt": ("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16}, 6),
    "tiny_rt_motion": ("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16, "motion": True}, 7),
    "tiny_rt_residual": ("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16, "motion": True, "residual": True}, 8),
    "tiny_rt_filter": ("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16, "motion": True, "residual": True,
                                   "switchable_filter": True}, 9),
    "tiny_rt_median": ("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16, "motion": True, "residual": True,
                                   "switchable_filter": True, "vector_predictor": "median"}, 10),
    "tiny_rt_obmc": ("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16, "motion": True, "residual": True,
                                 "switchable_filter": True, "vector_predictor": "median", "compensation": "obmc"}, 11),
    "tiny_rt_skip": ("oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16, "motion": True, "residual": True,
                                 "switchable_filter": True, "vector_predictor": "median", "compensation": "obmc",
                                 "skip_frames": True}, 12),
}


def frame_md5(frame: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(frame).tobytes()).hexdigest()


def model_file(name: str) -> str:
    """Where a golden stream's model lives, relative to the repository ("default": the shipped one):
    what expected.json records for the tests and for python -m oval.doctor."""
    path = model_path(name)
    return path if path == "default" else str(Path(path).relative_to(HERE.parents[1]))


def model_path(name: str) -> str:
    if name == "default":
        return name
    folder = HERE.parents[1] / "oval" / "weights" if name in SHIPPED else HERE
    return str(folder / f"{name}.safetensors")


def decode_frames(stream: Path, model) -> list:
    """Every decoded frame, with the coding math the CLI sets (oval.device.set_coding_math: the
    same frames at any thread count)."""
    from oval import codec
    from oval.device import set_coding_math
    set_coding_math()
    with open(stream, "rb") as f:
        reader = codec.open_stream(f)
        decoder = codec.Decoder(model, reader.header)
        return [decoder.decode(packet) for packet in reader]


def reference_path(name: str) -> Path:
    return HERE / f"{name}.frames.npz"


def save_reference(name: str, frames: list) -> None:
    np.savez_compressed(reference_path(name), frames=np.stack(frames))


def unlike_reference(name: str, frames: list, md5s: list) -> str:
    """'' when frames are the recorded ones (their MD5s) or within rounding of the reference
    decode (oval.metrics.ROUNDING_TOLERANCE); else what differs."""
    if [frame_md5(f) for f in frames] == md5s:
        return ""
    if not reference_path(name).is_file():
        return f"{name}: the frames differ from the recorded MD5s and there is no reference file"
    with np.load(reference_path(name)) as kept:
        reference = kept["frames"]
    if reference.shape != (len(frames), *frames[0].shape):
        return f"{name}: {len(frames)} frames of {frames[0].shape}, the reference has {reference.shape}"
    from oval.metrics import rounding_difference
    largest, share, close = rounding_difference(frames, reference)
    return "" if close else f"{name}: frames differ from the reference by up to {largest} levels in {share:.2%} of values"


def _alternate_filters(model) -> None:
    """An untrained model's encoder would name bilinear throughout: the golden stream names both
    filters in turn (any choice decodes), so that decoding each is checked."""
    choose, turn = model.estimate_motion, itertools.count(1)
    model.estimate_motion = lambda x, reference, level, charge=None, search=None: choose(
        x, reference, level, charge, search)._replace(filter=next(turn) % 2)


def main(argv=None) -> int:
    from oval import bitstream, codec
    from oval.device import set_coding_math
    from oval.io import read_frames
    from oval.models.store import build_model, load_model, save_model
    from oval.samples import sample_path

    for name, (arch, config, seed) in MODELS.items():
        torch.manual_seed(seed)
        model = build_model(arch, config).eval()
        model.update()
        path = HERE / f"{name}.safetensors"
        # A committed model is kept unless its configuration changed here: rebuilt on another
        # machine its float-derived entropy tables may differ (a new fingerprint), not its design.
        if not path.is_file() or load_model(str(path)).config != model.config:
            save_model(model, path)
    set_coding_math()
    source = read_frames(str(sample_path("carphone")), 6)
    everything = "--all" in (sys.argv[1:] if argv is None else argv)
    before = json.loads((HERE / "expected.json").read_text()) if (HERE / "expected.json").is_file() else {}
    expected = {"format_version": bitstream.FORMAT_VERSION, "streams": {}}
    for name, (model_name, quality, period, n, (h, w), *cuts) in STREAMS.items():
        model = load_model(model_path(model_name))
        kept = before.get("streams", {}).get(name)
        if (not everything and kept and kept["fingerprint"] == model.fingerprint.hex()
                and before.get("format_version") == bitstream.FORMAT_VERSION and (HERE / f"{name}.oval").is_file()):
            frames = decode_frames(HERE / f"{name}.oval", model)
            if not reference_path(name).is_file():
                save_reference(name, frames)  # the latents are exact (each frame's check): only rounding may differ
            difference = unlike_reference(name, frames, kept["frame_md5"])
            if difference:
                raise SystemExit(f"the kept stream no longer decodes to its recorded frames: {difference}")
            expected["streams"][name] = kept
            print(f"{name}: kept")
            continue
        frames = [np.ascontiguousarray(f[:h, :w]) for f in source[:n]]
        if getattr(getattr(model, "config", None), "switchable_filter", False):
            _alternate_filters(model)
        sink = io.BytesIO()
        encoder = codec.Encoder(model, sink, w, h, 30, n, quality=quality, intra_period=period,
                                scene_cuts=cuts[0] if cuts else True)
        results = [encoder.encode(f) for f in frames]
        types = [r.frame_type.name for r in results]
        encoder.close()
        path = HERE / f"{name}.oval"
        path.write_bytes(sink.getvalue())
        header = encoder.header
        decoded = decode_frames(path, model)
        expected["streams"][name] = {"model": model_name, "model_file": model_file(model_name), "arch": model.arch, "fingerprint": model.fingerprint.hex(),
                                     "quality": header.quality, "colour_space": header.colour_space.name,
                                     "size": [w, h], "frame_types": types, "frame_md5": [frame_md5(f) for f in decoded]}
        save_reference(name, decoded)
        print(f"{name}: {len(sink.getvalue())} bytes, "
              f"{''.join('I' if r.frame_type.name == 'INTRA' else 'S' if r.skipped else 'P' for r in results)}")
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
