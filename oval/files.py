"""Writing outputs so that a failed run never leaves a file that looks complete: write under a
temporary name in the same directory, then rename (atomic), with the permissions a plain open()
would give (safetensors creates its files private to the owner)."""
import contextlib
import os
from pathlib import Path


def partial_path(path: Path) -> Path:
    """Temporary name in the same directory (so the final rename is atomic), same extension."""
    path = Path(path)
    return path.with_name(f".{path.stem}.part{path.suffix}")


def publish(tmp: Path, path: Path) -> None:
    """Renames a finished temporary file to its final name, readable as the umask allows."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_output(path: Path):
    """Yields the temporary path to write; it becomes `path` when the block ends normally and is
    removed when the block raises (Ctrl-C included)."""
    tmp = partial_path(Path(path))
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    publish(tmp, Path(path))
