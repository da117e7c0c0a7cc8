"""Tables fitted to one frame's hyper-latent ẑ, sent with it.

The learned factorized density codes every frame's ẑ channel with one table. On a flat picture
most channels hold one value or two for the whole frame, and that table still charges them bits
at every position: on tiktok-pexels-7247504, ẑ took 518 of an I-frame's 1,042 bytes at level 2,
where the frame's own histograms would have coded it in about 90. Here the encoder sends, for the
channels where it pays, the frame's histogram, and codes those channels with a table made from it.

Side information, at the start of the ẑ section (the frame payload's hyper-latent length says
whether there is any):

    n_channels:varint  { channel_gap:varint  lowest:zigzag-varint  n_values:varint  count:varint*(n_values-1) }*

channel_gap is the channel index minus the previous adapted channel's plus one (the first: the
index); the last value's count is the rest of the positions. Tables are made from the counts with
integer arithmetic only, so every decoder builds the same ones.
"""
import numpy as np

from oval.bitstream import FormatError, read_varint, unzigzag, write_varint, zigzag
from oval.entropy import TABLE_TOTAL, TableCoder

MAX_VALUES = 256  # a histogram wider than this never pays for its counts


def counts_to_row(counts: np.ndarray) -> np.ndarray:
    """Observed counts (n values, summing to N) -> a table row of n + 1 integers summing to
    TABLE_TOTAL, the escape last: every entry at least 1, the rest shared in proportion (integers only)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    spare = TABLE_TOTAL - (len(counts) + 1)
    row = np.ones(len(counts) + 1, dtype=np.int64)
    row[:-1] += counts * spare // max(total, 1)
    row[int(np.argmax(counts))] += TABLE_TOTAL - int(row.sum())
    return row


def _learned_bits(coder: TableCoder, channel: int, values: np.ndarray) -> float:
    symbols = values - coder.offsets[channel]
    inside = (symbols >= 0) & (symbols < coder.lengths[channel])
    row = coder.counts[channel]
    bits = -np.log2(row[symbols[inside]] / TABLE_TOTAL).sum()
    escape = -np.log2(row[coder.lengths[channel]] / TABLE_TOTAL)
    return float(bits + (~inside).sum() * (escape + 16))  # an escaped value's varint: about 2 bytes


def _histogram(values: np.ndarray) -> tuple[int, np.ndarray]:
    lowest = int(values.min())
    return lowest, np.bincount(values - lowest)


def _side(gap: int, lowest: int, counts: np.ndarray) -> bytes:
    out = write_varint(gap) + write_varint(zigzag(lowest)) + write_varint(len(counts))
    return out + b"".join(write_varint(int(c)) for c in counts[:-1])


def adapt(coder: TableCoder, z: np.ndarray) -> tuple[bytes, TableCoder]:
    """z: (C, H, W) integers -> (side information, the coder to code z with). Empty side
    information: no channel pays for its own table, and `coder` is returned as it is."""
    rows, side, previous = {}, [], -1
    for channel in range(z.shape[0]):
        values = z[channel].reshape(-1).astype(np.int64)
        lowest, counts = _histogram(values)
        if len(counts) > MAX_VALUES:
            continue
        row = counts_to_row(counts)
        described = _side(channel - previous - 1, lowest, counts)
        adapted = -(counts * np.log2(row[:-1] / TABLE_TOTAL)).sum() + 8 * len(described)
        if adapted < _learned_bits(coder, channel, values):
            rows[channel] = (lowest, row)
            side.append(described)
            previous = channel
    if not rows:
        return b"", coder
    return write_varint(len(rows)) + b"".join(side), coder.with_rows(rows)


def read(coder: TableCoder, data: bytes, positions: int) -> tuple[TableCoder, int]:
    """Inverse of adapt's side information at the start of data -> (coder, bytes read)."""
    n_channels, pos = read_varint(data, 0)
    if not 1 <= n_channels <= coder.channels:
        raise FormatError("hyper-latent tables name more channels than the model has")
    rows, channel = {}, -1
    for _ in range(n_channels):
        gap, pos = read_varint(data, pos)
        channel += gap + 1
        raw, pos = read_varint(data, pos)
        n_values, pos = read_varint(data, pos)
        if channel >= coder.channels or not 1 <= n_values <= MAX_VALUES:
            raise FormatError("hyper-latent table out of range")
        counts = np.zeros(n_values, dtype=np.int64)
        for i in range(n_values - 1):
            counts[i], pos = read_varint(data, pos)
        counts[-1] = positions - counts[:-1].sum()
        if counts[-1] < 0:
            raise FormatError("hyper-latent table counts more positions than the frame has")
        rows[channel] = (unzigzag(raw), counts_to_row(counts))
    return coder.with_rows(rows), pos
