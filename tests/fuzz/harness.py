"""What the fuzzer runs: the container parser and the whole decode path on arbitrary bytes.

The only exception allowed out is the codec's own FormatError. Limits are small, so a hostile header
cannot make a fuzz run allocate much. The header's model fingerprint is replaced by the fuzz model's,
so mutated streams reach the entropy decoder and the synthesis transform instead of stopping at the
model check.

    python tests/fuzz/harness.py --make-seeds   # (re)writes tests/fuzz/corpus/ from real frames
"""
import dataclasses
import io
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
LIMITS = None
_MODEL = None


def fuzz_model():
    """A tiny deterministic model with built tables (fast to decode)."""
    global _MODEL
    if _MODEL is None:
        from oval.models.store import build_model, fingerprint
        torch.manual_seed(1234)
        model = build_model("oval-factorized", {"N": 4, "M": 4}).eval()
        model.update()
        model.fingerprint = fingerprint(model)
        _MODEL = model
    return _MODEL


def limits():
    global LIMITS
    if LIMITS is None:
        from oval.bitstream import Limits
        LIMITS = Limits(max_width=256, max_height=256, max_frames=1000, max_unit_bytes=1 << 16)
    return LIMITS


def decode_bytes(data: bytes) -> int:
    """Decodes everything decodable in `data`; returns the frame count. Raises only FormatError."""
    from oval import bitstream, codec
    model = fuzz_model()
    try:
        reader = bitstream.StreamReader(io.BytesIO(data), limits())
        header = dataclasses.replace(reader.header, model_fingerprint=model.fingerprint)
        decoder = codec.Decoder(model, header)
        frames = 0
        for item in reader:
            if isinstance(item, bitstream.FramePacket):
                frame = decoder.decode(item)
                assert frame.shape == (header.height, header.width, 3) and frame.dtype == np.uint8
                frames += 1
        return frames
    except bitstream.FormatError:
        return -1


def make_seeds() -> None:
    from oval import codec
    from oval.kernels import frames_to_tensor  # noqa: F401  (same import path the decoder uses)
    model = fuzz_model()
    rng = np.random.default_rng(0)
    for name, (h, w, n) in {"small": (16, 16, 2), "odd": (23, 37, 3), "wide": (16, 96, 1)}.items():
        sink = io.BytesIO()
        encoder = codec.Encoder(model, sink, w, h, 25, n)
        for _ in range(n):
            yy, xx = np.mgrid[0:h, 0:w]
            frame = np.stack([(xx * 7 + yy * 3 + c * 40 + rng.integers(0, 20)) % 256 for c in range(3)], -1)
            encoder.encode(frame.astype(np.uint8))
        encoder.close()
        (HERE / "corpus" / f"{name}.oval").write_bytes(sink.getvalue())


if __name__ == "__main__":
    if sys.argv[1:] == ["--make-seeds"]:
        make_seeds()
