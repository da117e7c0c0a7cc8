"""Finding motion vectors: the encoder's search (any vectors give a valid stream; oval.models.motion
applies and codes them, on both sides).

    x_t, x̂_{t-1} ──coarse-to-fine block matching (1/4, 1/2, full resolution, then ½ and ¼ pel)──▶ v
    v ──[overlapped searches] refined for the overlapped blend, then chosen by bits (choose_by_rate)──▶ v

Every choice here is the encoder's: the smoothness charge, how far to search (SEARCHES) and how a
vector's bits weigh against its prediction error. The stream only carries the result.
"""
import functools

import numpy as np
import torch
from torch.nn import functional as F

from oval.models.motion import (BICUBIC, BLOCK, FILTERS, QPEL, bits_in_cheapest_tables, blend_terms,
                                blocks_of, predictions, table_index)

COARSE_RADIUS = 8  # full search at 1/4 resolution: ±32 pixels at full resolution
# Cost per pixel of distance from the neighbours' median vector at the default level (see
# estimate). 0.002 until 2026-12-01: the fields came out too smooth, and a slow zoom or a pan over
# smooth content, whose prediction needs every quarter-pel, drifted; 0.0006 was chosen on the
# validation clip (visp castel, -12.4% BD-rate with the same weights).
SMOOTHNESS = 0.0006
# The charges an encoder may choose between (codec.Encoder probes them on the first P-frame of each
# group and every 16 after): no one charge suits every clip. Over repeating texture the vectors
# scatter at 0.0006 (mvtb-walls-r: -38.3% probing 0.0006 and 0.002, then -15.5% more with 0.006
# too, docs/results/compare_charge_probe.json and compare_charge_set.json).
CHARGES = (SMOOTHNESS, 0.002, 0.006)
# The steps, in pixels, of the refinement for overlapped compensation after the block search.
OVERLAPPED_STEPS = (0.5, 0.25)
# How far an encoder searches (an encoder's choice: the stream is the same format whichever):
# "block" each vector for its own block; "overlapped" then refined for the overlapped blend an obmc
# model moves by, judged with bilinear taps; "overlapped-filter" judged with the taps the frame
# will likely use (bicubic where it predicts the block search's blend better: twice the time).
SEARCHES = ("block", "overlapped", "overlapped-filter")
# Each refinement step's candidates, in whole steps: the vector itself first (ties keep it).
_CANDIDATES = tuple((dx, dy) for dy in (0, -1, 1) for dx in (0, -1, 1))
# The last choice of the overlapped searches (choose_by_rate) weighs each block's squared
# prediction error by this many times the level's λ·255² against its vector's bits: more than once
# paid, likely because a better prediction also serves the frames that predict from this one
# (BD-rate against 8: 4 -0.1%, 16 +0.6%, docs/results/compare_vector_rate_weight.json).
RATE_WEIGHT = 8.0


def smoothness_for(level, default_level: int, charge: float = SMOOTHNESS):
    """The smoothness charge at a quality level (an int, or a (B,) tensor of levels: a (B, 1, 1, 1)
    tensor) for `charge` at the default level (a number, or with tensor levels a (B,) tensor of
    them): vectors cost relatively more at lower rates, so the charge doubles every two levels down
    (λ doubles every level)."""
    if isinstance(level, torch.Tensor):
        return (charge * 2 ** ((default_level - level.double()) / 2)).float()[:, None, None, None]
    return charge * 2 ** ((default_level - level) / 2)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return x.mean(1, keepdim=True)






def _identity_grid(height: int, width: int, device) -> torch.Tensor:
    """grid_sample's identity grid for align_corners=True, channels first (1, 2, H, W). From
    linspace, not from warp's pixel grid: the two round differently, and this one made the measured
    vectors."""
    ys = torch.linspace(-1, 1, height, device=device) if height > 1 else torch.full((1,), -1.0, device=device)
    xs = torch.linspace(-1, 1, width, device=device) if width > 1 else torch.full((1,), -1.0, device=device)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0)[None]


