import numpy as np
import pytest

from oval.bitstream import FormatError
from oval.entropy import TABLE_TOTAL, TableCoder, pmf_to_counts


def laplace_tables(channels=4, half=12, scale=2.0):
    x = np.arange(-half, half + 1)
    pmf = np.exp(-np.abs(x) / scale)
    pmf /= pmf.sum()
    counts = np.stack([pmf_to_counts(pmf, 1e-4)] * channels)
    return np.full(channels, -half), np.full(channels, 2 * half + 1), counts


def test_counts_are_valid():
    counts = pmf_to_counts(np.array([0.5, 0.5 - 1e-12, 1e-12]), 0.0)
    assert counts.sum() == TABLE_TOTAL and counts.min() >= 1 and len(counts) == 4


def test_round_trip_is_bit_exact_with_escapes():
    coder = TableCoder(*laplace_tables())
    rng = np.random.default_rng(1)
    values = np.round(rng.laplace(0, 3, (4, 9, 13))).astype(np.int32)
    values[0, 0, 0], values[3, 8, 12], values[2, 4, 4] = 10_000, -77, 13  # outside the tables
    data = coder.encode(values)
    np.testing.assert_array_equal(coder.decode(data, (9, 13)), values)


def test_rate_follows_the_distribution():
    coder = TableCoder(*laplace_tables(channels=1, scale=2.0))
    rng = np.random.default_rng(2)
    values = np.round(rng.laplace(0, 2.0, (1, 64, 64))).astype(np.int32)
    bits = 8 * len(coder.encode(values)) / values.size
    assert 2.0 < bits < 3.5  # entropy of a discretised Laplace(2) is about 2.8 bits


def test_short_payload_is_a_format_error():
    coder = TableCoder(*laplace_tables())
    data = coder.encode(np.zeros((4, 3, 3), np.int32))
    with pytest.raises(FormatError):
        coder.decode(data[:2] if len(data) > 2 else b"\x05", (3, 3))


def test_invalid_tables_rejected():
    offsets, lengths, counts = laplace_tables()
    counts[1, 0] += 1  # no longer sums to the table total
    with pytest.raises(ValueError):
        TableCoder(offsets, lengths, counts)
