"""Replays the fuzz corpus and every regression input the fuzzer found, through the same harness."""
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).parent / "fuzz"
sys.path.insert(0, str(FUZZ))
import harness  # noqa: E402

INPUTS = sorted((FUZZ / "corpus").glob("*")) + sorted((FUZZ / "regressions").glob("*"))


@pytest.mark.parametrize("path", INPUTS, ids=[p.name for p in INPUTS])
def test_input_decodes_or_is_refused_cleanly(path):
    harness.decode_bytes(path.read_bytes())  # raises on anything but the codec's FormatError


def test_seed_streams_decode_fully():
    for path in sorted((FUZZ / "corpus").glob("*.oval")):
        assert harness.decode_bytes(path.read_bytes()) > 0, path.name
