"""Encoder and decoder sessions: where a model meets the bitstream, frame by frame.

Everything that turns frames into a stream (the CLI, online learning, runtimes, benchmarks) goes
through here. The encoder's reconstruction is produced by the decoder's own code path from the
coded bytes, so `oval-decode` output equals the encoder's `--recon` frames bit for bit.
"""
import dataclasses
from fractions import Fraction
from typing import BinaryIO, Optional

import numpy as np
import torch

from oval import bitstream
from oval.bitstream import FormatError, FramePacket, FrameType, StreamHeader
from oval.kernels import frames_to_tensor, tensor_to_frames
from oval.models.factorized import pad_to_stride


@dataclasses.dataclass
class FrameResult:
    index: int
    bytes: int  # size of the frame's unit in the stream, container overhead included
    recon: np.ndarray  # uint8 (H, W, 3) RGB, exactly what a decoder produces


def latent_shape(model, width: int, height: int) -> tuple[int, int]:
    s = model.stride
    return (-(-height // s), -(-width // s))


def fps_fraction(header: StreamHeader) -> Fraction:
    return Fraction(header.fps_num, header.fps_den)


class Decoder:
    """Decodes frame packets of one stream with a model whose fingerprint matches the header."""

    def __init__(self, model, header: StreamHeader, device: torch.device = torch.device("cpu")):
        if model.fingerprint != header.model_fingerprint:
            raise ModelMismatch(header, model)
        self.model, self.header, self.device = model, header, device
        self.shape = latent_shape(model, header.width, header.height)

    @torch.no_grad()
    def decode(self, packet: FramePacket) -> np.ndarray:
        if packet.frame_type != FrameType.INTRA:
            raise FormatError(f"frame {packet.index}: frame type {packet.frame_type.name} "
                              f"is not supported by model {self.model.arch}")
        x_hat = self.model.decompress([[packet.payload]], self.shape)["x_hat"]
        x_hat = x_hat[:, :, :self.header.height, :self.header.width]
        return tensor_to_frames(x_hat).cpu().numpy()[0]


class ModelMismatch(FormatError):
    def __init__(self, header: StreamHeader, model):
        super().__init__(
            f"stream was encoded with model {header.model_arch} "
            f"(fingerprint {header.model_fingerprint.hex()[:16]}), but the loaded model is "
            f"{model.arch} (fingerprint {model.fingerprint.hex()[:16]}); pass --model with the encoder's model")


class Encoder:
    """Encodes frames of one stream and writes each unit as soon as the frame is coded."""

    def __init__(self, model, sink: BinaryIO, width: int, height: int, fps: Fraction = Fraction(25),
                 frame_count: int = 0, device: torch.device = torch.device("cpu")):
        fps = Fraction(fps).limit_denominator(1001000)
        self.header = StreamHeader(model_arch=model.arch, model_fingerprint=model.fingerprint,
                                   width=width, height=height, fps_num=fps.numerator,
                                   fps_den=fps.denominator, frame_count=frame_count)
        self.model, self.device = model, device
        self.writer = bitstream.StreamWriter(sink, self.header)
        self.decoder = Decoder(model, self.header, device)
        self.index = 0

    @torch.no_grad()
    def encode(self, rgb: np.ndarray) -> FrameResult:
        h, w = rgb.shape[:2]
        if (w, h) != (self.header.width, self.header.height):
            raise ValueError(f"frame {self.index} is {w}x{h}, the stream is "
                             f"{self.header.width}x{self.header.height}")
        x = frames_to_tensor(torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device))
        strings = self.model.compress(pad_to_stride(x, self.model.stride))["strings"]
        packet = FramePacket(self.index, FrameType.INTRA, self.header.quality, strings[0][0])
        size = self.writer.write_frame(packet)
        result = FrameResult(self.index, size, self.decoder.decode(packet))
        self.index += 1
        return result

    def close(self) -> None:
        self.writer.close()

    @property
    def bytes_written(self) -> int:
        return self.writer.bytes_written


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def open_stream(source: BinaryIO, limits: Optional[bitstream.Limits] = None) -> bitstream.StreamReader:
    return bitstream.StreamReader(source, limits or bitstream.Limits())
