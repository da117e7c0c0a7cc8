"""oval-rt: the second-generation video model. Fast transforms at 1/8 resolution, conditional
P-frames with a feature-domain temporal context, and an exact integer prior path.

    I-frame:  x ──unshuffle 8──▶ g_a_i ──▶ y·g_q ──LatentPrior(intra)──▶ ŷ ──÷g_q──▶ g_s_i ──▶ F ──▶ x̂
    P-frame:  F_{t-1} ──context──▶ c_t        (with motion: warp(F_{t-1}) + stem(warp(x̂_{t-1})), see below)
              x ──unshuffle 8──▶ g_a_p(·, c_t) ──▶ y·g_q ──LatentPrior(temporal, ŷ_{t-1})──▶ ŷ
              ŷ ──÷g_q──▶ g_s_p(·, c_t) ──▶ F_t ──▶ x̂        (F_t is the next frame's reference)

Temporal coding is conditional in the feature domain, as in DCVC-RT (Jia et al. 2025): the previous
frame's decoder feature (1/8 resolution) informs the encoder and the decoder, and the previous
latent ŷ_{t-1} informs the prior. Only the prior picks probability tables, and it sees integers
only (ẑ, ŷ_{t-1} on a 1/16 grid), so table choice is exact on every machine; the float features
shape pixels and never a probability.

With `motion` (oval.models.motion), the encoder sends one quarter-pel vector per 16x16 block;
both sides warp the previous picture and feature with them before the context network, and move
ŷ_{t-1} by whole cells (an integer gather) before the temporal prior. With `switchable_filter` the
encoder also names the picture's interpolation filter per frame (bilinear or bicubic), and with
`skip_frames` it may send a P-frame as its motion alone, the prediction standing as the picture.

Variable rate: quality level q scales the latent by a learned per-channel gain g_q before rounding
(Cui et al. 2021) and the 1/8-resolution features by per-level channel scales; each level trains
at its own λ (QUALITY_LAMBDAS), drawn per sample.
"""
import dataclasses
from typing import NamedTuple, Optional

import torch
from torch import nn

from oval.bitstream import FormatError, read_varint
from oval.models import motion, motion_search
from oval.models.base import MultiRate
from oval.models.blocks import DepthConvBlock, LevelScale, shuffle, striped, unshuffle
from oval.models.hyperprior import MEAN_FRAC, LatentPrior
from oval.models.refine import refine
from oval.models.registry import register_model

# λ of each quality level for D = 255² · MSE on 8-bit RGB: doubling per level, from below the
# first generation's lowest rate to near-transparent quality at the top.
QUALITY_LAMBDAS = tuple(0.0009 * 2**k for k in range(10))
DEFAULT_LEVEL = 6


@dataclasses.dataclass
class RTConfig:
    C: int = 192  # channels of the 1/8-resolution features (at least the 192 values of an 8x8 RGB block:
    # fewer would put the decoder's output in a subspace and cap the PSNR)
    M: int = 128  # latent channels, at 1/8 resolution (128 numbers for an 8x8 block's 192 values: a
    # 1/16 latent of 192 channels capped carphone at 30.5 dB even unquantised)
    Z: int = 64  # hyper-latent channels (1/32)
    P: int = 96  # channels of the integer prior networks
    encoder_blocks: int = 2
    decoder_blocks: int = 3
    # A deeper intra half (0: as deep as the P-frames'): I-frames are few, so their transforms can
    # afford depth, and the intra transforms' capacity caps the top quality (benchmarks/ceiling.py).
    intra_encoder_blocks: int = 0
    intra_decoder_blocks: int = 0
    ffn_ratio: int = 2
    levels: int = len(QUALITY_LAMBDAS)
    checkerboard: bool = True
    skip: bool = True
    colour_space: str = "rgb"
    motion: bool = False  # explicit block motion in P-frames (oval.models.motion)
    residual: bool = False  # with motion: P-frames code x - x̃ (the motion-compensated residual), x̂ = x̃ + output
    switchable_filter: bool = False  # with motion: the encoder names x̃'s interpolation per frame (motion.FILTERS)
    # With motion: what each vector is sent against (motion.PREDICTORS). A coding switch the weights do
    # not see, so the fingerprint covers it (the "fingerprint" mark, oval.models.store); "left", as the
    # models before 2026-12-01 code, keeps their fingerprints.
    vector_predictor: str = dataclasses.field(default="left", metadata={"fingerprint": True})
    # With motion: how the vectors move x̂ and F (motion.COMPENSATIONS); "smooth", as the models before
    # 2026-12-02 code, keeps their fingerprints.
    compensation: str = dataclasses.field(default="smooth", metadata={"fingerprint": True})
    # With a switchable filter: a P-frame may be sent as its motion alone (SKIP_FLAG on the filter
    # byte, no latent; the picture is the motion-compensated prediction), as a classical encoder
    # skips blocks that predict well. The weights do not see it; the models before 2026-12-04 have none.
    skip_frames: bool = dataclasses.field(default=False, metadata={"fingerprint": True})
    # ẑ's channels may be coded with tables fitted to the frame, sent with it (oval.models.hyper_tables):
    # a flat picture's ẑ is nearly constant, which the learned tables still charge at every position.
    # The weights do not see it; the models before 2026-12-08 have none.
    adapted_hyper_tables: bool = dataclasses.field(default=False, metadata={"fingerprint": True})


