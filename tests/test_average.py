"""python -m oval.average: the mean of runs from one start is a model that codes and decodes."""
import numpy as np
import torch
from conftest import decode_stream, encode_frames, moving_pattern

from oval import average
from oval.models.store import build_model, load_model, save_model

TINY = {"C": 16, "M": 16, "Z": 8, "P": 16}


def _perturbed(path, out, seed):
    """A stand-in for a fine-tuned run: the model's float weights moved a little."""
    model = load_model(path)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=generator))
    model.update()
    save_model(model, out, {"steps": str(seed)})
    return load_model(out)


def test_average_is_the_mean_of_the_weights_and_decodes(tmp_path, tiny_rt_model_path):
    a = _perturbed(tiny_rt_model_path, tmp_path / "a.safetensors", 1)
    b = _perturbed(tiny_rt_model_path, tmp_path / "b.safetensors", 2)
    out = tmp_path / "mean.safetensors"
    assert average.main([str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors"), "--out", str(out)]) == 0
    mean = load_model(str(out))
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    for name, p in mean.named_parameters():
        torch.testing.assert_close(p, (pa[name] + pb[name]) / 2)
    # The integer prior was rebuilt from the averaged weights, not averaged itself.
    assert mean.fingerprint not in (a.fingerprint, b.fingerprint)
    assert mean.metadata["averaged_from"] == '["1", "2"]'

    frames = moving_pattern(3, 64, 64)
    stream, recons = encode_frames(mean, frames)
    _, decoded = decode_stream(load_model(str(out)), stream)
    assert all(np.array_equal(r, d) for r, d in zip(recons, decoded, strict=True))


def test_average_refuses_models_of_another_config(tmp_path, tiny_rt_model_path, capsys):
    other = build_model("oval-rt", {**TINY, "P": 8}).eval()
    other.update()
    save_model(other, tmp_path / "other.safetensors")
    assert average.main([tiny_rt_model_path, str(tmp_path / "other.safetensors"), "--out", str(tmp_path / "x.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one starting point" in err
    assert not (tmp_path / "x.safetensors").exists()
