"""python -m oval.sweep: a 2-point grid over lmbda on bikes at 20 steps trains, converts and ranks both."""
import csv
import json

import pytest

from oval.sweep import main as sweep_main, to_flags

BASE = """
base:
  data: [{clip}]
  steps: 20
  device: cpu
  arch: oval-factorized
  N: 8
  M: 8
  crop: [32, 32]
  batch_size: 2
  max_frames: 8
  workers: 1
  val_every: 1000
  log_every: 10
val_frames: 3
"""


def write(tmp_path, text, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def lmbda_sweep(bikes, tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    config = write(d, BASE.format(clip=bikes) + "grid:\n  lmbda: [0.002, 0.2]\n")
    assert sweep_main([config, "--out", str(d / "out")]) == 0
    return config, d / "out"


def test_two_point_grid_trains_converts_and_ranks(lmbda_sweep):
    _, out = lmbda_sweep
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["status"] for r in rows] == ["ok", "ok"] and sorted(r["rank"] for r in rows) == ["1", "2"]
    assert {r["lmbda"] for r in rows} == {"0.002", "0.2"}
    for r in rows:
        run = out / "runs" / r["name"]
        assert (run / "val.oval").is_file() and (run / "val_recon.mkv").is_file()
        assert float(r["bpp"]) > 0 and float(r["psnr"]) > 0 and float(r["encode_fps"]) > 0
    costs = [float(r["rd_cost"]) for r in sorted(rows, key=lambda r: int(r["rank"]))]
    assert costs == sorted(costs)
    for r in rows:  # the cost is λ·255²·MSE + bpp at the ranking λ (0.013)
        assert float(r["rd_cost"]) == pytest.approx(0.013 * 255**2 * 10 ** (-float(r["psnr"]) / 10) + float(r["bpp"]),
                                                    rel=1e-3)
    assert "Ranked by rate-distortion cost at λ = 0.013" in (out / "summary.md").read_text()
    assert (out / "rd.png").stat().st_size > 1000 and len(list((out / "tb").iterdir())) == 2


def test_rerun_skips_finished_points(lmbda_sweep, capsys):
    config, out = lmbda_sweep
    assert sweep_main([config, "--out", str(out)]) == 0
    assert capsys.readouterr().err.count("skipped (done before)") == 2


def test_failed_point_is_recorded_and_the_sweep_goes_on(bikes, tmp_path, capsys):
    config = write(tmp_path, BASE.format(clip=bikes) + "grid:\n  crop: [[32, 32], [1024, 1024]]\n")
    assert sweep_main([config, "--out", str(tmp_path / "out")]) == 0
    results = {r["name"]: r for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))}
    assert sorted(r["status"] for r in results.values()) == ["failed", "ok"]
    failed = next(r for r in results.values() if r["status"] == "failed")
    assert "could be read at crop 1024x1024" in failed["error"]
    assert json.loads((tmp_path / "out" / "runs" / failed["name"] / "result.json").read_text())["status"] == "failed"


def test_dry_run_and_bad_configs(bikes, tmp_path, capsys):
    config = write(tmp_path, BASE.format(clip=bikes) + "grid:\n  lmbda: [0.01, 0.02]\n")
    assert sweep_main([config, "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "--lmbda 0.02" in out[1] and not (tmp_path / "o").exists()
    assert sweep_main([str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")]) == 1
    assert "config not found" in capsys.readouterr().err
    bad = write(tmp_path, "base: {data: [x]}\ngrid: {lmbda: 0.01}\n", "bad.yaml")
    assert sweep_main([bad, "--out", str(tmp_path / "o")]) == 1
    assert "non-empty list" in capsys.readouterr().err
    unknown = write(tmp_path, BASE.format(clip=bikes) + "grid:\n  no_such_flag: [1]\n", "unknown.yaml")
    assert sweep_main([unknown, "--out", str(tmp_path / "o")]) == 1
    assert "not valid for oval.train" in capsys.readouterr().err


def test_flags_follow_the_trainer_convention():
    assert to_flags({"batch_size": 4, "data": ["a", "b"], "compile": True, "resume": False}) == \
        ["--batch-size", "4", "--data", "a", "b", "--compile"]