def _block_warp(ref: torch.Tensor, v: torch.Tensor, block: int, identity: torch.Tensor) -> torch.Tensor:
    """warp(ref) by block vectors v (B, 2, hb, wb) held constant over each block, ref exactly
    (hb·block, wb·block): the search's inner loop. Each block's step is repeated over its pixels and
    added to the identity grid channels first, then viewed as grid_sample's (B, H, W, 2): the same
    grid as a broadcast over (hb, block, wb, block, 2), about 7x faster to build."""
    w, h = ref.shape[-1], ref.shape[-2]
    scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=v.device, dtype=identity.dtype)
    step = v.to(identity.dtype) * scale.view(1, 2, 1, 1)
    grid = identity + step.repeat_interleave(block, 2).repeat_interleave(block, 3)
    return F.grid_sample(ref, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=True)


def _full_search(cur: torch.Tensor, ref: torch.Tensor, block: int, radius: int, smoothness) -> torch.Tensor:
    """Integer vectors (B, 2, hb, wb) minimising each block's mean absolute difference, with a
    small pull towards the frame's median vector."""
    h, w = cur.shape[-2:]
    padded = F.pad(ref, (radius,) * 4, mode="replicate")
    costs, offsets = [], []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = padded[..., radius + dy:radius + dy + h, radius + dx:radius + dx + w]
            costs.append(F.avg_pool2d((cur - shifted).abs(), block))
            offsets.append((dx, dy))
    cost = torch.cat(costs, 1)  # (B, K, hb, wb)
    offsets = torch.tensor(offsets, device=cur.device, dtype=cur.dtype)  # (K, 2)
    best = offsets[cost.argmin(1)]  # (B, hb, wb, 2)
    # The median over blocks whose cost has a clear minimum: flat blocks match anywhere and say nothing.
    textured = (cost.mean(1) - cost.amin(1)).flatten(1) > 1e-3  # (B, hb*wb)
    flat_best = best.flatten(1, 2)
    median = torch.stack([(flat_best[i][textured[i]] if textured[i].any() else flat_best[i]).median(0).values
                          for i in range(len(best))])  # (B, 2)
    distance = (offsets[None, :, None, None, :] - median[:, None, None, None, :]).abs().sum(-1)
    cost = cost + smoothness * distance * 4  # 4 pixels per unit at 1/4 resolution
    return offsets[cost.argmin(1)].permute(0, 3, 1, 2).contiguous()


def local_median(v: torch.Tensor) -> torch.Tensor:
    """The median of each block's 3x3 neighbourhood, per component (edges repeated)."""
    b, c, hb, wb = v.shape
    patches = F.unfold(F.pad(v.float(), (1, 1, 1, 1), mode="replicate"), 3)  # (B, C*9, hb*wb)
    return patches.view(b, c, 9, hb, wb).median(2).values.to(v.dtype)


def _refine(cur: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, block: int, step: float,
            scale: int, smoothness: float, identity: torch.Tensor) -> torch.Tensor:
    """Each block tries v + step·(-1, 0, 1)² and keeps its best (ties go to the centre); the cost
    includes the pull towards the median vector (`scale`: full-resolution pixels per unit of v)."""
    median = local_median(v)
    best_cost, best = None, v
    for dy in (0, -1, 1):
        for dx in (0, -1, 1):
            cand = v + torch.tensor([dx * step, dy * step], device=v.device, dtype=v.dtype)[None, :, None, None]
            cost = F.avg_pool2d((cur - _block_warp(ref, cand, block, identity)).abs(), block)
            cost = cost + smoothness * scale * (cand - median).abs().sum(1, keepdim=True)
            if best_cost is None:
                best_cost = cost
                continue
            better = cost < best_cost
            best_cost = torch.where(better, cost, best_cost)
            best = torch.where(better, cand, best)
    return best


def _snap(cur: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, smoothness: float,
          identity: torch.Tensor) -> torch.Tensor:
    """Each block takes its neighbours' median vector where that costs no more than its own plus
    the smoothness charge for straying: uniform motion then codes as a uniform field."""
    median = local_median(v)
    own = F.avg_pool2d((cur - _block_warp(ref, v, BLOCK, identity)).abs(), BLOCK)
    theirs = F.avg_pool2d((cur - _block_warp(ref, median, BLOCK, identity)).abs(), BLOCK)
    take = theirs <= own + smoothness * (v - median).abs().sum(1, keepdim=True)
    return torch.where(take, median, v)




