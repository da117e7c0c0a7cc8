"""The one exception type users see as a one-line message (the CLIs print it and exit non-zero)."""


class OvalError(Exception):
    """A problem with the user's input or environment, explained in one line."""
