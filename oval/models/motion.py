"""Explicit block motion for P-frames: estimated by the encoder, sent as integers, applied by both sides.

    x_t, x̂_{t-1} ──motion_search.estimate (encoder only)──▶ v, quarter-pel, one per 16x16 block
    v ──encode (DPCM against the left or the median neighbour, integer two-sided geometric tables)──▶ bytes
    v ──move (a smooth field, or overlapped blocks)──▶ x̃_t from x̂_{t-1} (pixels), F_{t-1} moved (1/8 features),
      shift_cells(ŷ_{t-1}) (latent cells)

Why explicit: a conditional codec's context must otherwise learn to shift features by itself, which a
few CPU hours of training do not teach (issue 14); classical codecs spend almost nothing on a pan
because they move pixels with vectors. The vectors are integers decoded from the stream, and the
only use they have on the table path is `shift_cells`, an integer gather: table choice stays exact.
The warps are float and shape pixels only, like the rest of the synthesis.
"""
import functools

import numpy as np
import torch
from torch.nn import functional as F

from oval.bitstream import FormatError, read_varint, write_varint

BLOCK = 16  # pixels per side of a motion block (2x2 cells of the 1/8 grid)
QPEL = 4  # vectors are in quarter pixels
CELL_QPEL = 8 * QPEL  # one cell of the 1/8 grid


# --- the geometry both sides share --------------------------------------------------------------


def base_grid(height: int, width: int, device, dtype=torch.float32) -> torch.Tensor:
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0)[None]  # (1, 2, H, W): x, y


def warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Backward warp: out(p) = x(p + flow(p)), edges repeated. flow (B, 2, H, W) in x's pixels
    (dx, dy); mode: a grid_sample interpolation (bilinear, bicubic)."""
    b, _, h, w = x.shape
    pos = base_grid(h, w, x.device, flow.dtype) + flow
    grid = torch.stack([2 * pos[:, 0] / max(w - 1, 1) - 1, 2 * pos[:, 1] / max(h - 1, 1) - 1], -1)
    return F.grid_sample(x, grid.to(x.dtype), mode=mode, padding_mode="border", align_corners=True)


def blocks_of(height: int, width: int) -> tuple[int, int]:
    return -(-height // BLOCK), -(-width // BLOCK)


# --- applying vectors (encoder and decoder) --------------------------------------------------------


def flow(v: torch.Tensor, height: int, width: int, scale: int = 1) -> torch.Tensor:
    """Quarter-pel block vectors to a smooth dense flow (B, 2, height, width) in units of `scale`
    pixels (8: the 1/8 grid): vectors sit at block centres and are interpolated bilinearly, so pans,
    zooms and rotations warp without block edges."""
    per_block = BLOCK // scale
    hb, wb = v.shape[-2:]
    dense = F.interpolate(v.float() / (QPEL * scale), size=(hb * per_block, wb * per_block),
                          mode="bilinear", align_corners=False)
    return dense[..., :height, :width]


# How the block vectors move a picture or a feature (a model's coding switch, RTConfig.compensation).
# "smooth" interpolates the vectors into a dense field (the models before 2026-12-02): pans, zooms
# and rotations warp without block edges, but where neighbouring vectors disagree (a ragged field
# over repeating texture) the in-between vectors match nothing. "obmc" (overlapped block motion
# compensation, as H.263's Annex F and AV1) blends the pictures predicted by the vectors of each
# pixel's four nearest blocks, weighted bilinearly by distance to their centres: where the field is
# smooth it predicts as "smooth" does, and where it is ragged each vector still moves its own
# texture (predicting original frames with bicubic: mvtb-walls-r 31.4 dB against 22.3, carphone
# 33.9 against 32.9, lomiri-life's smooth pan the same; docs/results/compensation_charge0.0006.json).
COMPENSATIONS = ("smooth", "obmc")


def blend_terms(height: int, width: int, per_block: int, hb: int, wb: int, device):
    """The four terms of the overlapped blend at each pixel of a (height, width) picture with
    per_block pixels to a block: for (dy, dx) in (0, 1)², the term's weight (H, W), and the row (H,)
    and column (W,) of the block whose vector it moves by (edge blocks repeated). Each pixel's
    place in block units is measured from the centre of block 0: its nearest centres are blocks
    floor(.) and floor(.) + 1, weighted bilinearly by distance."""
    rows = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / per_block - 0.5
    cols = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / per_block - 0.5
    row0, col0 = torch.floor(rows), torch.floor(cols)
    fy, fx = rows - row0, cols - col0
    for dy in (0, 1):
        for dx in (0, 1):
            weight = (fy if dy else 1 - fy)[:, None] * (fx if dx else 1 - fx)[None, :]
            yield weight, (row0.long() + dy).clamp(0, hb - 1), (col0.long() + dx).clamp(0, wb - 1)


def _overlapped(x: torch.Tensor, vectors: torch.Tensor, scale: int, mode: str) -> torch.Tensor:
    """OBMC of x (B, C, H, W) by quarter-pel block vectors, x in units of `scale` pixels."""
    v = vectors.float() / (QPEL * scale)
    out = None
    for weight, rows, cols in blend_terms(*x.shape[-2:], BLOCK // scale, *vectors.shape[-2:], x.device):
        term = weight[None, None] * warp(x, v[:, :, rows][:, :, :, cols], mode)
        out = term if out is None else out + term
    return out


def move(x: torch.Tensor, vectors: torch.Tensor, scale: int = 1, mode: str = "bilinear",
         compensation: str = "smooth") -> torch.Tensor:
    """x (B, C, H, W), in units of `scale` pixels (8: the 1/8 grid), moved by the block vectors the
    way `compensation` says (COMPENSATIONS)."""
    if compensation == "obmc":
        return _overlapped(x, vectors, scale, mode)
    return warp(x, flow(vectors, *x.shape[-2:], scale=scale), mode)


# Interpolation filters a switchable-filter model names per frame (the stream stores the index), as
# AV1 switches its filters: bilinear low-passes every fractional position, which suits noisy
# footage; bicubic keeps the detail of sharp content moving smoothly (a pan over a photo).
FILTERS = ("bilinear", "bicubic")
BICUBIC = FILTERS.index("bicubic")


def predict(picture: torch.Tensor, vectors: torch.Tensor, filters=None, compensation: str = "smooth") -> torch.Tensor:
    """The motion-compensated picture x̃: `picture` (B, 3, H, W) in [0, 1] moved by the block
    vectors with each sample's filter (a (B,) index into FILTERS; None: bilinear)."""
    def moved(mode):
        return move(picture, vectors, 1, mode, compensation)
    sharp = None if filters is None else (filters == BICUBIC)
    if sharp is None or not bool(sharp.any()):
        return moved("bilinear")
    bicubic = moved("bicubic").clamp(0, 1)  # bicubic overshoots at edges
    if bool(sharp.all()):  # each filter is run only where a sample names it
        return bicubic
    return torch.where(sharp[:, None, None, None], bicubic, moved("bilinear"))


@torch.no_grad()
def choose_filters(cur: torch.Tensor, picture: torch.Tensor, vectors: torch.Tensor,
                   compensation: str = "smooth", with_prediction: bool = False):
    """The encoder's choice for each sample: bicubic (1) where its prediction's mean squared error
    is 2% (and 1e-6, 60 dB) below bilinear's, else bilinear (0); the margin keeps near-ties
    (whole-pixel vectors, where both copy pixels) from flipping on rounding. -> (B,) int64, and
    with_prediction the chosen predictions too (the encoder's x̃, not computed twice)."""
    n = len(cur)
    predictions = [predict(picture, vectors, torch.full((n,), k, device=cur.device), compensation)
                   for k in range(len(FILTERS))]
    error = [((cur - p) ** 2).flatten(1).mean(1) for p in predictions]
    filters = torch.where(error[BICUBIC] < 0.98 * error[0] - 1e-6, BICUBIC, 0)
    if not with_prediction:
        return filters
    return filters, torch.where((filters == BICUBIC)[:, None, None, None], predictions[BICUBIC], predictions[0])


