import pytest
import torch

from oval.errors import OvalError
from oval.models.base import pad_to_stride
from oval.models.layers import GDN
from oval.models.registry import model_ids
from oval.models.store import build_model, default_weights_path, fingerprint, load_model, save_model


def tiny(seed=0):
    torch.manual_seed(seed)
    return build_model("oval-factorized", {"N": 8, "M": 8})


def test_registry_has_stable_id():
    assert "oval-factorized" in model_ids()


def test_forward_contract():
    model = tiny().train()
    out = model(torch.rand(2, 3, 64, 48))
    assert out["x_hat"].shape == (2, 3, 64, 48)
    lik = out["likelihoods"]["y"]
    assert lik.shape == (2, 8, 4, 3) and (lik > 0).all() and (lik <= 1).all()


def test_likelihoods_sum_to_one_per_channel():
    model = tiny().eval()
    grid = torch.arange(-300, 301, dtype=torch.float32).view(1, 1, 1, -1).expand(1, 8, 1, -1)
    total = model.entropy_bottleneck.likelihood(grid).sum(-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-3)


def test_compress_decompress_equals_rounded_synthesis():
    model = tiny().eval()
    model.update()
    x = pad_to_stride(torch.rand(1, 3, 50, 70), model.stride)
    enc = model.compress(x)
    dec = model.decompress(enc["strings"], enc["shape"])["x_hat"]
    with torch.no_grad():
        ref = model.g_s(torch.round(model.g_a(x))).clamp(0, 1)
    assert torch.equal(dec, ref)


def test_gdn_stays_finite_with_extreme_parameters():
    gdn = GDN(4)
    with torch.no_grad():
        gdn.beta.fill_(-5.0)  # the reparametrisation bounds beta away from zero anyway
        gdn.gamma.fill_(-5.0)
    y = gdn(torch.randn(1, 4, 8, 8) * 100)
    assert torch.isfinite(y).all()


def test_fingerprint_tracks_weights():
    a, b = tiny(0), tiny(0)
    assert fingerprint(a) == fingerprint(b)
    with torch.no_grad():
        b.g_s[0].bias[0] += 1e-3
    assert fingerprint(a) != fingerprint(b)


def test_save_load_round_trip(tmp_path):
    model = tiny().eval()
    model.update()
    save_model(model, tmp_path / "m.safetensors")
    loaded = load_model(str(tmp_path / "m.safetensors"))
    assert loaded.fingerprint == fingerprint(model)
    assert not (tmp_path / "m.safetensors.part").exists()


def test_truncated_model_file_is_refused(tmp_path, tiny_model_path):
    data = open(tiny_model_path, "rb").read()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OvalError, match="cannot read model file"):
        load_model(str(tmp_path / "cut.safetensors"))


def test_wrong_shapes_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file
    model = tiny().eval()
    model.update()
    save_model(model, tmp_path / "m.safetensors")
    from safetensors import safe_open
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        meta = f.metadata()
    state = load_file(str(tmp_path / "m.safetensors"))
    state["g_a.0.weight"] = torch.zeros(3, 3, 5, 5)
    save_file(state, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(OvalError, match="does not match"):
        load_model(str(tmp_path / "bad.safetensors"))


def test_missing_model_and_non_model_file(tmp_path):
    with pytest.raises(OvalError, match="not found"):
        load_model(str(tmp_path / "nope.safetensors"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(OvalError, match="cannot read checkpoint"):
        load_model(str(tmp_path / "junk.pt"))


def test_shipped_default_model_loads():
    from oval.models.store import shipped_model_for
    model = load_model("default")
    assert model.arch == "oval-rt" and model.levels == 10 and model.default_quality == 6
    # P-frames trained: an inter-stage model, or an intra-stage one on trained P-frames (slice 14)
    from oval.models.store import P_FRAMES_TRAINED
    assert len(model.fingerprint) == 16
    assert model.metadata.get("stage") == "inter" or model.metadata.get(P_FRAMES_TRAINED) == "1"
    assert shipped_model_for(model.fingerprint) == str(default_weights_path())


def test_mixed_quantization_rounds_for_synthesis_and_keeps_gradients():
    model = tiny().train()
    eb = model.entropy_bottleneck
    y = (torch.randn(1, 8, 4, 4) * 3).requires_grad_(True)
    y_hat, lik = eb(y)
    assert not torch.equal(y_hat, torch.round(y))  # plain training: noise
    eb.mixed_quantization = True
    y_hat, lik = eb(y)
    assert torch.equal(y_hat.detach(), torch.round(y.detach()))
    (y_hat.sum() + lik.log().sum()).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_weights_that_do_not_match_the_recorded_fingerprint_are_refused(tmp_path, tiny_model_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    with safe_open(tiny_model_path, framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(tiny_model_path)
    name = sorted(k for k in tensors if k.startswith("g_s"))[0]
    tensors[name] = tensors[name] + 1  # a structurally valid file with other weights
    save_file(tensors, str(tmp_path / "tampered.safetensors"), metadata=meta)
    with pytest.raises(OvalError, match="is damaged"):
        load_model(str(tmp_path / "tampered.safetensors"))


def test_a_stream_names_its_shipped_model(tiny_model_path):
    """Streams of the first default model (intra-only, 2026-11-24) still find it by fingerprint."""
    from oval.models.store import shipped_model_for
    first = default_weights_path().parent / "factorized-2026-11-24.safetensors"
    assert shipped_model_for(bytes.fromhex("7acb829bcb832c159ae7ce023c9166a8")) == str(first)
    assert shipped_model_for(load_model(tiny_model_path).fingerprint) is None
