"""The one exception type users see as a one-line message (the CLIs print it and exit non-zero)."""


class OvalError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class NonFiniteLatents(OvalError):
    """The analysis gave NaN or infinite latents: a diverged model, or P-frames that drifted on
    their references. The encoder codes such a P-frame as an I-frame; an I-frame stops it."""


class UsageError(OvalError):
    """A bad argument value found after parsing (it depends on the model): exit status 2."""


def out_of_memory(error: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError, or an allocator's "can't allocate memory"."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text
                                                or "cannot allocate memory" in text)
