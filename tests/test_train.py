import json

from oval.cli import encode_main
from oval.train import main as train_main


def test_short_run_writes_a_model_the_encoder_uses(odd_clip, tmp_path, capsys):
    run = tmp_path / "run"
    rc = train_main(["--data", odd_clip, "--out", str(run), "--steps", "12", "--N", "8", "--M", "8",
                     "--crop", "32", "--batch-size", "2", "--log-every", "4", "--save-every", "6"])
    assert rc == 0
    assert json.loads((run / "config.json").read_text())["steps"] == 12
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "model.safetensors").is_file()
    capsys.readouterr()
    rc = encode_main([odd_clip, "-o", str(tmp_path / "s.oval"), "--model", str(run), "--json", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and json.loads(out.splitlines()[-1])["frames"] == 4


def test_resume_continues_from_the_checkpoint(odd_clip, tmp_path, capsys):
    args = ["--data", odd_clip, "--out", str(tmp_path), "--N", "8", "--M", "8", "--crop", "32",
            "--batch-size", "2", "--log-every", "2", "--save-every", "2"]
    assert train_main(args + ["--steps", "4"]) == 0
    capsys.readouterr()
    assert train_main(args + ["--steps", "6", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "step 6/6" in err and "step 2/6" not in err


def test_bad_data_paths(tmp_path, capsys):
    assert train_main(["--data", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "r")]) == 1
    assert "data path not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert train_main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 1
    assert "no video files" in capsys.readouterr().err
