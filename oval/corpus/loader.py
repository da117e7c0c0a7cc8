"""Training batches from a corpus: synthetic camera motion over photos, mixed with real clips.

Everything is decoded once into memory (photos as uint8 tensors, clips up to `max_frames` frames),
then each batch is cut and rendered with torch ops on the training device: on a GPU the data path
costs a few milliseconds a step and never waits on decoding; on a CPU it is a few percent of a step
(`benchmarks/loader.py --corpus DIR` measures both sides).
"""
import random
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from oval.corpus.build import load_manifest
from oval.corpus.flat import flat_windows
from oval.corpus.motion import motion_parameters, render_clips, window_size
from oval.corpus.sources import FOOTAGE, PHOTO
from oval.errors import OvalError

DEFAULT_WEIGHTS = {PHOTO: 0.7, FOOTAGE: 0.3}


def _read_photo(path: Path) -> torch.Tensor:
    from PIL import Image
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB")).copy())


def _read_clip(path: Path, max_frames: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 from a video file or a folder of numbered images."""
    from oval.io import read_frames
    frames = read_frames(str(path), max_frames)
    if not frames:
        raise OvalError(f"{path} has no frames")
    return torch.from_numpy(np.stack(frames))


class CorpusLoader:
    """next_batch() -> (float (B, T, 3, h, w) in [0, 1] on `device`, list of source names).

    weights: the share of each kind of material (photo, footage); items of a kind are drawn
    uniformly. flat_share: the share of samples that are flat or smooth synthetic pictures
    (oval.corpus.flat) moving like photo clips, drawn before the rest. A photo or clip smaller than
    what a sample needs is skipped with a warning.
    """

    def __init__(self, corpus_dir, crop: tuple, batch_size: int, frames: int = 1, split: str = "train",
                 device: torch.device = torch.device("cpu"), weights: dict = None, max_frames: int = 300,
                 seed: int = 0, progress: bool = True, flat_share: float = 0.0):
        self.dir = Path(corpus_dir)
        manifest = load_manifest(self.dir)
        self.crop, self.batch_size, self.frames, self.device = tuple(crop), batch_size, frames, device
        self.window = window_size(self.crop)
        self.rng = random.Random(seed)
        self.generator = torch.Generator().manual_seed(seed)
        items = [i for i in manifest["items"] if i["split"] == split]
        self.photos, self.photo_sources, self.clips, self.clip_sources = [], [], [], []
        from tqdm import tqdm
        for item in tqdm(items, desc=f"loading {split} corpus", unit="item", disable=not progress, file=sys.stderr):
            path = self.dir / item["path"]
            if item["kind"] == PHOTO:
                if min(item["width"], item["height"]) < self.window:
                    continue  # too small for a moving window: used by smaller crops only
                self.photos.append(_read_photo(path).to(device))
                self.photo_sources.append(item["source"])
            else:
                if item["frames"] < frames or min(item["width"], item["height"]) < min(self.crop):
                    print(f"warning: skipping {item['id']}: too short or small for {frames} frames of {self.crop}",
                          file=sys.stderr)
                    continue
                self.clips.append(_read_clip(path, max_frames).pin_memory() if device.type == "cuda"
                                  else _read_clip(path, max_frames))
                self.clip_sources.append(item["source"])
        weights = dict(weights or DEFAULT_WEIGHTS)
        if not self.photos:
            weights[PHOTO] = 0.0
        if not self.clips:
            weights[FOOTAGE] = 0.0
        total = weights.get(PHOTO, 0) + weights.get(FOOTAGE, 0)
        if total <= 0:
            raise OvalError(f"the {split} split of {self.dir} has nothing usable for crops of {self.crop}")
        self.photo_share = weights.get(PHOTO, 0) / total
        self.flat_share = flat_share

    @property
    def sources(self) -> list:
        return sorted(set(self.photo_sources) | set(self.clip_sources))

    def _photo_samples(self, picks: list) -> torch.Tensor:
        windows = []
        for i in picks:
            photo = self.photos[i]
            h, w = photo.shape[:2]
            # Downscale by a random factor (log-uniform up to 4x, as far as the photo allows):
            # the model sees detail at many scales, and downscaling removes noise and blocking.
            most = min(h, w) / self.window
            factor = most ** self.rng.random() if most > 1 else 1.0
            side = max(self.window, int(self.window * min(factor, 4.0)))
            y, x = self.rng.randrange(h - side + 1), self.rng.randrange(w - side + 1)
            win = photo[y:y + side, x:x + side].permute(2, 0, 1)[None].float() / 255
            if side != self.window:
                win = F.interpolate(win, size=(self.window, self.window), mode="bilinear", antialias=True,
                                    align_corners=False)
            if self.rng.random() < 0.5:
                win = win.flip(-1)
            windows.append(win)
        windows = torch.cat(windows).to(self.device)
        params = motion_parameters(len(picks), self.generator, self.device)
        return render_clips(windows, params, self.frames, self.crop, self.generator)

    def _clip_sample(self, clip: torch.Tensor) -> torch.Tensor:
        t, h, w = clip.shape[:3]
        ch, cw = self.crop
        stride = 2 if self.frames > 1 and t >= 2 * self.frames and self.rng.random() < 0.3 else 1
        start = self.rng.randrange(t - stride * (self.frames - 1))
        half = h >= 2 * ch and w >= 2 * cw and self.rng.random() < 0.3  # a coarser scale now and then
        sh, sw = (2 * ch, 2 * cw) if half else (ch, cw)
        y, x = self.rng.randrange(h - sh + 1), self.rng.randrange(w - sw + 1)
        window = clip[start:start + stride * self.frames:stride, y:y + sh, x:x + sw]
        window = window.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float() / 255
        if half:
            window = F.avg_pool2d(window, 2)
        return window.flip(-1) if self.rng.random() < 0.5 else window

    def _flat_samples(self, n: int) -> torch.Tensor:
        windows = flat_windows(n, self.window, self.generator, self.photos, self.device)
        params = motion_parameters(n, self.generator, self.device)
        return render_clips(windows, params, self.frames, self.crop, self.generator)

    def next_batch(self) -> tuple[torch.Tensor, list]:
        parts, sources = [], []
        # No draw at all without flat samples: earlier recipes see exactly the batches they saw.
        n_flat = sum(self.rng.random() < self.flat_share for _ in range(self.batch_size)) if self.flat_share else 0
        if n_flat:
            parts.append(self._flat_samples(n_flat))
            sources += ["flat"] * n_flat
        n_photo = sum(self.rng.random() < self.photo_share for _ in range(self.batch_size - n_flat))
        if n_photo:
            picks = [self.rng.randrange(len(self.photos)) for _ in range(n_photo)]
            parts.append(self._photo_samples(picks))
            sources += [self.photo_sources[i] for i in picks]
        for _ in range(self.batch_size - n_flat - n_photo):
            i = self.rng.randrange(len(self.clips))
            parts.append(self._clip_sample(self.clips[i])[None])
            sources.append(self.clip_sources[i])
        return torch.cat(parts), sources

    def wait_fraction(self) -> float:
        return 0.0  # batches are made on demand from memory; benchmarks/loader.py times them

    def close(self) -> None:
        self.photos, self.clips = [], []