class _Overlap:
    """What the overlapped refinement needs of a padded frame's geometry, computed once per search:
    the four terms of the overlapped blend (blend_terms) at each pixel (their weights and the
    raster index of the block whose vector each moves by), the phases of the 2x2 block lattice,
    and grid_sample's identity grid. A block reaches the 32x32 pixels from 8 before its own to 8
    after (its blend weight is zero beyond), so the blocks of one phase tile the picture: summing a
    phase's errors per block is a reshape (tile_sums)."""

    def __init__(self, height: int, width: int, hb: int, wb: int, device):
        weights, blocks = [], []
        for weight, rows, cols in blend_terms(height, width, BLOCK, hb, wb, device):
            weights.append(weight)
            blocks.append(rows[:, None] * wb + cols[None, :])
        self.weight, self.index = torch.stack(weights), torch.stack(blocks)  # (4, H, W)
        self.blocks = hb, wb
        self.identity = _identity_grid(height, width, device).permute(0, 2, 3, 1)  # (1, H, W, 2)
        self.scale = torch.tensor([2 / max(width - 1, 1), 2 / max(height - 1, 1)], device=device)
        block_rows = torch.arange(hb, device=device)[:, None].expand(hb, wb)
        block_cols = torch.arange(wb, device=device)[None, :].expand(hb, wb)
        self.phases = []
        for phase_row in (0, 1):
            for phase_col in (0, 1):
                in_phase = ((self.index // wb) % 2 == phase_row) & ((self.index % wb) % 2 == phase_col)
                owner = torch.where(in_phase, self.index, -1).amax(0)  # the phase block at each pixel, -1: none
                tiles = (hb - phase_row + 1) // 2, (wb - phase_col + 1) // 2
                if min(tiles) == 0:
                    continue  # no block of this phase (a frame one block across)
                mine = (block_rows % 2 == phase_row) & (block_cols % 2 == phase_col)
                self.phases.append(((self.weight * in_phase).sum(0), owner.clamp_min(0).flatten(), mine,
                                    (phase_row, phase_col), tiles))

    def grid(self, per_pixel: torch.Tensor) -> torch.Tensor:
        """grid_sample's grid for per-pixel vectors (B, H·W, 2) in pixels."""
        return self.identity + (per_pixel * self.scale).view(len(per_pixel), *self.identity.shape[1:])

    def tile_sums(self, error: torch.Tensor, phase: tuple, tiles: tuple) -> torch.Tensor:
        """error (B, 1, H, W) summed over each phase block's reach: (B, 1, hb, wb), zero off the phase."""
        (phase_row, phase_col), (rows, cols) = phase, tiles
        h, w = error.shape[-2:]
        top, left = BLOCK // 2 - BLOCK * phase_row, BLOCK // 2 - BLOCK * phase_col  # negative: crops
        reach = 2 * BLOCK
        error = F.pad(error, (left, cols * reach - w - left, top, rows * reach - h - top))
        sums = error.view(len(error), rows, reach, cols, reach).sum((2, 4))
        out = error.new_zeros(len(error), 1, *self.blocks)
        out[:, 0, phase_row::2, phase_col::2] = sums
        return out

    def phase_grid(self, v: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        """grid_sample's grid moving each pixel by the vector of its block of one phase (owner: its
        raster index)."""
        return self.grid(_per_block(v).index_select(1, owner))

    def predict(self, ref: torch.Tensor, v: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """_overlapped(ref, v), the geometry precomputed. v: (B, 2, hb, wb) in pixels."""
        per_block = _per_block(v)
        out = 0
        for weight, index in zip(self.weight, self.index):
            grid = self.grid(per_block.index_select(1, index.flatten()))
            out = out + weight * _sample(ref, grid, mode)
        return out


def _per_block(v: torch.Tensor) -> torch.Tensor:
    """(B, 2, hb, wb) -> (B, hb·wb, 2), contiguous: index_select on it is several times faster."""
    return v.flatten(2).transpose(1, 2).contiguous()


def _sample(ref: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    return F.grid_sample(ref, grid, mode=mode, padding_mode="border", align_corners=True)


@functools.lru_cache(maxsize=4)
def _overlap_of(height: int, width: int, hb: int, wb: int, device) -> _Overlap:
    return _Overlap(height, width, hb, wb, device)  # one per frame size: an encoder's frames share it


def _overlapped_refine(cur: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, step: float, smoothness,
                       overlap: _Overlap, mode: str = "bilinear") -> torch.Tensor:
    """_refine for overlapped compensation: each block's candidates are judged by the blended
    prediction over every pixel its vector reaches (its 2x2-block neighbourhood), its neighbours'
    vectors held. Blocks two apart in both directions reach disjoint pixels, so the four phases of
    the 2x2 lattice are searched one after another, each exactly, the prediction updated between.
    cur, ref: luma (B, 1, hb·16, wb·16); v: (B, 2, hb, wb) in pixels; mode: the taps judged with."""
    prediction = overlap.predict(ref, v, mode)  # kept up to date phase by phase
    for reach, owner, mine, phase, tiles in overlap.phases:
        own = overlap.phase_grid(v, owner)
        moved_now = _sample(ref, own, mode)
        rest = cur - prediction + reach * moved_now  # the error once the phase block's term is taken out
        median = local_median(v)
        best_cost, best = None, v
        for dx, dy in _CANDIDATES:
            delta = torch.tensor([dx * step, dy * step], device=v.device, dtype=v.dtype)
            error = (rest - reach * _sample(ref, own + delta * overlap.scale, mode)).abs()
            cand = v + delta[None, :, None, None]
            cost = overlap.tile_sums(error, phase, tiles) / (BLOCK * BLOCK)
            cost = cost + smoothness * (cand - median).abs().sum(1, keepdim=True)
            if best_cost is None:
                best_cost = cost
                continue
            better = (cost < best_cost) & mine
            best_cost = torch.where(better, cost, best_cost)
            best = torch.where(better, cand, best)
        # the phase's new term, computed once: cheaper than keeping each candidate's moved pixels
        prediction = prediction + reach * (_sample(ref, overlap.phase_grid(best, owner), mode) - moved_now)
        v = best
    return v


def choose_by_rate(cur: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, weight: float, overlap: _Overlap,
                   predictor: str, mode: str = "bilinear", passes: int = 2) -> torch.Tensor:
    """Each block keeps its vector, or takes the one it is predicted from (a zero residual) or its
    neighbours' median, whichever costs the least bits plus `weight` times the squared error of the
    overlapped prediction over its reach: the block matching's smoothness charge counts pixels of
    distance, not bits, and over smooth content the quarter-pel vectors scatter among matches that
    are all but equal (on tiktok-pexels-7247504 they took half of each P-frame's bytes). The
    phases of the 2x2 lattice take turns as in _overlapped_refine; a block's bits are counted
    against the predictions of the field before its phase's turn. cur, ref: luma, padded;
    v: (1, 2, hb, wb) quarter-pel integers."""
    vectors = v[0].cpu().numpy().astype(np.int64)

    def pixels(field):
        return torch.from_numpy(field).to(ref.device, ref.dtype)[None] / QPEL
    prediction = overlap.predict(ref, pixels(vectors), mode)
    for _ in range(passes):
        for reach, owner, mine, phase, tiles in overlap.phases:
            moved_now = _sample(ref, overlap.phase_grid(pixels(vectors), owner), mode)
            rest = cur - prediction + reach * moved_now
            predicted = predictions(vectors, predictor)
            candidates = np.stack([vectors, predicted,
                                   local_median(torch.from_numpy(vectors)[None])[0].numpy()])
            costs, moved = [], []
            for k, field in enumerate(candidates):
                # the vectors' own terms are the prediction's already: no need to sample them again
                moved.append(moved_now if k == 0 else _sample(ref, overlap.phase_grid(pixels(field), owner), mode))
                error = (rest - reach * moved[-1]) ** 2
                squared = overlap.tile_sums(error, phase, tiles)[0, 0].double().cpu().numpy()
                residuals = field - predicted  # in the tables encode would pick for this field
                bits = bits_in_cheapest_tables(residuals)
                costs.append(bits[0][table_index(residuals[0])] + bits[1][table_index(residuals[1])]
                             + weight * squared)
            pick = np.argmin(np.stack(costs), 0)  # ties keep the vector (the first candidate)
            pick = np.where(mine.cpu().numpy(), pick, 0)
            chosen = np.take_along_axis(candidates, pick[None, None].repeat(2, 1), 0)[0]
            # the phase's new terms, per pixel from the candidate its block chose
            owner_pick = torch.from_numpy(pick.reshape(-1)).to(ref.device).index_select(0, owner).view(1, 1, *ref.shape[-2:])
            moved_chosen = torch.where(owner_pick == 1, moved[1], torch.where(owner_pick == 2, moved[2], moved_now))
            prediction = prediction + reach * (moved_chosen - moved_now)
            vectors = chosen
    return torch.from_numpy(vectors)[None].to(v.device)


@torch.no_grad()
def estimate(cur: torch.Tensor, ref: torch.Tensor, smoothness=SMOOTHNESS, search: str = "block",
             rate_weight: float = 0.0, predictor: str = "median") -> torch.Tensor:
    """Motion of cur (B, 3, H, W) from ref: (B, 2, ceil(H/16), ceil(W/16)) int64 quarter-pel
    vectors v with cur(p) ≈ ref(p + v). Full search at 1/4 resolution, integer refinement at 1/2
    and full resolution, then half- and quarter-pel refinement. smoothness: the cost, in mean
    absolute difference per pixel, of each pixel a vector strays from its neighbours' median (a
    stand-in for the bits a ragged field costs; more for lower rates), a float or one per frame
    as a (B, 1, 1, 1) tensor. search (SEARCHES) "overlapped...": the vectors are refined last for
    the overlapped blend that will move the picture (_overlapped_refine), not each for its own block;
    then, with rate_weight > 0 (λ·255² times RATE_WEIGHT, one frame), each block chooses by bits
    against `predictor`'s predictions (choose_by_rate)."""
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {', '.join(SEARCHES)}, not {search!r}")
    h, w = cur.shape[-2:]
    hb, wb = blocks_of(h, w)
    pad = (0, wb * BLOCK - w, 0, hb * BLOCK - h)
    cur1, ref1 = (F.pad(_luma(t.float()), pad, mode="replicate") for t in (cur, ref))
    cur2, ref2 = F.avg_pool2d(cur1, 2), F.avg_pool2d(ref1, 2)
    cur4, ref4 = F.avg_pool2d(cur2, 2), F.avg_pool2d(ref2, 2)
    v = _full_search(cur4, ref4, BLOCK // 4, COARSE_RADIUS, smoothness)
    identity1, identity2 = (_identity_grid(*t.shape[-2:], cur.device) for t in (cur1, cur2))
    v = _refine(cur2, ref2, 2 * v, BLOCK // 2, 1.0, 2, smoothness, identity2)
    for step in (1.0, 0.5, 0.25, 0.25):  # the last pass again: neighbours have moved
        v = _refine(cur1, ref1, 2 * v if step == 1.0 else v, BLOCK, step, 1, smoothness, identity1)
    for _ in range(2):
        v = _snap(cur1, ref1, v, smoothness, identity1)
    if search != "block":
        overlap = _overlap_of(*cur1.shape[-2:], hb, wb, cur.device)
        per_sample = isinstance(smoothness, torch.Tensor) and smoothness.numel() > 1
        refined = []
        for i in range(len(v)):  # one sample at a time: each is judged with its own taps
            one = slice(i, i + 1)
            charge = smoothness[one] if per_sample else smoothness
            mode = _likely_taps(cur1[one], ref1[one], v[one], overlap) if search == "overlapped-filter" else "bilinear"
            vi = v[one]
            for step in OVERLAPPED_STEPS:
                vi = _overlapped_refine(cur1[one], ref1[one], vi, step, charge, overlap, mode)
            if rate_weight > 0:
                vi = choose_by_rate(cur1[one], ref1[one], torch.round(vi * QPEL).long(), rate_weight,
                                    overlap, predictor, mode).to(vi.dtype) / QPEL
            refined.append(vi)
        v = torch.cat(refined)
    return torch.round(v * QPEL).long()


def _likely_taps(cur: torch.Tensor, ref: torch.Tensor, v: torch.Tensor, overlap: _Overlap) -> str:
    """The filter choose_filters would likely name for the blend of these vectors (judged on luma,
    with its margin): what the overlapped refinement should judge with."""
    error = [float(((cur - overlap.predict(ref, v, mode).clamp(0, 1)) ** 2).mean()) for mode in FILTERS]
    return "bicubic" if error[BICUBIC] < 0.98 * error[0] - 1e-6 else "bilinear"
