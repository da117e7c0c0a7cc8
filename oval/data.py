"""Training data: random crops of video frames, decoded ahead of the training step.

`PrefetchLoader` (PyAV, works everywhere): background threads decode clips and cut crops into a
bounded queue; a shuffle buffer mixes crops from different clips and times, so a batch is not a run
of near-identical neighbours. The step only waits when the queue is empty, and the time it waits
is measured (`wait_fraction`), so a slow data path shows in the numbers rather than hiding.
"""
import queue
import random
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from oval.errors import OvalError
from oval.io import VideoReader

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".y4m", ".ivf")


def video_files(paths) -> list[Path]:
    """Expand files and directories (recursively) into a sorted list of video files."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.is_file():
            files.append(p)
        else:
            raise OvalError(f"data path not found: {p}")
    if not files:
        raise OvalError("no video files in --data")
    return files


def crop_size(crop) -> tuple[int, int]:
    """(height, width) from an int (square) or a pair."""
    return (crop, crop) if isinstance(crop, int) else (int(crop[0]), int(crop[-1]))


def fits(shape, crop) -> bool:
    ch, cw = crop_size(crop)
    return shape[0] >= ch and shape[1] >= cw


def usable_files(files: list[Path], crop) -> list[Path]:
    """Files that open and are large enough to crop; the others are skipped with a warning."""
    ch, cw = crop_size(crop)
    usable = []
    for f in files:
        try:
            with VideoReader(str(f)) as reader:
                w, h = reader.info.width, reader.info.height
        except OvalError as e:
            print(f"warning: skipping {f}: {e}", file=sys.stderr)
            continue
        if not fits((h, w), crop):
            print(f"warning: skipping {f}: {w}x{h} is smaller than the crop {ch}x{cw} (HxW)", file=sys.stderr)
            continue
        usable.append(f)
    if not usable:
        raise OvalError(f"none of the --data videos could be read at crop {ch}x{cw} (HxW)")
    return usable


def random_crop(frames: np.ndarray, crop, rng: random.Random) -> np.ndarray:
    """The same random window (and mirroring) of every frame of a (..., H, W, 3) array."""
    ch, cw = crop_size(crop)
    y = rng.randrange(frames.shape[-3] - ch + 1)
    x = rng.randrange(frames.shape[-2] - cw + 1)
    out = frames[..., y:y + ch, x:x + cw, :]
    return np.ascontiguousarray(out[..., ::-1, :] if rng.random() < 0.5 else out)


def half_size(frame: np.ndarray) -> np.ndarray:
    """2x2 box downscale: the model also sees detail at a coarser scale (small videos, far objects)."""
    h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
    f = frame[:h, :w].astype(np.uint16)
    return ((f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2] + 2) // 4).astype(np.uint8)


class PrefetchLoader:
    """Yields uint8 (B, crop_h, crop_w, 3) batches forever; call close() to stop the threads.

    With clip_length T > 1 an item is T consecutive frames cropped at one place, (B, T, h, w, 3):
    what a temporal model trains on.
    """

    def __init__(self, files: list[Path], crop, batch_size: int, max_frames: Optional[int] = None,
                 workers: int = 2, queue_size: int = 512, shuffle_buffer: int = 256,
                 crops_per_frame: int = 2, seed: int = 0, clip_length: int = 1):
        self.files, self.crop, self.batch_size = list(files), crop, batch_size
        self.clip_length = clip_length
        self.max_frames, self.crops_per_frame = max_frames, crops_per_frame
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.buffer: list = []
        self.shuffle_buffer = shuffle_buffer
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.errors: list = []
        self.wait_seconds = self.busy_seconds = 0.0
        self._last = None
        self.threads = [threading.Thread(target=self._work, args=(seed * 1000 + i,), daemon=True)
                        for i in range(max(1, workers))]
        for t in self.threads:
            t.start()

    def _work(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            path = rng.choice(self.files)
            try:
                with VideoReader(str(path), self.max_frames) as reader:
                    window: list = []
                    for frame in reader:
                        window = (window + [frame])[-self.clip_length:]
                        if len(window) < self.clip_length:
                            continue
                        for clip in (np.stack(window), np.stack([half_size(f) for f in window])):
                            if not fits(clip.shape[1:], self.crop):
                                continue
                            for _ in range(self.crops_per_frame):
                                item = random_crop(clip, self.crop, rng)
                                if not self._put(item[0] if self.clip_length == 1 else item):
                                    return
                        window = [] if self.clip_length > 1 else window  # clips do not overlap
            except OvalError as e:
                self.errors.append(f"{path}: {e}")
                if len(self.errors) > 10 * len(self.files):
                    return

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _get(self) -> np.ndarray:
        while True:
            try:
                return self.queue.get(timeout=1.0)
            except queue.Empty:
                if not any(t.is_alive() for t in self.threads):
                    raise OvalError("the data loader stopped: " + (self.errors[-1] if self.errors else "no frames"))

    def next_batch(self) -> torch.Tensor:
        now = time.perf_counter()
        if self._last is not None:
            self.busy_seconds += now - self._last
        while len(self.buffer) < self.shuffle_buffer:
            self.buffer.append(self._get())
        batch = []
        for _ in range(self.batch_size):
            i = self.rng.randrange(len(self.buffer))
            batch.append(self.buffer[i])
            self.buffer[i] = self._get()
        if self._last is not None:  # the first call fills the shuffle buffer: warm-up, not waiting
            self.wait_seconds += time.perf_counter() - now
        self._last = time.perf_counter()
        return torch.from_numpy(np.stack(batch))

    def wait_fraction(self, reset: bool = True) -> float:
        total = self.wait_seconds + self.busy_seconds
        fraction = self.wait_seconds / total if total > 0 else 0.0
        if reset:
            self.wait_seconds = self.busy_seconds = 0.0
        return fraction

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
