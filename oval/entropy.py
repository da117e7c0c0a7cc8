"""Coding integer symbols with integer probability tables through constriction's range coder.

No torch here: a table is plain integers, so the decoder's probabilities are exact on every
machine (counts / 2**16 is exact in float64, and constriction's own quantisation is integer code).

Payload of one coded tensor:

    n_words:varint  words:u32le[n_words]  escapes:zigzag-varint*

A symbol outside its channel's table is coded as the escape symbol (the table's last entry) and
its value follows in the escape section, so any integer round-trips bit-exactly.
"""
import numpy as np

from oval.bitstream import FormatError, read_varint, unzigzag, write_varint, zigzag

TABLE_BITS = 16
TABLE_TOTAL = 1 << TABLE_BITS


def _constriction():
    try:
        import constriction
    except ImportError as e:  # a core dependency, but name it clearly if a user removed it
        raise ImportError("constriction is required for entropy coding: pip install constriction") from e
    return constriction


def pmf_to_counts(pmf: np.ndarray, tail_mass: float) -> np.ndarray:
    """Integer counts summing to TABLE_TOTAL for pmf (+ an escape symbol of mass tail_mass).

    Every symbol gets at least one count, so each stays codable. Runs once, when a model's tables
    are built; decoders only ever read the integers.
    """
    probs = np.append(np.asarray(pmf, dtype=np.float64), max(float(tail_mass), 0.0))
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum()
    spare = TABLE_TOTAL - len(probs)
    if spare < 0:
        raise ValueError(f"table of {len(probs)} symbols exceeds {TABLE_TOTAL}")
    counts = 1 + np.floor(probs * spare).astype(np.int64)
    counts[np.argmax(counts)] += TABLE_TOTAL - counts.sum()
    return counts.astype(np.int32)


