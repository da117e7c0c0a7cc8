"""python -m oval.train on CPU: loss goes down, TensorBoard gets its statistics, checkpoints resume,
bad input is refused, DALI feeds VP9, and torchrun runs two processes with gloo."""
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch

from conftest import moving_pattern
from oval.cli import encode_main
from oval.train import main as train_main

TINY = ["--arch", "oval-factorized", "--N", "8", "--M", "8", "--crop", "32", "48", "--batch-size", "2", "--workers", "1", "--val-frames", "2"]


def scalars(run: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run / "logs"), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    return {"scalars": {t: [e.value for e in acc.Scalars(t)] for t in tags["scalars"]},
            "images": tags["images"], "histograms": tags["histograms"]}


@pytest.fixture(scope="module")
def trained(odd_clip, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    rc = train_main(["--data", odd_clip, "--out", str(run), "--steps", "60", "--log-every", "10",
                     "--val-every", "30", "--save-every", "30", "--lr", "1e-3", "--noise", "0.01", *TINY])
    assert rc == 0
    return run


def test_loss_goes_down_and_statistics_are_logged(trained):
    logged = scalars(trained)
    s = logged["scalars"]
    assert s["train/loss"][-1] < s["train/loss"][0]
    for tag in ("train/bpp", "train/psnr", "train/lr", "train/frames_per_s", "train/data_wait_fraction",
                "val/bpp", "val/psnr", "val/psnr_last", "val/ms_ssim", "val/compression_ratio", "val/distortion_per_bit"):
        assert tag in s, tag
    assert len(s["val/bpp"]) == 2 and all(v > 0 for v in s["val/bpp"])
    assert any("original" in t for t in logged["images"]) and "val/latents" in logged["histograms"]
    assert (trained / "logs" / "hparams").is_dir()


def test_run_directory_is_a_model(trained, odd_clip, tmp_path, capsys):
    config = json.loads((trained / "config.json").read_text())
    assert config["steps"] == 60 and config["N"] == 8
    assert (trained / "checkpoints" / "best.pt").is_file()
    capsys.readouterr()
    rc = encode_main([odd_clip, "-o", str(tmp_path / "s.oval"), "--model", str(trained), "--json", "--quiet"])
    assert rc == 0 and json.loads(capsys.readouterr().out.splitlines()[-1])["frames"] == 4


def test_resume_continues_and_refuses_a_changed_config(odd_clip, tmp_path, capsys):
    args = ["--data", odd_clip, "--out", str(tmp_path), "--log-every", "2", "--save-every", "2",
            "--val-every", "100", *TINY]
    assert train_main(args + ["--steps", "4"]) == 0
    capsys.readouterr()
    assert train_main(args + ["--steps", "6", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "step 6/6" in err and "step 2/6" not in err
    assert train_main(args + ["--steps", "8", "--resume", "--lmbda", "0.05"]) == 1
    assert "--lmbda 0.05 differs" in capsys.readouterr().err


def test_bad_input(odd_clip, tmp_path, capsys):
    out = ["--out", str(tmp_path / "r")]
    assert train_main(["--data", str(tmp_path / "none.mp4"), *out]) == 1
    assert "data path not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert train_main(["--data", str(tmp_path / "empty"), *out]) == 1
    assert "no video files" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(os.urandom(5000))
    assert train_main(["--data", str(tmp_path / "junk.mp4"), *out]) == 1
    err = capsys.readouterr().err
    assert "skipping" in err and "none of the --data videos could be read" in err
    assert train_main(["--data", odd_clip, *out, "--crop", "48", "64"]) == 1
    err = capsys.readouterr().err  # a file smaller than the crop is skipped; with none left, refused
    assert "smaller than the crop 48x64" in err and "could be read at crop 48x64" in err
    assert train_main(["--data", odd_clip, *out, "--crop", "30"]) == 1
    assert "multiples of 16" in capsys.readouterr().err


@pytest.fixture(scope="module")
def vp9_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("vp9") / "clip.webm"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx-vp9", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for f in moving_pattern(12, 64, 96):
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def test_dali_cpu_pipeline_feeds_training_on_vp9(vp9_clip, tmp_path, capsys):
    pytest.importorskip("nvidia.dali", reason="DALI is not installed (pip install 'oval[dali]' on Linux x86-64)")
    from oval.dali_loader import DaliLoader, usable
    assert usable([vp9_clip], torch.device("cpu"))
    loader = DaliLoader([vp9_clip], 32, 4, torch.device("cpu"))
    batch = loader.next_batch()
    loader.close()
    assert batch.shape == (4, 32, 32, 3) and batch.dtype == torch.uint8 and 60 < batch.float().mean() < 200
    rc = train_main(["--data", vp9_clip, "--out", str(tmp_path), "--steps", "4", "--loader", "dali",
                     "--log-every", "2", "--val-every", "100", *TINY])
    assert rc == 0 and (tmp_path / "model.safetensors").is_file()


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_with_gloo(odd_clip, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}",
           "-m", "oval.train", "--data", odd_clip, "--out", str(tmp_path), "--steps", "6",
           "--log-every", "3", "--val-every", "100", "--device", "cpu", *TINY]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "model.safetensors").is_file()
    assert proc.stderr.count("step 6/6") == 1  # only rank 0 reports


def test_motion_models_are_trained_to_send_vectors_against_the_median(tmp_path):
    """The vector predictor is a coding choice the training does not see: a motion model gets the
    better one, a model without motion keeps the default (and so its fingerprint's form)."""
    from oval.train_config import model_config, parse_args
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--arch", "oval-rt"]
    assert model_config(parse_args(base + ["--motion"])[0])["vector_predictor"] == "median"
    assert model_config(parse_args(base + ["--motion", "--vector-predictor", "left"])[0])["vector_predictor"] == "left"
    assert "vector_predictor" not in model_config(parse_args(base)[0])
    assert train_main(base + ["--motion", "--vector-predictor", "mean"]) == 1


def test_skip_frames_are_a_flag_for_switchable_filter_models(tmp_path):
    from oval.models.rt import RTConfig, RTModel
    from oval.train_config import model_config, parse_args
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "r"), "--arch", "oval-rt", "--motion", "--residual"]
    config = model_config(parse_args(base + ["--switchable-filter", "--skip-frames"])[0])
    assert config["skip_frames"] is True
    assert RTModel(RTConfig(**config)).config.skip_frames
    assert "skip_frames" not in model_config(parse_args(base + ["--switchable-filter"])[0])
    assert train_main(base + ["--skip-frames"]) == 1  # the flag rides on the filter byte
