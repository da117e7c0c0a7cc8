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
from oval.bitstream import ColourSpace, FormatError, FramePacket, FrameType, StreamHeader
from oval.errors import NonFiniteLatents
from oval.kernels import frames_to_tensor, tensor_to_frames
from oval.metrics import mse
from oval.models.base import coded_offset, coded_size, pad_to_stride


@dataclasses.dataclass
class FrameResult:
    index: int
    bytes: int  # size of the frame's unit in the stream, container overhead included
    recon: np.ndarray  # uint8 (H, W, 3) RGB, exactly what a decoder produces
    frame_type: FrameType = FrameType.INTRA
    skipped: bool = False  # a P-frame sent as its motion alone (skip_frames models)


def min_coded_side(model) -> int:
    """The smallest side a model codes a frame at (oval-rt: tiny frames are coded among their own
    edge pixels); earlier models have no minimum."""
    return getattr(model, "min_coded_side", 0)


def latent_shape(model, width: int, height: int) -> tuple[int, int]:
    h, w = coded_size(height, width, model.stride, min_coded_side(model))
    return h // model.stride, w // model.stride


def frame_cost(model, x: torch.Tensor, payload: bytes, level: int, reference, window=None,
               decode_level: Optional[int] = None) -> float:
    """A coded frame's rate-distortion cost in bits: its size plus λ·255² (level's λ) times the
    squared error of its decoding against x (the coded, padded frame), within window = (top, left,
    height, width) if given (the picture without its padding); its size alone for a model without
    levels. decode_level: the level the payload was coded at, if not `level`."""
    bits = 8 * len(payload)
    if not model.levels:
        return bits
    x_hat, _ = model.decompress_frame(payload, latent_shape(model, x.shape[-1], x.shape[-2]),
                                      level if decode_level is None else decode_level, reference)
    if window is not None:
        top, left, h, w = window
        x_hat, x = x_hat[:, :, top:top + h, left:left + w], x[:, :, top:top + h, left:left + w]
    return bits + model.lambdas[level - 1] * 255**2 * ((x_hat - x).double() ** 2).sum().item()


def fps_fraction(header: StreamHeader) -> Fraction:
    return Fraction(header.fps_num, header.fps_den)


UPDATE_PARAMETER_SET = 1  # see bitstream.ModelUpdate
DEFAULT_INTRA_PERIOD = 32  # temporal models: an I-frame every N frames (a second or so of video)


@dataclasses.dataclass(frozen=True)
class Preset:
    """How hard the encoder works, as classical encoders name their speed presets: the stream's
    format is the same whichever, and every decoder reads it. search: the motion search
    (motion_search.SEARCHES), for models that move by overlapped blocks (the shipped default): refine the
    vectors for the blend or not, or judge the refinement with the taps the frame will use.
    refine_steps: gradient steps on each I-frame's and each P-frame's latent before it is coded
    (oval.models.refine)."""
    search: str
    refine_steps: tuple = (0, 0)


PRESETS = {"fast": Preset("block"), "medium": Preset("overlapped"), "slow": Preset("overlapped-filter"),
           "slower": Preset("overlapped-filter", refine_steps=(12, 12))}
DEFAULT_PRESET = "medium"


def check_quality(model, quality: int) -> None:
    if model.levels == 0 and quality != 0:
        raise ValueError(f"model {model.arch} has one quality level (0); --quality {quality} is not available")
    if model.levels and not 1 <= quality <= model.levels:
        raise ValueError(f"--quality must be 1..{model.levels} for model {model.arch}, not {quality}")


def intra_period_for(model, intra_period: Optional[int]) -> int:
    """The intra period asked for, or the model's default; ValueError if the model cannot do it."""
    if intra_period is None:
        return DEFAULT_INTRA_PERIOD if model.temporal else 1
    if intra_period < 0 or (intra_period != 1 and not model.temporal):
        raise ValueError(f"--intra-period {intra_period}: model {model.arch} codes intra frames only (1)"
                         if intra_period >= 0 else "--intra-period must be 0 or more")
    return intra_period


