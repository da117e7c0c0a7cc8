"""What the fuzzer runs: the container parser and the whole decode path on arbitrary bytes.

The only exception allowed out is the codec's own FormatError. Limits are small, so a hostile header
cannot make a fuzz run allocate much. The header's model fingerprint is replaced by the fuzz model's,
so mutated streams reach the entropy decoder and the synthesis transform instead of stopping at the
model check.

    python tests/fuzz/harness.py --make-seeds [NAME ...]  # (re)writes tests/fuzz/corpus/ seeds (and models/ where missing)
"""
import dataclasses
import io
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
LIMITS = None
_MODELS: dict = {}
_PRISTINE: dict = {}  # id(model) -> its update parameters as built
# Tiny deterministic models with built tables (fast to decode), one per architecture.
FUZZ_MODELS = {"oval-factorized": {"N": 4, "M": 4},
               "oval-video": {"N": 4, "M": 4, "C": 4, "memory": True},
               "oval-rt": {"C": 8, "M": 8, "Z": 4, "P": 8}}


def model_path(arch: str) -> Path:
    return HERE / "models" / f"{arch}.safetensors"


def build_fuzz_model(arch: str):
    from oval.models.store import build_model
    torch.manual_seed(1234)
    model = build_model(arch, FUZZ_MODELS[arch]).eval()
    model.update()
    return model


def fuzz_model(arch: str = "oval-factorized"):
    """The fuzz model of `arch` (the factorized one for an unknown architecture), as committed in
    models/: rebuilt from its seed on another CPU its float-derived tables can differ, and the
    seed streams' per-frame checks would then refuse them (--make-seeds writes the files)."""
    arch = arch if arch in FUZZ_MODELS else "oval-factorized"
    if arch not in _MODELS:
        from oval.models.store import fingerprint, load_model
        model = load_model(str(model_path(arch))) if model_path(arch).is_file() else build_fuzz_model(arch)
        model.fingerprint = fingerprint(model)
        _PRISTINE[id(model)] = [p.detach().clone() for p in model.update_parameters()]
        _MODELS[arch] = model
    return _MODELS[arch]


def limits():
    global LIMITS
    if LIMITS is None:
        from oval.bitstream import Limits
        LIMITS = Limits(max_width=256, max_height=256, max_frames=1000, max_unit_bytes=1 << 16)
    return LIMITS


def decode_bytes(data: bytes) -> int:
    """Decodes everything decodable in `data`; returns the frame count. Raises only FormatError."""
    from oval import bitstream, codec
    try:
        reader = bitstream.StreamReader(io.BytesIO(data), limits())
        model = fuzz_model(reader.header.model_arch)
        header = dataclasses.replace(reader.header, model_fingerprint=model.fingerprint)
        decoder = codec.Decoder(model, header)
        frames = 0
        try:
            for item in reader:  # the same decisions oval-decode makes
                if isinstance(item, bitstream.ModelUpdate):
                    decoder.apply_update(item)
                elif isinstance(item, bitstream.CorruptFrame):
                    decoder.drop_reference()
                elif isinstance(item, bitstream.FramePacket) and decoder.can_decode(item):
                    frame = decoder.decode(item)
                    assert frame.shape == (header.height, header.width, 3) and frame.dtype == np.uint8
                    frames += 1
        finally:
            _reset_updates(model)
        return frames
    except bitstream.FormatError:
        return -1


def _reset_updates(model) -> None:
    """Model updates change the shared fuzz model in place: undo them for the next input."""
    with torch.no_grad():
        for p, v in zip(model.update_parameters(), _PRISTINE[id(model)]):
            p.copy_(v)


def make_seeds() -> None:
    from oval import bitstream, codec
    from oval.models.store import save_model
    (HERE / "models").mkdir(exist_ok=True)
    for arch in FUZZ_MODELS:
        if not model_path(arch).is_file():
            save_model(build_fuzz_model(arch), model_path(arch))
    rng = np.random.default_rng(0)
    seeds = {"small": ("oval-factorized", 16, 16, 2), "odd": ("oval-factorized", 23, 37, 3),
             "wide": ("oval-factorized", 16, 96, 1), "video_ip": ("oval-video", 32, 48, 4),
             "video_odd_update": ("oval-video", 23, 37, 3), "rt_ip": ("oval-rt", 32, 48, 4),
             "rt_tiny_update": ("oval-rt", 3, 5, 3)}
    only = set(sys.argv[2:])  # names to write (default: all)
    for name, (arch, h, w, n) in seeds.items():
        if only and name not in only:
            continue
        model = fuzz_model(arch)
        _reset_updates(model)
        sink = io.BytesIO()
        encoder = codec.Encoder(model, sink, w, h, 25, n, intra_period=3 if model.temporal else 1)
        for i in range(n):
            yy, xx = np.mgrid[0:h, 0:w]
            frame = np.stack([(xx * 7 + yy * 3 + c * 40 + i * 5 + rng.integers(0, 20)) % 256 for c in range(3)], -1)
            encoder.encode(frame.astype(np.uint8))
            if name.endswith("update") and i == 0:
                count = sum(p.numel() for p in model.update_parameters())
                encoder.update_model(bitstream.ModelUpdate(1, 8, tuple(int(v) for v in rng.integers(-9, 10, count))))
        encoder.close()
        _reset_updates(model)
        (HERE / "corpus" / f"{name}.oval").write_bytes(sink.getvalue())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--make-seeds"]:
        make_seeds()