SKIP_FLAG = 0x80  # on a skip_frames model's filter byte: the P-frame has no latent
# How much a skipped P-frame's squared error weighs against a coded one's in the encoder's choice.
# Below one paid on seven held-out clips (BD-rate against 1 at intra period 32: 0.75 -5.4% on
# tiktok, eiffel and lomiri-life, -1.9% on carphone, walls-r, the tree and palapeli; 0.5 -4.2% and
# +12.6%; 2 skips nothing): a coded P-frame at a low level buys less for the frames after it than
# its own cost shows. docs/results/compare_skip_weight*.json.
SKIP_ERROR_WEIGHT = 0.75


@dataclasses.dataclass
class Reference:
    """What a P-frame needs from the frame before it."""
    feature: torch.Tensor  # decoder feature F (1, C, H/8, W/8), float
    latent16: torch.Tensor  # ŷ in sixteenths (1, M, H/8, W/8), float64 integers: exact
    picture: Optional[torch.Tensor] = None  # x̂ (1, 3, H, W) in [0, 1]: what motion warps


def depth(cfg: RTConfig, side: str, intra: bool) -> int:
    """Blocks of the encoder or decoder side of the intra or P-frame transforms."""
    return (getattr(cfg, f"intra_{side}_blocks") if intra else 0) or getattr(cfg, f"{side}_blocks")


class Conditioning(NamedTuple):
    """What a P-frame is coded with, from the reference (and the motion vectors, if any)."""
    context: torch.Tensor  # for the P-frame transforms (1, C, h, w), float
    latent16: torch.Tensor  # the reference latent the temporal prior sees (exact)
    prediction: Optional[torch.Tensor] = None  # the warped previous picture (motion models)


class Motion(NamedTuple):
    """What a motion model's P-frame sends before its latent."""
    vectors: torch.Tensor  # (1, 2, hb, wb) int64 quarter-pel block vectors
    filter: Optional[int] = None  # index into motion.FILTERS (switchable-filter models; None: bilinear)