class Decoder:
    """Decodes frame packets of one stream with a model whose fingerprint matches the header.

    Keeps the reference a P-frame needs; a frame that fails (or is reported lost with
    `drop_reference`) leaves none, so the P-frames after it wait for the next I-frame.
    """

    def __init__(self, model, header: StreamHeader, device: torch.device = torch.device("cpu")):
        if model.fingerprint != header.model_fingerprint:
            raise ModelMismatch(header, model)
        if model.colour_space != header.colour_space.label:
            raise FormatError(f"stream is coded in {header.colour_space.name}, model {model.arch} "
                              f"codes in {model.colour_space}")
        self.model, self.header, self.device = model, header, device
        self.shape = latent_shape(model, header.width, header.height)
        self.reference = None

    def drop_reference(self) -> None:
        self.reference = None

    @torch.no_grad()
    def apply_update(self, update: bitstream.ModelUpdate) -> None:
        """Adds a MODEL_UPDATE's deltas to the model's updatable parameters (in place)."""
        params = self.model.update_parameters()
        if update.parameter_set != UPDATE_PARAMETER_SET:
            raise FormatError(f"model update names parameter set {update.parameter_set}, "
                              f"this decoder knows {UPDATE_PARAMETER_SET}")
        if len(update.deltas) != sum(p.numel() for p in params):
            raise FormatError(f"model update has {len(update.deltas)} values, model {self.model.arch} "
                              f"updates {sum(p.numel() for p in params)}")
        deltas = torch.tensor(update.deltas, dtype=torch.float64) * 2.0 ** -update.step_log2
        start = 0
        for p in params:
            p.add_(deltas[start:start + p.numel()].view_as(p).to(p.device, p.dtype))
            start += p.numel()

    def can_decode(self, packet: FramePacket) -> bool:
        """False for a P-frame whose reference was lost: conceal it, the next I-frame recovers."""
        return packet.frame_type == FrameType.INTRA or self.reference is not None

    @torch.no_grad()
    def decode(self, packet: FramePacket) -> np.ndarray:
        if packet.frame_type == FrameType.INTER and not self.model.temporal:
            raise FormatError(f"frame {packet.index}: model {self.model.arch} has no P-frames")
        if not self.can_decode(packet):
            raise FormatError(f"frame {packet.index}: P-frame without a decoded reference")
        try:
            check_quality(self.model, packet.quality)
        except ValueError:
            raise FormatError(f"frame {packet.index}: quality level {packet.quality} is not in model "
                              f"{self.model.arch}") from None
        reference = self.reference if packet.frame_type == FrameType.INTER else None
        self.reference = None  # until this frame has decoded
        try:
            x_hat, self.reference = self.model.decompress_frame(packet.payload, self.shape, packet.quality, reference)
        except FormatError as e:
            raise FormatError(f"frame {packet.index}: {e}") from None
        h, w = self.header.height, self.header.width
        top, left = coded_offset(h, w, self.model.stride, min_coded_side(self.model))
        x_hat = x_hat[:, :, top:top + h, left:left + w]
        return tensor_to_frames(x_hat, self.model.colour_space).cpu().numpy()[0]


class ModelMismatch(FormatError):
    def __init__(self, header: StreamHeader, model):
        super().__init__(
            f"stream was encoded with model {header.model_arch} "
            f"(fingerprint {header.model_fingerprint.hex()[:16]}), but the loaded model is "
            f"{model.arch} (fingerprint {model.fingerprint.hex()[:16]}); pass --model with the encoder's model")


