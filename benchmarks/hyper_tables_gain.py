"""What the hyper-latent tables fitted to each frame save, in streams benchmarks/rd.py has coded.

    python benchmarks/hyper_tables_gain.py RD_OUT [--json PATH]

RD_OUT is an rd.py --out folder of a model with `adapted_hyper_tables` (its points/ and streams/).
Each frame's ẑ is decoded and coded again with the model's learned tables, which is what the
frame costs without the switch: the pictures are the same bit for bit, since the switch changes
only how ẑ is entropy-coded. With P-frames the encoder's choices (skips, probes, scene cuts)
weigh frame sizes and could go otherwise without the switch; all intra the figure is exact.
Printed per clip and intra period: the bytes with and without, and the BD-rate (pchip, PSNR RGB)
of the stream with the switch against the one without.
"""
import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from oval import codec
from oval.bitstream import FramePacket, FrameType, write_varint
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/rd.py, however this is loaded
from rd import bd_rate, load_variant  # noqa: E402


def latent_payload(model, packet: FramePacket, shape: tuple):
    """The part of a frame's payload the latent prior wrote, or None (a skipped P-frame)."""
    if packet.frame_type == FrameType.INTRA or not model.config.motion:
        return packet.payload
    _, used, skipped = model._read_motion(packet.payload, shape, "cpu")
    return None if skipped else packet.payload[used:]


def learned_size(prior, payload: bytes, shape: tuple) -> int:
    """The payload's size with ẑ coded by the learned tables."""
    z, y_start = prior.read_hyper_latent(payload, shape, adapted_tables=True)
    plain = prior.z_density.coder.encode(z)
    return 4 + len(write_varint(len(plain))) + len(plain) + len(payload) - y_start


def stream_sizes(model, path: Path) -> tuple:
    """(the stream's bytes, its bytes with every ẑ coded by the learned tables)."""
    data = path.read_bytes()
    reader = codec.open_stream(io.BytesIO(data))
    shape = codec.latent_shape(model, reader.header.width, reader.header.height)
    saved = 0
    for packet in reader:
        if not isinstance(packet, FramePacket):
            continue
        latent = latent_payload(model, packet, shape)
        if latent is not None:
            prior = model.prior_intra if packet.frame_type == FrameType.INTRA else model.prior_inter
            saved += learned_size(prior, latent, shape) - len(latent)
    return len(data), len(data) + saved


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rd_out", type=Path)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    points = sorted((args.rd_out / "points").glob("*.json"))
    if not points:
        raise SystemExit(f"{args.rd_out}: no points/*.json (an rd.py --out folder?)")
    models, report = {}, {"clips": {}}
    for point_file in points:
        result = json.loads(point_file.read_text())["result"]
        clip = point_file.stem
        for key in ("oval", "oval_intra"):
            curve = result.get(key) or []
            if not curve:
                continue
            with_switch, without = [], []
            for pt in curve:
                spec, q, period = pt["model"], pt["quality"], pt["intra_period"]
                model = models.setdefault(spec, load_variant(spec, "cpu"))
                if not getattr(model.config, "adapted_hyper_tables", False):
                    raise SystemExit(f"{spec} codes without adapted_hyper_tables: nothing to measure")
                name = Path(spec).stem.replace("#", "_")  # as rd.py names its streams
                size, plain = stream_sizes(model, args.rd_out / "streams" / clip / f"oval_{name}_q{q}_i{period}.oval")
                with_switch.append({"bpp": pt["bpp"], "psnr": pt["psnr"], "bytes": size})
                without.append({"bpp": pt["bpp"] * plain / size, "psnr": pt["psnr"], "bytes": plain})
            gain = bd_rate(without, with_switch)[0]
            period = curve[0]["intra_period"]
            report["clips"].setdefault(clip, {})[f"intra_period_{period}"] = {
                "with": with_switch, "without": without, "bd_rate": gain}
            sizes = ", ".join(f"{w['bytes']}/{o['bytes']}" for w, o in zip(with_switch, without))
            print(f"{clip}, intra period {period}: {'n/a' if gain is None else f'{gain:+.2f}%'}   (bytes with/without: {sizes})")
    for period in sorted({k for c in report["clips"].values() for k in c}):
        values = [c[period]["bd_rate"] for c in report["clips"].values() if period in c]
        known = [v for v in values if v is not None]
        report[f"mean_{period}"] = float(np.mean(known)) if known else None
        mean = report[f"mean_{period}"]
        print(f"mean, {period.replace('_', ' ')}: {'n/a' if mean is None else f'{mean:+.2f}%'} over {len(known)} clips")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