class MotionContext(nn.Module):
    """context(warp(F_{t-1}) + stem(unshuffle(warp(x̂_{t-1})))): the graph of a motion model's
    context, taking the already warped feature and picture."""

    def __init__(self, model: "RTModel"):
        super().__init__()
        self.context, self.stem = model.context, model.motion_stem

    def forward(self, feature: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        return self.context(feature + self.stem(unshuffle(prediction)))


class Analysis(nn.Module):
    """unshuffle 8 -> 1x1 -> [fuse context] -> level scale -> blocks -> 1x1 -> latent (1/8)."""

    def __init__(self, cfg: RTConfig, conditional: bool):
        super().__init__()
        C = cfg.C
        self.stem = nn.Conv2d(3 * 64, C, 1)
        self.fuse = nn.Conv2d(2 * C, C, 1) if conditional else None
        self.scale = LevelScale(cfg.levels, C)
        self.blocks = nn.Sequential(*(DepthConvBlock(C, cfg.ffn_ratio) for _ in range(depth(cfg, "encoder", not conditional))))
        self.down = nn.Conv2d(C, cfg.M, 1)

    def forward(self, x: torch.Tensor, level: torch.Tensor, context: Optional[torch.Tensor] = None):
        f = self.stem(unshuffle(x))
        if self.fuse is not None:
            f = self.fuse(torch.cat([f, context], 1))
        return self.down(self.blocks(self.scale(f, level)))


class Synthesis(nn.Module):
    """latent -> 1x1 -> [fuse context] -> level scale -> blocks = F -> 1x1 -> shuffle 8 -> x̂."""

    def __init__(self, cfg: RTConfig, conditional: bool):
        super().__init__()
        C = cfg.C
        self.up = nn.Conv2d(cfg.M, C, 1)
        self.fuse = nn.Conv2d(2 * C, C, 1) if conditional else None
        self.scale = LevelScale(cfg.levels, C)
        self.blocks = nn.Sequential(*(DepthConvBlock(C, cfg.ffn_ratio) for _ in range(depth(cfg, "decoder", not conditional))))
        self.head = nn.Conv2d(C, 3 * 64, 1)
        nn.init.constant_(self.head.bias, 0.5)

    def forward(self, z: torch.Tensor, level: torch.Tensor, context: Optional[torch.Tensor] = None):
        """-> (x̂, F): the picture and the feature that becomes the next reference."""
        f = self.up(z)
        if self.fuse is not None:
            f = self.fuse(torch.cat([f, context], 1))
        feature = self.blocks(self.scale(f, level))
        return shuffle(self.head(feature)), feature


@register_model("oval-rt")
class RTModel(MultiRate, nn.Module):
    LAMBDAS, DEFAULT_LEVEL = QUALITY_LAMBDAS, DEFAULT_LEVEL
    stride = 8
    # Frames are coded at least this big (edge pixels repeated): the depthwise convolutions pad with
    # zeros, so a picture of one or two latent positions would be all border (a 2x2 red frame came
    # back at 19 dB; at 32x32 coded, see tests/test_rt.py).
    min_coded_side = 32
    Config = RTConfig
    temporal = True

    def __init__(self, config: RTConfig = RTConfig()):
        super().__init__()
        if not 1 <= config.levels <= len(QUALITY_LAMBDAS):
            raise TypeError(f"levels must be 1..{len(QUALITY_LAMBDAS)}, not {config.levels}")
        if config.colour_space != "rgb":
            raise TypeError("oval-rt codes RGB")
        if config.residual and not config.motion:
            raise TypeError("residual P-frames need motion (the residual is against the motion-compensated picture)")
        if config.switchable_filter and not config.motion:
            raise TypeError("a switchable filter needs motion (it interpolates the motion-compensated picture)")
        if config.skip_frames and not config.switchable_filter:
            raise TypeError("skip frames need a switchable filter (the skip flag rides on its byte)")
        if config.compensation not in motion.COMPENSATIONS:
            raise TypeError(f"compensation {config.compensation!r} is not one of {', '.join(motion.COMPENSATIONS)}")
        if config.vector_predictor not in motion.PREDICTORS:
            raise TypeError(f"vector_predictor {config.vector_predictor!r} is not one of {', '.join(motion.PREDICTORS)}")
        self.config = cfg = config
        self.g_a_intra, self.g_s_intra = Analysis(cfg, False), Synthesis(cfg, False)
        self.g_a_inter, self.g_s_inter = Analysis(cfg, True), Synthesis(cfg, True)
        self.context = nn.Sequential(nn.Conv2d(cfg.C, cfg.C, 1), DepthConvBlock(cfg.C, cfg.ffn_ratio))
        if cfg.motion:  # the warped picture enters beside the warped feature, from zero (warm starts)
            self.motion_stem = nn.Conv2d(3 * 64, cfg.C, 1)
            nn.init.zeros_(self.motion_stem.weight)
            nn.init.zeros_(self.motion_stem.bias)
        # The block matching's smoothness charges the encoder may choose between (an encoder's
        # choice: any decodes; an ablation that fixes the vectors empties it).
        self.smoothness_charges = motion_search.CHARGES if cfg.motion else ()
        # How far the encoder searches (motion_search.SEARCHES) when the model moves by overlapped blocks
        # (an encoder's choice, the codec's preset; training keeps the cheaper block search).
        self.motion_search = "overlapped"
        # How much the overlapped searches' last choice weighs a block's prediction error against
        # its vector's bits, in the level's λ·255² (motion_search.RATE_WEIGHT; 0: that choice not made).
        self.vector_rate_weight = motion_search.RATE_WEIGHT
        # How much a skipped P-frame's squared error weighs against a coded one's when the encoder
        # chooses (skip_frames models; codec.Encoder; SKIP_ERROR_WEIGHT).
        self.skip_error_weight = SKIP_ERROR_WEIGHT
        # Gradient steps on each frame's latent before it is coded, I-frames' and P-frames'
        # (oval.models.refine; an encoder's choice, the codec's preset: every decoder reads the result).
        self.refine_steps = (0, 0)
        self.prior_intra = LatentPrior(cfg.M, cfg.Z, cfg.P, temporal=False, checkerboard=cfg.checkerboard, skip=cfg.skip)
        self.prior_inter = LatentPrior(cfg.M, cfg.Z, cfg.P, temporal=True, checkerboard=cfg.checkerboard, skip=cfg.skip)
        lambdas = torch.tensor(QUALITY_LAMBDAS[:cfg.levels], dtype=torch.float32)
        log_gain = 0.5 * torch.log(lambdas / QUALITY_LAMBDAS[DEFAULT_LEVEL - 1])
        # Separate gains for I- and P-frames: the P-frame stage trains on a frozen intra model.
        self.gain_intra = nn.Parameter(log_gain[:, None].repeat(1, cfg.M))
        self.inverse_gain_intra = nn.Parameter(-log_gain[:, None].repeat(1, cfg.M))
        self.gain_inter = nn.Parameter(log_gain[:, None].repeat(1, cfg.M))
        self.inverse_gain_inter = nn.Parameter(-log_gain[:, None].repeat(1, cfg.M))

    # --- the contract the codec and the trainer use -----------------------------------------

    @property
    def coding_device(self) -> torch.device:
        return self.gain_intra.device

    def _gain(self, level: torch.Tensor, intra: bool, inverse: bool = False) -> torch.Tensor:
        """exp(log gain) of each sample's level, (B, M, 1, 1)."""
        if intra:
            table = self.inverse_gain_intra if inverse else self.gain_intra
        else:
            table = self.inverse_gain_inter if inverse else self.gain_inter
        return torch.exp(table[level])[:, :, None, None]

    def set_mixed_quantization(self, enabled: bool) -> None:
        """Training always uses noise for the rate and rounded values for the synthesis."""

    def update(self) -> None:
        self.prior_intra.freeze()
        self.prior_inter.freeze()

    def tables_built(self) -> bool:
        return self.prior_intra.tables_built() and self.prior_inter.tables_built()

    # --- training -----------------------------------------------------------------------------

    @torch.no_grad()
    def warm_start_inter(self) -> None:
        """Starts the P-frame half as a copy of the intra half, with the context switched off (its
        fusions pass the frame's own features and ignore the context): a P-frame is then coded as
        well as an I-frame from the first step, and training only has to learn what the previous
        frame adds."""
        for src, dst in ((self.g_a_intra, self.g_a_inter), (self.g_s_intra, self.g_s_inter)):
            own = {k: v for k, v in src.state_dict().items()}
            dst.load_state_dict(own, strict=False)
            C = self.config.C
            dst.fuse.weight.zero_()
            dst.fuse.weight[:, :C, 0, 0] = torch.eye(C)
            dst.fuse.bias.zero_()
        self.gain_inter.copy_(self.gain_intra)
        self.inverse_gain_inter.copy_(self.inverse_gain_intra)
        src, dst = self.prior_intra, self.prior_inter
        for name in ("h_a", "z_density", "h_s", "cb", "gaussian"):
            getattr(dst, name).load_state_dict(getattr(src, name).state_dict())
        first_src, first_dst = src.fuse.layers[0], dst.fuse.layers[0]
        P = first_src.weight.shape[1]
        first_dst.weight.zero_()
        first_dst.weight[:, :P] = first_src.weight  # the hyperprior's features; the temporal ones start at zero
        first_dst.bias.copy_(first_src.bias)
        dst.fuse.layers[1].load_state_dict(src.fuse.layers[1].state_dict())
        dst.freeze()

    def forward(self, frames: torch.Tensor, level, train_intra: bool = True, untrained: int = 0) -> dict:
        """frames (B, T, 3, H, W): frame 0 intra, the rest P-frames, each from the model's own
        decoded reference (cascaded training). level: an int 1..levels or a (B,) tensor of them.
        With train_intra False the intra frame runs without gradients (P-frame stage). The first
        `untrained` frames are coded without gradients and left out of the result: the frames after
        them learn from a reference as deep into a group as the decoder meets it."""
        b = frames.shape[0]
        level = torch.as_tensor(level, device=frames.device).long().expand(b) - 1
        x_hats, likelihoods, x_hat, feature, prev = [], {}, None, None, None
        grad = torch.is_grad_enabled()
        charges = self.training_charges(b, frames.device)
        for t in range(frames.shape[1]):
            with torch.set_grad_enabled(grad and t >= untrained and (t > 0 or train_intra)):
                x_hat, feature, prev, lik = self._train_frame(frames[:, t], level, t == 0, x_hat, feature, prev,
                                                              charges)
            if t >= untrained:
                x_hats.append(x_hat)
                likelihoods.update({f"frame{t}_{k}": v for k, v in lik.items()})
        return {"x_hat": torch.stack(x_hats, 1), "likelihoods": likelihoods}

    def training_charges(self, batch: int, device) -> Optional[torch.Tensor]:
        """(B,) smoothness charges, one drawn per clip from those the encoder probes, so that the
        P-frames learn from every kind of field the encoder may send (None without motion)."""
        if not self.smoothness_charges:
            return None
        pick = torch.randint(len(self.smoothness_charges), (batch,))
        return torch.tensor(self.smoothness_charges, dtype=torch.float64)[pick].to(device)

    def _train_frame(self, x, level, intra: bool, x_hat, feature, prev, charges=None) -> tuple:
        """One frame of the training forward -> (x̂, its feature, its latent ŷ, likelihoods).
        charges: (B,) block matching charges (training_charges; None: motion_search.SMOOTHNESS)."""
        if intra:
            y_hat, lik = self.prior_intra(self.g_a_intra(x, level) * self._gain(level, True))
            x_hat, feature = self.g_s_intra(y_hat * self._gain(level, True, inverse=True), level)
            return x_hat, feature, y_hat, lik
        prediction = None
        if self.config.motion:
            reference = x_hat.clamp(0, 1)
            vectors = motion_search.estimate(x, reference.detach(), motion_search.smoothness_for(
                level + 1, DEFAULT_LEVEL, motion_search.SMOOTHNESS if charges is None else charges))
            feature, prev = self._moved(vectors, feature, prev)
            compensation = self.config.compensation
            filters = (motion.choose_filters(x, reference.detach(), vectors, compensation)
                       if self.config.switchable_filter else None)
            prediction = motion.predict(reference, vectors, filters, compensation)
            context = MotionContext(self)(feature, prediction)
        else:
            context = self.context(feature)
        source = self._to_code(x, prediction)
        y_hat, lik = self.prior_inter(self.g_a_inter(source, level, context) * self._gain(level, False), prev)
        x_hat, feature = self.g_s_inter(y_hat * self._gain(level, False, inverse=True), level, context)
        return self._from_coded(x_hat, prediction), feature, y_hat, lik

    # --- motion ------------------------------------------------------------------------------

    def estimate_motion(self, x: torch.Tensor, reference: Reference, level: int,
                        charge: Optional[float] = None, search: Optional[str] = None) -> Motion:
        """The encoder's choice of vectors and filter (any choice decodes; benchmarks replace it for
        ablations); charge: the block matching's smoothness charge at the default level (None:
        motion_search.SMOOTHNESS); search: how far to search (motion_search.SEARCHES; None: self.motion_search), for
        a model that moves by overlapped blocks (the others search each block's own vector)."""
        charge = motion_search.SMOOTHNESS if charge is None else charge
        search = (search or self.motion_search) if self.config.compensation == "obmc" else "block"
        rate_weight = self.vector_rate_weight * float(self.lambdas[level - 1]) * 255**2
        return self.motion_for(x, reference, motion_search.estimate(
            x, reference.picture, motion_search.smoothness_for(level, DEFAULT_LEVEL, charge), search,
            rate_weight, self.config.vector_predictor))

    def motion_for(self, x: torch.Tensor, reference: Reference, vectors: torch.Tensor) -> Motion:
        """What a P-frame sends with these vectors: with a switchable filter, the one that predicts
        better (its prediction kept for _predict: the encoder's choice made it already)."""
        if not self.config.switchable_filter:
            return Motion(vectors)
        filters, prediction = motion.choose_filters(x, reference.picture, vectors, self.config.compensation,
                                                    with_prediction=True)
        moves = Motion(vectors, int(filters[0]))
        self.__dict__["_prediction_memo"] = (reference.picture, moves.vectors, moves.filter, prediction)
        return moves

    def _to_code(self, x: torch.Tensor, prediction) -> torch.Tensor:
        """What the P-frame transforms see: the frame, or (residual models) its difference from the
        motion-compensated prediction, centred on mid-grey as the intra transforms expect pictures."""
        return x - prediction + 0.5 if self.config.residual else x

    def _from_coded(self, out: torch.Tensor, prediction) -> torch.Tensor:
        return out + prediction - 0.5 if self.config.residual else out

    def _predict(self, moves: Motion, picture: torch.Tensor) -> torch.Tensor:
        memo = self.__dict__.pop("_prediction_memo", None)
        if memo is not None and memo[0] is picture and memo[1] is moves.vectors and memo[2] == moves.filter:
            return memo[3]
        filters = None if moves.filter is None else torch.tensor([moves.filter], device=picture.device)
        return motion.predict(picture, moves.vectors, filters, self.config.compensation)

    def _motion_header(self, moves: Motion) -> bytes:
        """The filter index (switchable-filter models), then the coded vectors."""
        vectors = motion.encode(moves.vectors, self.config.vector_predictor)
        return (bytes([moves.filter]) if self.config.switchable_filter else b"") + vectors

    def _read_motion(self, payload: bytes, shape: tuple, device) -> tuple:
        """-> (Motion, the offset where the latent's payload starts, whether the frame is skipped)."""
        filter_index, start, skipped = None, 0, False
        if self.config.switchable_filter:
            filter_index = payload[0] if payload else len(motion.FILTERS)
            if self.config.skip_frames and filter_index & SKIP_FLAG:
                filter_index, skipped = filter_index & ~SKIP_FLAG, True
            if filter_index >= len(motion.FILTERS):
                raise FormatError("interpolation filter index missing or out of range")
            start = 1
        vectors, used = motion.decode(payload[start:], motion.blocks_of(8 * shape[0], 8 * shape[1]), device,
                                      self.config.vector_predictor)
        return Motion(vectors, filter_index), start + used, skipped

    def skipped_payloads(self, payload: bytes, shape: tuple) -> list:
        """What a coded P-frame's payload may be sent as instead (none for a model without skip
        frames): skipped with its motion, and skipped still (zero vectors: the previous picture
        again, for a few bytes). shape is the latent's (h, w)."""
        if not self.config.skip_frames:
            return []
        length, start = read_varint(payload, 1)  # the vectors' length (motion.encode)
        still = torch.zeros(1, 2, *motion.blocks_of(8 * shape[0], 8 * shape[1]), dtype=torch.long)
        return [bytes([payload[0] | SKIP_FLAG]) + payload[1:start + length],
                bytes([SKIP_FLAG]) + motion.encode(still, self.config.vector_predictor)]

    def _moved(self, vectors: torch.Tensor, feature: torch.Tensor, latent: torch.Tensor) -> tuple:
        """The reference feature moved (float) and the reference latent moved by whole cells
        (exact: it feeds the integer prior)."""
        feature = motion.move(feature, vectors, 8, compensation=self.config.compensation)
        return feature, motion.shift_cells(latent, vectors)

    # --- coding -------------------------------------------------------------------------------

    def _level(self, level: int) -> torch.Tensor:
        return torch.tensor([level - 1], device=self.coding_device)

    # --- the float transforms as named graphs: export writes them, runtimes replace run_graph ---

    def graphs(self) -> dict:
        """name -> (module, example inputs, input names, output names)."""
        C, M = self.config.C, self.config.M
        x, q = torch.rand(1, 3, 64, 64), torch.tensor([0])
        y, f = torch.zeros(1, M, 8, 8), torch.zeros(1, C, 8, 8)
        return {"g_a_intra": (self.g_a_intra, (x, q), ("x", "level"), ("y",)),
                "g_s_intra": (self.g_s_intra, (y, q), ("y_hat", "level"), ("x_hat", "feature")),
                "g_a_inter": (self.g_a_inter, (x, q, f), ("x", "level", "context"), ("y",)),
                "g_s_inter": (self.g_s_inter, (y, q, f), ("y_hat", "level", "context"), ("x_hat", "feature")),
                "context": ((MotionContext(self), (f, x), ("feature", "prediction"), ("context",)) if self.config.motion
                            else (self.context, (f,), ("feature",), ("context",)))}

    def run_graph(self, name: str, *inputs):
        if name == "context" and self.config.motion:
            return MotionContext(self)(*inputs)
        return getattr(self, name)(*inputs)

    # Coding runs the transforms in stripes (oval.models.blocks.striped): the halo is each one's
    # receptive-field radius on the 1/8 grid, one row per depthwise 3x3.
    def _analyse(self, x: torch.Tensor, q: torch.Tensor, context=None) -> torch.Tensor:
        if context is None:
            return striped(lambda xs: self.run_graph("g_a_intra", xs, q), [x], [8], depth(self.config, "encoder", True))
        return striped(lambda xs, cs: self.run_graph("g_a_inter", xs, q, cs), [x, context], [8, 1],
                       depth(self.config, "encoder", False))

    def _synthesise(self, y: torch.Tensor, q: torch.Tensor, context=None):
        if context is None:
            return striped(lambda ys: self.run_graph("g_s_intra", ys, q), [y], [1], depth(self.config, "decoder", True))
        return striped(lambda ys, cs: self.run_graph("g_s_inter", ys, q, cs), [y, context], [1, 1],
                       depth(self.config, "decoder", False))

    def _context(self, reference: Reference, moves: Optional[Motion] = None) -> Conditioning:
        """The encoder asks twice per P-frame (to code, then in its own decoder for the
        reconstruction) with the same reference object and motion: the second time gets the
        first's result."""
        key = None if moves is None else (moves.vectors.cpu().numpy().tobytes(), moves.filter)
        memo = self.__dict__.get("_context_memo")
        if memo is not None and memo[0] is reference and memo[1] == key:
            return memo[2]
        if moves is None:
            context = striped(lambda f: self.run_graph("context", f), [reference.feature], [1], 1)
            result = Conditioning(context, reference.latent16)
        else:
            feature, latent16 = self._moved(moves.vectors, reference.feature, reference.latent16)
            prediction = self._predict(moves, reference.picture)
            context = striped(lambda f, p: self.run_graph("context", f, p), [feature, prediction], [1, 8], 1)
            result = Conditioning(context, latent16, prediction)
        self.__dict__["_context_memo"] = (reference, key, result)
        return result

    @torch.no_grad()
    def compress_frame(self, x: torch.Tensor, level: int, reference: Optional[Reference],
                       charge: Optional[float] = None, search: Optional[str] = None,
                       refine_steps: Optional[int] = None) -> bytes:
        """x (1, 3, H, W), H and W multiples of the stride -> payload (an I-frame without a
        reference). The codec gets the picture and the next reference from decompress_frame.
        charge, search: the P-frame's smoothness charge and motion search (estimate_motion);
        refine_steps: gradient steps on the latent (None: the model's refine_steps for the frame's type)."""
        q = self._level(level)
        steps = self.refine_steps[reference is not None] if refine_steps is None else refine_steps
        adapted = self.config.adapted_hyper_tables
        if reference is None:
            y, z = self._refined(self._analyse(x, q) * self._gain(q, True), x, q, steps)
            payload, y16 = self.prior_intra.compress(y, z_int=z, adapted_tables=adapted)
        else:
            moves, header = None, b""
            if self.config.motion:
                moves = self.estimate_motion(x, reference, level, charge, search)
                header = self._motion_header(moves)
            cond = self._context(reference, moves)
            y = self._analyse(self._to_code(x, cond.prediction), q, cond.context) * self._gain(q, False)
            y, z = self._refined(y, x, q, steps, cond)
            payload, y16 = self.prior_inter.compress(y, cond.latent16, z, adapted_tables=adapted)
            payload = header + payload
        self.__dict__["_coded_memo"] = (payload, reference, level, y16)
        return payload

    def _refined(self, y: torch.Tensor, x: torch.Tensor, q: torch.Tensor, steps: int,
                 cond: Optional[Conditioning] = None) -> tuple:
        """(y, ẑ to send; None: the prior's own): y refined by `steps` steps on the frame's
        rate-distortion cost (bits, the level's λ). A P-frame keeps the ẑ of the analysis' y: its
        prior's scales are small, and ẑ's rounding flipping under small moves of y made the steps
        wander (no gain on carphone); an I-frame's ẑ follows y (fixing it lost most of the gain on
        walls-r)."""
        if not steps:
            return y, None
        intra = cond is None
        prior, synthesis = (self.prior_intra, self.g_s_intra) if intra else (self.prior_inter, self.g_s_inter)
        prev = None if intra else cond.latent16.float() / 2**MEAN_FRAC
        context = None if intra else cond.context
        inverse_gain = self._gain(q, intra, inverse=True)
        weight = self.lambdas[int(q)] * 255**2
        z = None if intra else prior.hyper_latent(y)

        def cost(latent, relaxed):
            y_hat, bits = prior.estimate(latent, prev, relaxed, z)
            x_hat = synthesis(y_hat * inverse_gain, q, context)[0]
            x_hat = x_hat if intra else self._from_coded(x_hat, cond.prediction)
            return bits + weight * ((x_hat.clamp(0, 1) - x) ** 2).sum()
        return refine(y, cost, steps), z

    def _decoded_latent(self, payload: bytes, level: int, reference, decode) -> torch.Tensor:
        """ŷ in sixteenths: the encoder's own, when it reconstructs the frame it has just coded
        (the same payload, reference and level: range decoding would give the same integers),
        else decode()."""
        memo = self.__dict__.pop("_coded_memo", None)
        if memo is not None and memo[1] is reference and memo[2] == level and memo[0] == payload:
            return memo[3]
        return decode()

    @torch.no_grad()
    def decompress_frame(self, payload: bytes, shape: tuple, level: int, reference: Optional[Reference]):
        """-> (x̂ (1, 3, H, W) in [0, 1], the next reference); shape is the latent's (h, w)."""
        q, device = self._level(level), self.coding_device
        cond, adapted = None, self.config.adapted_hyper_tables
        if reference is None:
            y16 = self._decoded_latent(payload, level, reference, lambda: self.prior_intra.decompress(
                payload, shape, device=device, adapted_tables=adapted))
        else:
            moves, latent = None, payload
            if self.config.motion:
                moves, used, skipped = self._read_motion(payload, shape, device)
                latent = payload[used:]
                if skipped:
                    return self._skipped_frame(moves, reference, latent)
            cond = self._context(reference, moves)
            y16 = self._decoded_latent(payload, level, reference, lambda: self.prior_inter.decompress(
                latent, shape, cond.latent16, device=device, adapted_tables=adapted))
        y_hat = (y16 / 2**MEAN_FRAC).float()
        x_hat, feature = self._synthesise(y_hat * self._gain(q, reference is None, inverse=True), q,
                                          None if cond is None else cond.context)
        if cond is not None:
            x_hat = self._from_coded(x_hat, cond.prediction)
        x_hat = x_hat.clamp_(0, 1)
        return x_hat, Reference(feature, y16, x_hat if self.config.motion else None)

    def _skipped_frame(self, moves: Motion, reference: Reference, rest: bytes) -> tuple:
        """A skipped P-frame: the prediction is the picture; the feature and latent move as the
        motion moves them, for the next P-frame's context and prior."""
        if rest:
            raise FormatError(f"a skipped P-frame carries no latent, this one has {len(rest)} bytes more")
        feature, latent16 = self._moved(moves.vectors, reference.feature, reference.latent16)
        x_hat = self._predict(moves, reference.picture).clamp(0, 1)
        return x_hat, Reference(feature, latent16, x_hat)

    def encoder_parameters(self) -> list:
        """What only the encoder uses (online adaptation may change it; every stream stays decodable):
        the analysis transforms and the hyper-analysis networks."""
        modules = (self.g_a_intra, self.g_a_inter, self.prior_intra.h_a, self.prior_inter.h_a)
        return [p for m in modules for p in m.parameters()]

    def update_parameters(self) -> list:
        """Parameters a MODEL_UPDATE may change: the synthesis heads' biases shape pixels only
        (never a probability, and the reference feature is taken before them)."""
        return [self.g_s_intra.head.bias, self.g_s_inter.head.bias]