class Encoder:
    """Encodes frames of one stream and writes each unit as soon as the frame is coded.

    quality: the model's level (None: its default). intra_period: an I-frame every N frames (1: all
    intra, 0: only the first; None: DEFAULT_INTRA_PERIOD for a temporal model, else 1), counted
    from the last I-frame. scene_cuts: a P-frame that costs over SCENE_CUT_RATIO times the group's
    P-frames so far (or, before the group has two, more than its I-frame) is also coded as an
    I-frame, and the one with the lower rate-distortion cost is kept (bits + λ·255²·squared error,
    the training objective at the frame's level; models without levels: the smaller): a cut, a
    flash, a new shot, where prediction from the last frame fails. By size alone, a first P-frame
    that lifts the group's quality above its I-frame's at about the I-frame's size was coded intra,
    and so was every frame after it. So is a P-frame whose squared error is over COLLAPSE_RATIO
    times the mean of the group's P-frames so far (after two), if coding it intra costs less: a
    reference that has started to drift (seen on carphone at level 9, 37 dB falling to 14 dB over
    five frames at a high smoothness charge).

    intra_boost: I-frames are coded this many levels above the stream's quality (capped at the
    model's top level; each packet names its level): the P-frames of the group predict from a better
    picture, as a classical encoder gives its I-frames a lower quantiser.

    level_cycle: level offsets of the P-frames by their place in the group (the k-th P-frame after
    the I-frame is coded at the stream's quality + level_cycle[k % len], within the model's levels):
    a hierarchy of quality, as classical low-delay encoders give every fourth frame a lower
    quantiser, so that the frames after it predict from a better picture. Empty: every P-frame at
    the stream's quality.

    charge_probe_period: for a model with a choice of block matching smoothness charges
    (model.smoothness_charges), the first P-frame of each group, P-frame charge_probe_at (counted
    from 0) and every this many P-frames after it are coded with each charge, the one of the lowest
    rate-distortion cost kept, and its charge used until the next probe (1: every P-frame; 0: never,
    the model's first charge throughout). A second probe early in the group (charge_probe_at 1):
    the first P-frame, predicted from the I-frame, may favour another charge than the frames after
    it (lomiri-free: the highest first, the lowest after).

    preset: the encoder's effort (PRESETS; None: the model's own settings, which benchmarks' variants set).
    """

    SCENE_CUT_RATIO = 1.5
    COLLAPSE_RATIO = 2.0  # 3 dB below the group's P-frames
    CHARGE_PROBE_PERIOD = 16
    CHARGE_PROBE_AT = 0
    CHARGE_MARGIN = 0.02

    def __init__(self, model, sink: BinaryIO, width: int, height: int, fps: Fraction = Fraction(25),
                 frame_count: int = 0, device: torch.device = torch.device("cpu"),
                 quality: Optional[int] = None, intra_period: Optional[int] = None, scene_cuts: bool = True,
                 charge_probe_period: Optional[int] = None, intra_boost: int = 0, level_cycle: tuple = (),
                 charge_probe_at: Optional[int] = None, preset: Optional[str] = None):
        fps = Fraction(fps).limit_denominator(1001000)
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
        self.preset = None if preset is None else PRESETS[preset]
        quality = model.default_quality if quality is None else quality
        check_quality(model, quality)
        intra_period = intra_period_for(model, intra_period)
        self.header = StreamHeader(model_arch=model.arch, model_fingerprint=model.fingerprint,
                                   width=width, height=height, fps_num=fps.numerator,
                                   fps_den=fps.denominator, frame_count=frame_count, quality=quality,
                                   colour_space=ColourSpace.from_label(model.colour_space), intra_period=intra_period)
        self.model, self.device = model, device
        self.writer = bitstream.StreamWriter(sink, self.header)
        self.decoder = Decoder(model, self.header, device)
        self.index = 0
        self.scene_cuts = scene_cuts and model.temporal and intra_period != 1
        self.since_intra = 0  # frames since the last I-frame
        self.p_sizes: list = []  # payload sizes of this group's P-frames
        self.p_errors: list = []  # their mean squared errors (pixel values 0..255), where scene cuts are tested
        self.intra_size = 0  # payload size of the group's I-frame
        if intra_boost < 0:
            raise ValueError(f"intra_boost must be 0 or more levels, not {intra_boost}")
        self.intra_level = min(quality + intra_boost, model.levels) if model.levels else quality
        if level_cycle and not model.levels:
            raise ValueError(f"level_cycle needs a model with quality levels; {model.arch} has none")
        self.level_cycle = tuple(int(v) for v in level_cycle)
        self.charges = tuple(getattr(model, "smoothness_charges", ()))
        self.charge = self.charges[0] if self.charges else None  # the one in use until the next probe
        self.charge_probe_period = (self.CHARGE_PROBE_PERIOD if charge_probe_period is None
                                    else charge_probe_period)
        self.charge_probe_at = self.CHARGE_PROBE_AT if charge_probe_at is None else charge_probe_at
        if self.charge_probe_at < 0:
            raise ValueError(f"charge_probe_at must be a P-frame's place in the group (0 or more), not {charge_probe_at}")

    def frame_type(self) -> FrameType:
        period = self.header.intra_period
        due = self.index == 0 or (period > 0 and self.since_intra >= period)
        return FrameType.INTRA if due or self.decoder.reference is None else FrameType.INTER

    @torch.no_grad()
    def encode(self, rgb: np.ndarray) -> FrameResult:
        h, w = rgb.shape[:2]
        if (w, h) != (self.header.width, self.header.height):
            raise ValueError(f"frame {self.index} is {w}x{h}, the stream is "
                             f"{self.header.width}x{self.header.height}")
        x = frames_to_tensor(torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device), self.model.colour_space)
        frame_type = self.frame_type()
        reference = self.decoder.reference if frame_type == FrameType.INTER else None
        x = pad_to_stride(x, self.model.stride, min_coded_side(self.model))
        try:
            payload = (self._probe_charges(x, reference) if frame_type == FrameType.INTER and self._probing()
                       else self._compress(x, reference))
        except NonFiniteLatents:
            if frame_type != FrameType.INTER:
                raise
            # The reference has drifted beyond what the P-frames can code: start again from pixels.
            frame_type, payload = FrameType.INTRA, self._compress(x, None)
        # Right after an I-frame there is no P-frame size to compare with: a P-frame costing more
        # than the I-frame itself is the sign (two cuts in a row on bikes went unseen without it).
        limit = (self.SCENE_CUT_RATIO * sum(self.p_sizes) / len(self.p_sizes) if len(self.p_sizes) >= 2
                 else self.intra_size)
        compared = frame_type == FrameType.INTER and self.scene_cuts and len(payload) > limit
        if compared:
            frame_type, payload = self._cheaper_of(x, payload, reference)
        level = self.intra_level if frame_type == FrameType.INTRA else self._inter_level()
        packet = FramePacket(self.index, frame_type, level, payload)
        # The reconstruction (and the next reference) come from the decoder's own path.
        recon = self.decoder.decode(packet)
        watched = frame_type == FrameType.INTER and self.scene_cuts
        error = mse(recon, rgb) if watched else None
        if watched and not compared and self._collapsed(error):
            # A P-frame far worse than the group's so far: its reference has started to drift (a
            # feature the P-frames amplify), and each frame after would be worse still.
            frame_type, payload = self._cheaper_of(x, payload, reference)
            if frame_type == FrameType.INTRA:
                packet = FramePacket(self.index, frame_type, self.intra_level, payload)
                recon = self.decoder.decode(packet)
        skipped = False
        if frame_type == FrameType.INTER:
            packet, recon, skipped = self._skipped_if_cheaper(rgb, packet, recon, reference, error)
        if frame_type == FrameType.INTRA:
            self.since_intra, self.p_sizes, self.p_errors, self.intra_size = 0, [], [], len(payload)
        elif not skipped:  # the scene-cut and drift tests compare coded P-frames
            self.p_sizes.append(len(payload))
            if error is not None:
                self.p_errors.append(error)
        self.since_intra += 1
        size = self.writer.write_frame(packet)
        result = FrameResult(self.index, size, recon, frame_type, skipped)
        self.index += 1
        return result

    def _level(self, reference) -> int:
        """The level a frame is coded at: P-frames the stream's (or its place in level_cycle's),
        I-frames (no reference) boosted."""
        return self._inter_level() if reference is not None else self.intra_level

    def _inter_level(self) -> int:
        if not self.level_cycle:
            return self.header.quality
        offset = self.level_cycle[(self.since_intra - 1) % len(self.level_cycle)]
        return min(max(self.header.quality + offset, 1), self.model.levels)

    def _cost(self, x: torch.Tensor, payload: bytes, reference) -> float:
        """At the P-frame's λ for either frame type: the scene-cut test compares the two at one
        price, the P-frame's."""
        h, w = self.header.height, self.header.width
        top, left = coded_offset(h, w, self.model.stride, min_coded_side(self.model))
        return frame_cost(self.model, x, payload, self._inter_level(), reference, (top, left, h, w),
                          decode_level=self._level(reference))

    def _cheaper_of(self, x: torch.Tensor, payload: bytes, reference) -> tuple:
        """(frame type, payload): the P-frame, or the frame coded intra where that costs less."""
        intra = self._compress(x, None)
        if not self._cost(x, payload, reference) <= self._cost(x, intra, None):  # a NaN picture loses too
            return FrameType.INTRA, intra
        return FrameType.INTER, payload

    def _skipped_if_cheaper(self, rgb: np.ndarray, packet: FramePacket, recon: np.ndarray, reference,
                            error: Optional[float] = None) -> tuple:
        """(packet, recon, skipped): the P-frame, or (models with skip frames) the cheapest of the
        ways to skip it where that costs less: bits plus λ·255² times the squared error, a skipped
        frame's error weighed model.skip_error_weight times (rt.SKIP_ERROR_WEIGHT). error: the
        coded frame's mean squared error, if the encoder has it already."""
        skipped_payloads = getattr(self.model, "skipped_payloads", None)
        candidates = skipped_payloads(packet.payload, self.decoder.shape) if skipped_payloads else []
        if not candidates:
            return packet, recon, False
        price = self.model.lambdas[packet.quality - 1] * rgb.size  # per unit of mean squared error
        error = mse(recon, rgb) if error is None else error
        best = (8 * len(packet.payload) + price * error, packet, recon, self.decoder.reference)
        for payload in candidates:
            skipped = FramePacket(packet.index, packet.frame_type, packet.quality, payload)
            self.decoder.reference = reference
            skipped_recon = self.decoder.decode(skipped)
            cost = 8 * len(payload) + price * self.model.skip_error_weight * mse(skipped_recon, rgb)
            if cost < best[0]:
                best = (cost, skipped, skipped_recon, self.decoder.reference)
        _, chosen, recon, self.decoder.reference = best
        return chosen, recon, chosen is not packet

    def _collapsed(self, error: float) -> bool:
        """A P-frame's squared error over COLLAPSE_RATIO times the mean of the group's P-frames."""
        return len(self.p_errors) >= 2 and error > self.COLLAPSE_RATIO * sum(self.p_errors) / len(self.p_errors)

    def _probing(self) -> bool:
        period, placed = self.charge_probe_period, len(self.p_sizes) - self.charge_probe_at
        return len(self.charges) > 1 and period > 0 and (not self.p_sizes or placed >= 0 and placed % period == 0)

    def _probe_charges(self, x: torch.Tensor, reference) -> bytes:
        """The P-frame coded with each smoothness charge; the cheapest kept, its charge from now on.
        The model's first charge (the one its P-frames know best) wins ties within CHARGE_MARGIN:
        one frame's cost is a noisy guide to the next sixteen (carphone at level 9 chose 0.006 over
        0.0006 by 0.4% and its P-frames drifted)."""
        best = None
        for charge in self.charges:
            payload = self._compress(x, reference, charge)
            cost = self._cost(x, payload, reference) * (1 if charge == self.charges[0] else 1 + self.CHARGE_MARGIN)
            if best is None or cost < best[0]:
                best = (cost, charge, payload)
        _, self.charge, payload = best
        return payload

    def _compress(self, x: torch.Tensor, reference, charge: Optional[float] = None) -> bytes:
        charge = self.charge if charge is None else charge
        options = {}
        if self.preset is not None and hasattr(self.model, "refine_steps"):
            options["refine_steps"] = self.preset.refine_steps[reference is not None]
        if reference is not None and charge is not None:
            options.update(charge=charge, search=None if self.preset is None else self.preset.search)
        try:
            return self.model.compress_frame(x, self._level(reference), reference, **options)
        except NonFiniteLatents as e:
            raise NonFiniteLatents(f"frame {self.index}: {e}") from None

    def update_model(self, update: bitstream.ModelUpdate) -> int:
        """Sends decoder parameter deltas; they apply (here too) from the next frame on."""
        size = self.writer.write_model_update(update)
        self.decoder.apply_update(update)  # the model is shared: encoder and decoder stay in step
        return size

    def close(self) -> None:
        self.writer.close()

    @property
    def bytes_written(self) -> int:
        return self.writer.bytes_written


def open_stream(source: BinaryIO, limits: Optional[bitstream.Limits] = None) -> bitstream.StreamReader:
    return bitstream.StreamReader(source, limits or bitstream.Limits())
