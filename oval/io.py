"""Video in and out over PyAV: anything ffmpeg reads, frame by frame; writers chosen by extension.

Frames are uint8 RGB numpy arrays of shape (H, W, 3).
"""
import dataclasses
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from oval.errors import OvalError
from oval.files import partial_path

WRITE_FORMATS = {".mp4": "H.264 (libx264)", ".mkv": "FFV1, lossless RGB", ".y4m": "raw YUV 4:4:4"}


def _av():
    try:
        import av
    except ImportError as e:
        raise OvalError("PyAV is required for video I/O: pip install av") from e
    return av


def _first_line(error: Exception) -> str:
    """The message of a PyAV/ffmpeg error without its raw errno and repeated path."""
    import re
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    line = re.sub(r"^\[Errno -?\d+\] ", "", line)
    return re.sub(r": '[^']*'$", "", line)


@dataclasses.dataclass
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frame_count: int  # 0 when the source does not say (live sources, some containers)


class VideoReader:
    """Reads RGB frames from a file, a capture device (/dev/video*) or a network URL."""

    def __init__(self, source: str, max_frames: Optional[int] = None):
        av = _av()
        self.source, self.max_frames = str(source), max_frames
        options, fmt = {}, None
        if self.source.startswith("/dev/video"):
            fmt = "v4l2"
        elif "://" not in self.source and not os.path.exists(self.source):
            raise OvalError(f"input not found: {self.source}")
        if self.source.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = "tcp"
        if "://" in self.source:
            options["timeout"] = "10000000"  # microseconds: a dead URL fails instead of hanging
        try:
            self.container = av.open(self.source, format=fmt, options=options, timeout=(10.0, 30.0))
        except Exception as e:
            raise OvalError(f"cannot open {self.source}: {_first_line(e)}") from None
        if not self.container.streams.video:
            self.container.close()
            raise OvalError(f"{self.source} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        ctx = self.stream.codec_context
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        count = self.stream.frames or 0
        if max_frames is not None:
            count = min(count, max_frames) if count else 0
        self.info = VideoInfo(ctx.width, ctx.height, Fraction(rate), count)
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise OvalError(f"{self.source}: video stream has no frame size")

    def __iter__(self) -> Iterator[np.ndarray]:
        n = 0
        try:
            for frame in self.container.decode(self.stream):
                if self.max_frames is not None and n >= self.max_frames:
                    break
                yield frame.to_ndarray(format="rgb24")
                n += 1
        except _av().error.FFmpegError as e:
            if n == 0:
                raise OvalError(f"cannot decode {self.source}: {_first_line(e)}") from None
            raise OvalError(f"{self.source}: decoding failed after {n} frames: {_first_line(e)}") from None

    def close(self) -> None:
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp")


def read_frames(source: str, max_frames: Optional[int] = None) -> list[np.ndarray]:
    """Every frame of a video (anything ffmpeg reads), or of a folder of numbered images (read
    with Pillow, in name order: a clip without a video container)."""
    if os.path.isdir(str(source)):
        from PIL import Image
        files = sorted(p for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:max_frames]
        if not files:
            raise OvalError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return [np.asarray(Image.open(f).convert("RGB")) for f in files]
    with VideoReader(source, max_frames) as reader:
        return list(reader)


class VideoWriter:
    """Writes RGB frames to .mp4 (H.264), .mkv (FFV1, lossless RGB) or .y4m (raw YUV 4:4:4).

    Frames go to a temporary name; `close()` renames it to the final path, `abort()` removes it,
    so a failed run never leaves a file that looks complete.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: Fraction = Fraction(25),
                 crf: int = 17):
        av = _av()
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in WRITE_FORMATS:
            raise OvalError(f"unsupported output format {ext or '(none)'} for {self.path}; "
                            f"use one of {', '.join(WRITE_FORMATS)}")
        check_output_dir(self.path)
        self.tmp = partial_path(self.path)
        fps = Fraction(fps).limit_denominator(1001000)
        try:
            self.container = av.open(str(self.tmp), "w", format={".y4m": "yuv4mpegpipe"}.get(ext))
            if ext == ".mp4":
                self.stream = self.container.add_stream("libx264", rate=fps)
                # 4:2:0 needs even sizes; odd sizes keep full chroma rather than lose a row.
                even = width % 2 == 0 and height % 2 == 0
                self.stream.pix_fmt = "yuv420p" if even else "yuv444p"
                self.stream.options = {"crf": str(crf), "preset": "medium"}
            elif ext == ".mkv":
                self.stream = self.container.add_stream("ffv1", rate=fps)
                self.stream.pix_fmt = "bgr0"
            else:
                self.stream = self.container.add_stream("rawvideo", rate=fps)
                self.stream.pix_fmt = "yuv444p"
            self.stream.width, self.stream.height = width, height
        except OvalError:
            raise
        except Exception as e:
            self.abort()
            raise OvalError(f"cannot write {self.path}: {_first_line(e)}") from None
        self._av = av
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():  # flush the encoder's delayed frames
            self.container.mux(packet)
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Renamed into place when the block succeeds, removed when it raises."""
        if exc_type is None:
            self.close()
        else:
            self.abort()


def optional_writer(path, width: int, height: int, fps: Fraction = Fraction(25)):
    """A VideoWriter for `path`, or a context doing nothing when no path was asked for."""
    import contextlib
    return VideoWriter(path, width, height, fps) if path else contextlib.nullcontext()


def check_output_dir(path: Path) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise OvalError(f"output directory does not exist: {parent}")
