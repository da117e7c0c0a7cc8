"""Does the data path keep up with training? Crops/s the loader delivers, crops/s a training step
consumes, and the fraction of step time spent waiting for data in a real training loop.

    python benchmarks/loader.py [CLIP ...] [--loader pyav|dali] [--batch-size 8] [--crop 128]
                                [--steps 50] [--device auto|cpu|cuda] [--json PATH]
    python benchmarks/loader.py --corpus DIR [--frames T] [--batch-size 8] [--crop 256] ...

With --corpus the loader is the corpus's (photos with synthetic camera motion and real clips,
rendered on the device) and the step is oval-rt's (T=1: the intra stage; more: I + P-frames).
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from oval.device import pick_device, synchronize
from oval.kernels import frames_to_tensor
from oval.losses import rd_loss
from oval.models.store import build_model
from oval.samples import resolve


def make_loader(kind, files, crop, batch, device, frames=1):
    if kind == "corpus":
        from oval.corpus.loader import CorpusLoader
        return CorpusLoader(files[0], (crop, crop), batch, frames, device=device, progress=False)
    if kind == "dali":
        from oval.dali_loader import DaliLoader
        return DaliLoader(files, crop, batch, device)
    from oval.data import PrefetchLoader
    return PrefetchLoader(files, crop, batch, workers=2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clips", nargs="*", default=["bikes", "bigbuckbunny"])
    p.add_argument("--loader", default="pyav", choices=("pyav", "dali"))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--corpus", metavar="DIR", help="a corpus (python -m oval.corpus build) instead of clips")
    p.add_argument("--frames", type=int, default=1, help="--corpus: frames per clip")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    if args.corpus:
        args.loader, files = "corpus", [Path(args.corpus)]
    else:
        files = [Path(resolve(c)) for c in args.clips]

    # 1. The loader alone, after its warm-up (shuffle buffer filled).
    loader = make_loader(args.loader, files, args.crop, args.batch_size, device, args.frames)
    for _ in range(3):
        loader.next_batch()
    start = time.perf_counter()
    for _ in range(args.steps):
        loader.next_batch()
    delivered = args.steps * args.batch_size / (time.perf_counter() - start)
    loader.close()

    # 2. The training step alone, on one batch held in memory.
    corpus = args.loader == "corpus"
    model = (build_model("oval-rt", {}) if corpus else build_model("oval-factorized", {"N": 64, "M": 96}))
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    if corpus:
        batch = (torch.rand(args.batch_size, args.frames, 3, args.crop, args.crop, device=device), None)
    else:
        batch = torch.randint(0, 256, (args.batch_size, args.crop, args.crop, 3), dtype=torch.uint8, device=device)

    def step(frames):
        if corpus:
            x = frames[0]
            out = model(x, torch.randint(1, model.levels + 1, (x.shape[0],), device=device))
        else:
            x = frames_to_tensor(frames)
            out = model(x)
        loss = rd_loss(out, x, 0.013)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step(batch)
    times = []
    for _ in range(max(5, args.steps // 5)):
        synchronize(device)
        t = time.perf_counter()
        step(batch)
        synchronize(device)
        times.append(time.perf_counter() - t)
    consumed = args.batch_size / statistics.median(times)

    # 3. Both together: the share of wall time the loop waits for data.
    loader = make_loader(args.loader, files, args.crop, args.batch_size, device, args.frames)

    def next_batch():
        b = loader.next_batch()
        return b if corpus else b.to(device)

    for _ in range(3):
        step(next_batch())
    wait = 0.0
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        t = time.perf_counter()
        frames = next_batch()
        wait += time.perf_counter() - t
        step(frames)
    synchronize(device)
    wall = time.perf_counter() - start
    loader.close()

    result = {"loader": args.loader, "device": str(device), "batch_size": args.batch_size, "crop": args.crop,
              "frames": args.frames,
              "loader_crops_per_s": delivered, "step_crops_per_s": consumed, "data_wait_fraction": wait / wall}
    print("| loader | device | delivers (crops/s) | step consumes (crops/s) | data wait |")
    print("|---|---|---|---|---|")
    print(f"| {args.loader} | {device} | {delivered:.0f} | {consumed:.0f} | {wait / wall:.1%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
