import numpy as np
import pytest

from conftest import moving_pattern, write_clip
from oval.errors import OvalError
from oval.io import VideoReader, VideoWriter, read_frames


def test_mkv_is_lossless(tmp_path):
    frames = [np.random.default_rng(i).integers(0, 256, (33, 47, 3), dtype=np.uint8) for i in range(3)]
    path = write_clip(tmp_path / "x.mkv", frames)
    back = read_frames(path)
    assert len(back) == 3 and all(np.array_equal(a, b) for a, b in zip(frames, back, strict=True))


@pytest.mark.parametrize("ext,size", [(".mp4", (48, 64)), (".mp4", (45, 71)), (".y4m", (45, 71))])
def test_lossy_formats_keep_size_and_content(tmp_path, ext, size):
    frames = moving_pattern(3, *size)
    back = read_frames(write_clip(tmp_path / f"x{ext}", frames))
    assert len(back) == 3 and back[0].shape == (*size, 3)
    assert np.abs(back[1].astype(int) - frames[1]).mean() < 6


def test_reader_reports_info(bikes):
    with VideoReader(bikes, max_frames=3) as reader:
        assert (reader.info.width, reader.info.height) == (640, 272)
        assert reader.info.frame_count == 3 and float(reader.info.fps) > 0
        assert len(list(reader)) == 3


def test_unreadable_inputs(tmp_path):
    with pytest.raises(OvalError, match="not found"):
        VideoReader(str(tmp_path / "missing.mp4"))
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    with pytest.raises(OvalError):
        VideoReader(str(tmp_path / "text.mp4"))


def test_writer_refuses_unknown_extension_and_missing_dir(tmp_path):
    with pytest.raises(OvalError, match="unsupported output format"):
        VideoWriter(tmp_path / "x.gif", 16, 16)
    with pytest.raises(OvalError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "x.mkv", 16, 16)


def test_aborted_writer_leaves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "x.mkv", 16, 16)
    writer.write(np.zeros((16, 16, 3), np.uint8))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_reads_from_an_http_url(tmp_path):
    """Network sources go through ffmpeg too: serve a clip on loopback and read it back.

    Matroska streams without seeking (Python's simple server has no Range requests)."""
    import functools
    import http.server
    import os
    import threading

    clip = write_clip(tmp_path / "live.mkv", moving_pattern(3, 32, 48))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{os.path.basename(clip)}"
        frames = read_frames(url, max_frames=2)
        assert len(frames) == 2 and np.array_equal(frames[1], read_frames(clip)[1])
    finally:
        server.shutdown()
