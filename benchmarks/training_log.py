"""A training run's log as a table and a plot: every slice (steps, wall hours, machine, validation)
and every held-out measurement (mean BD-rate against x264, from rd.py --record) against hours.

    python benchmarks/training_log.py RUN_DIR [RUN_DIR ...] [--plot PNG] [--markdown]

Several run directories are read in order as one history (an intra stage, then a P-frame stage
started from it): hours add up across them.
"""
import argparse
import json
import sys
from pathlib import Path


def read(run_dirs: list) -> tuple[list, list]:
    slices, heldout, offset = [], [], 0.0
    for d in map(Path, run_dirs):
        own = [json.loads(line) for line in (d / "slices.jsonl").read_text().splitlines() if line.strip()]
        for s in own:
            offset += s["wall_hours"]
            slices.append({**s, "run": d.name, "hours_total": round(offset, 4)})
        path = d / "heldout.jsonl"
        if path.is_file():
            before = offset - sum(s["wall_hours"] for s in own)
            for line in path.read_text().splitlines():
                if line.strip():
                    h = json.loads(line)
                    heldout.append({**h, "run": d.name, "hours_total": round(before + h["hours"], 4)})
    return slices, heldout


def markdown(slices: list, heldout: list) -> str:
    rows = ["| run | stage | steps | wall hours | total hours | machine | val bpp | val PSNR |", "|---|---|---|---|---|---|---|---|"]
    def shown(value, digits):  # a slice cut short by a lost machine has no validation
        return "n/a" if value is None else f"{value:.{digits}f}"

    for s in slices:
        rows.append(f"| {s['run']} | {s['stage']} | {s['start_step']}-{s['end_step']} | {s['wall_hours']:.2f} | "
                    f"{s['hours_total']:.2f} | {s['machine']} | {shown(s['val_bpp'], 3)} | {shown(s['val_psnr'], 2)} |")
    if heldout:
        rows += ["", "| run | total hours | intra period | clips | mean BD-rate vs x264 | vs x265 | vs SVT-AV1 |",
                 "|---|---|---|---|---|---|---|"]
        for h in heldout:
            bd = h["mean_bd_rate"]
            cells = [f"{bd[c]:+.1f}%" if bd.get(c) is not None else "n/a" for c in ("x264", "x265", "svtav1")]
            rows.append(f"| {h['run']} | {h['hours_total']:.2f} | {h['gop']} | {len(h['clips'])} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(slices: list, heldout: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for stage in sorted({s["stage"] for s in slices}):  # intra validates all-intra, inter with P-frames
        pts = [s for s in slices if s["stage"] == stage and s["val_psnr"] is not None]
        a.plot([s["hours_total"] for s in pts], [s["val_psnr"] for s in pts], "o-", label=f"{stage} stage")
    a.set_xlabel("training hours (all slices)")
    a.set_ylabel("validation PSNR (dB), default level")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    for gop in sorted({h["gop"] for h in heldout}):
        pts = [h for h in heldout if h["gop"] == gop and h["mean_bd_rate"].get("x264") is not None]
        b.plot([h["hours_total"] for h in pts], [h["mean_bd_rate"]["x264"] for h in pts], "D-",
               label=f"intra period {gop}")
    b.axhline(0, color="grey", lw=0.8)
    b.set_xlabel("training hours (all slices)")
    b.set_ylabel("held-out BD-rate vs x264-medium (%)")
    b.grid(alpha=0.3)
    if heldout:
        b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--plot", metavar="PNG")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown (for the model card)")
    args = p.parse_args(argv)
    slices, heldout = read(args.runs)
    print(markdown(slices, heldout) if args.markdown else json.dumps({"slices": slices, "heldout": heldout}, indent=1))
    if args.plot:
        plot(slices, heldout, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
