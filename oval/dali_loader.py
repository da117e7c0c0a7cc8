"""DALI data path: decode, crop and flip sequences of frames in one pipeline, straight into torch.

One pipeline definition whose device is a parameter: "gpu" decodes on NVIDIA hardware (NVDEC)
and hands CUDA tensors to torch through DLPack with no host round trip; "cpu" decodes in software
where there is no GPU (DALI 2.4's CPU decoder takes VP9, not H.264, AV1 or FFV1, so `usable`
checks the codecs and the PyAV loader takes over for the rest).
"""
from pathlib import Path

import torch

from oval.data import crop_size
from oval.errors import OvalError

CPU_CODECS = ("vp9",)


def _dali():
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        raise OvalError('DALI is not installed: pip install "oval[gpu]" (or use --loader pyav)') from None
    return nvidia.dali


def available() -> bool:
    try:
        _dali()
        return True
    except OvalError:
        return False


def video_codec(path: Path) -> str:
    import av
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name


def usable(files: list, device: torch.device) -> bool:
    """DALI can decode every file here: any codec NVDEC takes on a GPU; VP9 only on the CPU."""
    if not available():
        return False
    if device.type == "cuda":
        return True
    try:
        return all(video_codec(f) in CPU_CODECS for f in files)
    except Exception:
        return False


def build_pipeline(files: list, crop, batch_size: int, device: str, sequence_length: int = 1,
                   seed: int = 0, shard_id: int = 0, num_shards: int = 1, num_threads: int = 2,
                   device_id=None):
    _dali()  # a clear message where DALI is missing
    from nvidia.dali import fn, pipeline_def

    @pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id, seed=seed)
    def video_crops():
        frames = fn.experimental.readers.video(device=device, filenames=[str(f) for f in files],
                                               sequence_length=sequence_length, random_shuffle=True,
                                               initial_fill=64, shard_id=shard_id, num_shards=num_shards,
                                               name="reader")
        frames = fn.crop(frames, crop=crop_size(crop), crop_pos_x=fn.random.uniform(range=(0.0, 1.0)),
                         crop_pos_y=fn.random.uniform(range=(0.0, 1.0)))
        return fn.flip(frames, horizontal=fn.random.coin_flip())

    return video_crops()


class DaliLoader:
    """Same interface as PrefetchLoader: next_batch() -> uint8 (B, crop_h, crop_w, 3) on the pipeline's device."""

    def __init__(self, files: list, crop, batch_size: int, device: torch.device, seed: int = 0,
                 shard_id: int = 0, num_shards: int = 1):
        from nvidia.dali.plugin.pytorch import DALIGenericIterator

        on_gpu = device.type == "cuda"
        self.pipe = build_pipeline(files, crop, batch_size, "gpu" if on_gpu else "cpu", seed=seed,
                                   shard_id=shard_id, num_shards=num_shards,
                                   device_id=(device.index or 0) if on_gpu else None)
        self.pipe.build()
        self.iterator = DALIGenericIterator([self.pipe], ["frames"], reader_name="reader", auto_reset=True)
        self.wait_seconds = 0.0

    def next_batch(self) -> torch.Tensor:
        import time
        start = time.perf_counter()
        try:
            batch = next(self.iterator)
        except StopIteration:
            batch = next(self.iterator)  # auto_reset starts the next epoch
        self.wait_seconds += time.perf_counter() - start
        frames = batch[0]["frames"]  # (B, F, H, W, C)
        return frames.reshape(-1, *frames.shape[2:])

    def wait_fraction(self, reset: bool = True) -> float:
        return float("nan")  # DALI prefetches inside the pipeline; its wait is not separable here

    def close(self) -> None:
        del self.iterator, self.pipe
