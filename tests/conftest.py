import io

import numpy as np
import pytest
import torch

from oval import codec
from oval.io import VideoWriter
from oval.models.store import build_model, save_model
from oval.samples import sample_path


@pytest.fixture(scope="session")
def bikes():
    return str(sample_path("bikes"))


@pytest.fixture(scope="session")
def carphone():
    return str(sample_path("carphone"))


@pytest.fixture(scope="session")
def carphone_frames(carphone):
    from oval.io import read_frames
    return read_frames(carphone, 8)


def write_clip(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    writer = VideoWriter(path, w, h, fps)
    for f in frames:
        writer.write(f)
    writer.close()
    return str(path)


def moving_pattern(n, height, width, seed=0):
    """Smooth gradients that move: compressible, but not trivially constant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = rng.uniform(0, 2 * np.pi, 3)
    frames = []
    for t in range(n):
        chans = [127 + 100 * np.sin(0.09 * xx + 0.05 * yy + base[c] + 0.3 * t) for c in range(3)]
        frames.append(np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8))
    return frames


def encode_frames(model, frames, **options):
    """Code frames into an in-memory stream: (the stream's bytes, the encoder's reconstructions)."""
    height, width = frames[0].shape[:2]
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, width, height, **options)
    recons = [encoder.encode(f).recon for f in frames]
    encoder.close()
    return sink.getvalue(), recons


def decode_stream(model, stream: bytes):
    """Decode a whole stream: (its packets, the decoded pictures)."""
    reader = codec.open_stream(io.BytesIO(stream))
    decoder = codec.Decoder(model, reader.header)
    packets = list(reader)
    return packets, [decoder.decode(p) for p in packets]


@pytest.fixture(scope="session")
def odd_clip(tmp_path_factory):
    """A lossless synthetic clip of odd size (not a multiple of the model's stride)."""
    return write_clip(tmp_path_factory.mktemp("clips") / "odd.mkv", moving_pattern(4, 45, 71))


def _tiny(tmp_path_factory, arch: str, config: dict, name: str) -> str:
    """A small untrained model with its tables built (seeded): fast, for tests of mechanics."""
    torch.manual_seed(0)
    model = build_model(arch, config).eval()
    model.update()
    path = tmp_path_factory.mktemp("models") / f"{name}.safetensors"
    save_model(model, path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    return _tiny(tmp_path_factory, "oval-factorized", {"N": 8, "M": 8}, "tiny")


@pytest.fixture(scope="session")
def tiny_video_model_path(tmp_path_factory):
    """Temporal, six quality levels, ConvLSTM memory."""
    return _tiny(tmp_path_factory, "oval-video", {"N": 8, "M": 8, "C": 8, "memory": True}, "tiny_video")


@pytest.fixture(scope="session")
def tiny_rt_model_path(tmp_path_factory):
    """Integer prior, ten quality levels."""
    return _tiny(tmp_path_factory, "oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16}, "tiny_rt")


@pytest.fixture(scope="session")
def tiny_rt_residual_model_path(tmp_path_factory):
    """Integer prior, explicit motion, residual P-frames (the default's kind)."""
    return _tiny(tmp_path_factory, "oval-rt", {"C": 16, "M": 16, "Z": 8, "P": 16, "motion": True, "residual": True},
                 "tiny_rt_residual")