class TableCoder:
    """Codes a (C, H, W) integer tensor, one table per channel.

    offsets[c]: the value of symbol 0 of channel c; lengths[c]: its number of regular symbols;
    counts[c, :lengths[c] + 1]: integer frequencies, the last one the escape symbol's.
    """

    def __init__(self, offsets: np.ndarray, lengths: np.ndarray, counts: np.ndarray):
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        if not (self.offsets.ndim == self.lengths.ndim == 1 and counts.ndim == 2
                and len(self.offsets) == len(self.lengths) == len(counts)):
            raise ValueError("entropy tables have inconsistent shapes")
        if len(self.lengths) and self.lengths.max() + 1 > counts.shape[1]:
            raise ValueError("an entropy table is longer than its counts")
        self.counts = counts
        self.models = [self._model(c, counts[c, :n + 1]) for c, n in enumerate(self.lengths)]

    @staticmethod
    def _model(channel: int, row: np.ndarray):
        if len(row) < 2 or row.min() < 1 or row.sum() != TABLE_TOTAL:
            raise ValueError(f"entropy table of channel {channel} is invalid")
        return _constriction().stream.model.Categorical(row.astype(np.float64) / TABLE_TOTAL, perfect=False)

    def with_rows(self, rows: dict) -> "TableCoder":
        """A coder whose channels in rows ({channel: (offset, row with the escape last)}) use those
        tables, the rest this coder's (shared, not rebuilt)."""
        other = object.__new__(TableCoder)
        other.offsets, other.lengths, other.models = self.offsets.copy(), self.lengths.copy(), list(self.models)
        width = max([self.counts.shape[1]] + [len(row) for _, row in rows.values()])
        other.counts = np.zeros((len(self.offsets), width), dtype=np.int64)
        other.counts[:, :self.counts.shape[1]] = self.counts
        for c, (offset, row) in rows.items():
            other.offsets[c], other.lengths[c] = offset, len(row) - 1
            other.counts[c] = 0
            other.counts[c, :len(row)] = row
            other.models[c] = self._model(c, np.asarray(row, dtype=np.int64))
        return other

    @property
    def channels(self) -> int:
        return len(self.offsets)

    def _encode_run(self, encoder, escapes: bytearray, table: int, values: np.ndarray) -> None:
        symbols = values.astype(np.int64) - self.offsets[table]
        outside = (symbols < 0) | (symbols >= self.lengths[table])
        if outside.any():
            for value in values[outside]:
                escapes += write_varint(zigzag(int(value)))
            symbols = np.where(outside, self.lengths[table], symbols)
        encoder.encode(symbols.astype(np.int32), self.models[table])

    @staticmethod
    def _finish(encoder, escapes: bytearray) -> bytes:
        words = encoder.get_compressed().astype("<u4")
        return write_varint(len(words)) + words.tobytes() + bytes(escapes)

    def encode(self, values: np.ndarray) -> bytes:
        """(C, H, W) integers, channel c coded with table c."""
        values = np.asarray(values)
        if values.ndim != 3 or values.shape[0] != self.channels:
            raise ValueError(f"expected ({self.channels}, H, W) symbols, got {values.shape}")
        encoder, escapes = _constriction().stream.queue.RangeEncoder(), bytearray()
        for c in range(self.channels):
            self._encode_run(encoder, escapes, c, values[c].reshape(-1))
        return self._finish(encoder, escapes)

    def encode_indexed(self, values: np.ndarray, tables: np.ndarray) -> bytes:
        """Integers of any shape, each coded with the table `tables` names at its position.

        Symbols are coded grouped by table (ascending), in raster order within a group; the
        decoder, which computes the same `tables`, reads them back in that order.
        """
        values, tables = np.asarray(values).reshape(-1), np.asarray(tables).reshape(-1)
        if values.shape != tables.shape:
            raise ValueError("values and tables differ in size")
        encoder, escapes = _constriction().stream.queue.RangeEncoder(), bytearray()
        order, groups = self._groups(tables)
        for t, a, b in groups:
            self._encode_run(encoder, escapes, t, values[order[a:b]])
        return self._finish(encoder, escapes)

    def _groups(self, tables: np.ndarray) -> tuple[np.ndarray, list]:
        """-> (positions sorted by table, raster order kept within a table; [(table, start, end)]).
        One stable radix sort instead of a pass over every element per table."""
        narrow = tables.astype(np.uint16) if self.channels <= 1 << 16 else tables
        order = np.argsort(narrow, kind="stable")
        ordered = narrow[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(ordered)) + 1]) if len(ordered) else np.zeros(0, int)
        ends = np.append(starts[1:], len(ordered))
        return order, [(int(ordered[a]), int(a), int(b)) for a, b in zip(starts, ends)]

    def _decoder(self, data: bytes):
        n_words, pos = read_varint(data, 0)
        if pos + 4 * n_words > len(data):
            raise FormatError("entropy-coded payload is shorter than it claims")
        words = np.frombuffer(data, dtype="<u4", count=n_words, offset=pos).astype(np.uint32)
        return _constriction().stream.queue.RangeDecoder(words), pos + 4 * n_words

    def _decode_run(self, decoder, data: bytes, pos: int, table: int, count: int) -> tuple[np.ndarray, int]:
        try:
            symbols = decoder.decode(self.models[table], count).astype(np.int64)
        except (AssertionError, ValueError, RuntimeError):  # constriction's word on data no encoder wrote
            raise FormatError("entropy-coded data is invalid for its tables") from None
        values = symbols + self.offsets[table]
        for i in np.flatnonzero(symbols == self.lengths[table]):
            raw, pos = read_varint(data, pos)
            values[i] = unzigzag(raw)
        if np.abs(values).max(initial=0) > 2**30:
            raise FormatError("escaped latent value out of range")
        return values, pos

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        height, width = shape
        decoder, pos = self._decoder(data)
        out = np.empty((self.channels, height * width), dtype=np.int32)
        for c in range(self.channels):
            out[c], pos = self._decode_run(decoder, data, pos, c, height * width)
        return out.reshape(self.channels, height, width)

    def decode_indexed(self, data: bytes, tables: np.ndarray) -> np.ndarray:
        """Inverse of encode_indexed: integers shaped like `tables`."""
        flat = np.asarray(tables).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.channels):
            raise FormatError("entropy table index out of range")
        decoder, pos = self._decoder(data)
        out = np.empty(flat.shape, dtype=np.int32)
        order, groups = self._groups(flat)
        for t, a, b in groups:
            out[order[a:b]], pos = self._decode_run(decoder, data, pos, t, b - a)
        return out.reshape(np.shape(tables))