def shift_cells(latent: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """latent (B, M, h, w) on the 1/8 grid moved by each block's vector rounded to whole cells: an
    integer gather, so a latent of exact integers stays exact (the temporal prior's input)."""
    b, m, h, w = latent.shape
    cells = torch.div(v + CELL_QPEL // 2, CELL_QPEL, rounding_mode="floor")  # (B, 2, hb, wb)
    cells = cells.repeat_interleave(BLOCK // 8, 2).repeat_interleave(BLOCK // 8, 3)[..., :h, :w]
    rows = (torch.arange(h, device=latent.device)[None, :, None] + cells[:, 1]).clamp(0, h - 1)
    cols = (torch.arange(w, device=latent.device)[None, None, :] + cells[:, 0]).clamp(0, w - 1)
    index = (rows * w + cols).flatten(1)[:, None].expand(b, m, h * w)
    return latent.flatten(2).gather(2, index).view(b, m, h, w)


# --- coding the vectors (integers only) ------------------------------------------------------------

RANGE = 64  # residuals in [-64, 64] quarter-pels have table entries; others escape
TABLES = 16
TABLE_TOTAL = 1 << 16
_DECAY = (1, 8, 40, 120, 250, 400, 530, 640, 730, 800, 860, 905, 940, 970, 990, 1010)  # / 1024
_ESCAPE_WEIGHT = 1 << 20


def _table_counts(decay: int) -> list:
    """Two-sided geometric counts (ratio decay/1024 per quarter-pel) over [-RANGE, RANGE] plus an
    escape, summing to 2^16, computed in integers: the same table on every machine."""
    weights, w = [], 1 << 40
    for _ in range(RANGE + 1):
        weights.append(w)
        w = w * decay // 1024
    row = [weights[abs(r)] for r in range(-RANGE, RANGE + 1)] + [_ESCAPE_WEIGHT]
    spare = TABLE_TOTAL - len(row)
    total = sum(row)
    counts = [1 + x * spare // total for x in row]
    counts[RANGE] += TABLE_TOTAL - sum(counts)  # the remainder to the zero residual
    return counts


_CODER = None


def _coder():
    global _CODER  # built once, on first use: constriction models for the 16 tables
    if _CODER is None:
        from oval.entropy import TableCoder
        counts = np.array([_table_counts(d) for d in _DECAY], dtype=np.int64)
        _CODER = TableCoder(np.full(TABLES, -RANGE), np.full(TABLES, 2 * RANGE + 1), counts)
    return _CODER


PREDICTORS = ("left", "median")  # what each vector is sent against (a model's `vector_predictor`)


def _median_of_three(a, b, c):
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def predictions(v: np.ndarray, predictor: str) -> np.ndarray:
    """(2, hb, wb) vectors -> what each is predicted from, per component, knowing only the blocks
    before it in raster order. "left": the vector to the left (the first column: the one above).
    "median": the median of left, above and above-right (above-left in the last column), as H.264
    predicts its vectors; the first row from the left, the first column from above."""
    p = np.zeros_like(v)
    p[:, 0, 1:] = v[:, 0, :-1]
    p[:, 1:, 0] = v[:, :-1, 0]
    if predictor == "left":
        p[:, 1:, 1:] = v[:, 1:, :-1]
    elif v.shape[2] > 1:
        p[:, 1:, 1:] = _median_of_three(v[:, 1:, :-1], v[:, :-1, 1:], _above_right(v[:, :-1]))
    return p


def _above_right(rows: np.ndarray) -> np.ndarray:
    """For the blocks of columns 1.. of the rows below `rows`: the vector above-right, or above-left
    in the last column (where there is none to the right)."""
    return np.concatenate([rows[:, :, 2:], rows[:, :, -2:-1]], axis=2)


def _residuals(v: np.ndarray, predictor: str) -> np.ndarray:
    return v - predictions(v, predictor)


def _vectors(r: np.ndarray, predictor: str) -> np.ndarray:
    """The inverse of _residuals: block by block in raster order (each prediction needs the vectors
    before it), in Python integers so damaged residuals cannot overflow before they are refused."""
    v = r.astype(object)
    v[:, :, 0] = np.cumsum(v[:, :, 0], axis=1)  # the first column, from above
    if predictor == "left":
        return np.cumsum(v, axis=2)
    _, hb, wb = r.shape
    v[:, 0] = np.cumsum(v[:, 0], axis=1)  # the first row, from the left
    for i in range(1, hb):
        above, above_right = v[:, i - 1, 1:], _above_right(v[:, i - 1:i])[:, 0]
        for c in range(2):
            row, res, b, d = v[c, i], r[c, i].tolist(), above[c].tolist(), above_right[c].tolist()
            left = row[0]
            for j in range(1, wb):
                a, bb, cc = left, b[j - 1], d[j - 1]
                left = res[j] + max(min(a, bb), min(max(a, bb), cc))
                row[j] = left
    return v


@functools.lru_cache(maxsize=1)
def _bits_tables() -> np.ndarray:
    """(TABLES, 2·RANGE + 2) bits of each residual (then the escape) in each table."""
    counts = np.array([_table_counts(d) for d in _DECAY], dtype=np.float64)
    return -np.log2(counts / TABLE_TOTAL)


def table_index(residuals: np.ndarray) -> np.ndarray:
    """Each residual's entry in a table: its value, or the escape."""
    index = np.clip(residuals + RANGE, 0, 2 * RANGE + 1)
    index[(residuals < -RANGE) | (residuals > RANGE)] = 2 * RANGE + 1
    return index


def _cheapest_table(residuals: np.ndarray) -> int:
    """The table encode sends one component's residuals with: the one of the fewest bits."""
    return int(_bits_tables()[:, table_index(residuals).reshape(-1)].sum(1).argmin())


def bits_in_cheapest_tables(residuals: np.ndarray) -> list:
    """Per component of residuals (2, ...): the bits of each value in the table encode would pick."""
    return [_bits_tables()[_cheapest_table(residuals[c])] for c in range(2)]


def encode(v: torch.Tensor, predictor: str = "left") -> bytes:
    """(1, 2, hb, wb) vectors -> varint length, a table index per component, range-coded residuals
    against `predictor`'s predictions. The encoder picks each component's cheapest table; the
    decoder reads the index."""
    r = _residuals(v[0].cpu().numpy().astype(np.int64), predictor)
    tables = [_cheapest_table(r[c]) for c in range(2)]
    per_symbol = np.concatenate([np.full(r[c].size, tables[c]) for c in range(2)])
    body = bytes(tables) + _coder().encode_indexed(r.reshape(-1), per_symbol)
    return write_varint(len(body)) + body


def decode(payload: bytes, blocks: tuple[int, int], device=None, predictor: str = "left") -> tuple[torch.Tensor, int]:
    """-> ((1, 2, hb, wb) int64 vectors, the offset in payload where the rest starts)."""
    length, pos = read_varint(payload, 0)
    if length < 2 or pos + length > len(payload):
        raise FormatError("motion vectors run past the end of the frame")
    tables = list(payload[pos:pos + 2])
    if max(tables) >= TABLES:
        raise FormatError("motion vector table index out of range")
    hb, wb = blocks
    per_symbol = np.concatenate([np.full(hb * wb, t) for t in tables])
    r = _coder().decode_indexed(payload[pos + 2:pos + length], per_symbol).astype(np.int64).reshape(2, hb, wb)
    v = _vectors(r, predictor)
    if np.abs(v).max(initial=0) > 1 << 20:
        raise FormatError("motion vector out of range")
    return torch.from_numpy(v.astype(np.int64))[None].to(device), pos + length
