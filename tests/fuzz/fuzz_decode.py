"""atheris fuzzer over tests/fuzz/harness.decode_bytes.

    python tests/fuzz/fuzz_decode.py WORKDIR tests/fuzz/corpus -max_total_time=1800 -max_len=8192 -timeout=25 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 2>&1 | tee fuzz.log

A crash (any exception but FormatError), a hang over 25 s, a process over 2 GiB or one allocation
over 1 GiB stops it and writes the input; copy that file into tests/fuzz/regressions/ once fixed, so the tests replay it.
"""
import sys

import atheris

with atheris.instrument_imports(include=["oval"]):
    # Imported here so the decode path is instrumented for coverage.
    import oval.bitstream  # noqa: F401
    import oval.codec  # noqa: F401
    import oval.entropy  # noqa: F401
    import oval.models.entropy_models  # noqa: F401
    import oval.models.hyperprior  # noqa: F401
    import oval.models.integer  # noqa: F401
    import oval.models.rt  # noqa: F401
    import harness


def test_one_input(data: bytes) -> None:
    harness.decode_bytes(data)


if __name__ == "__main__":
    harness.fuzz_model()  # build outside the timed inputs
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
