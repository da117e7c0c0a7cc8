"""Skip frames (RTConfig.skip_frames): a P-frame sent as its motion alone, the prediction standing
as the picture, where that costs the encoder less."""
import dataclasses
import io

import numpy as np
import pytest
import torch

from conftest import decode_stream, encode_frames, moving_pattern
from oval import codec
from oval.bitstream import FormatError, FrameType
from oval.models import motion
from oval.models.rt import SKIP_FLAG, RTConfig, RTModel
from oval.models.store import fingerprint


def _model(skip_frames=True, seed=4) -> RTModel:
    torch.manual_seed(seed)
    model = RTModel(RTConfig(C=16, M=16, Z=8, P=16, motion=True, residual=True, switchable_filter=True,
                             skip_frames=skip_frames)).eval()
    with torch.no_grad():
        model.motion_stem.weight.normal_(0, 0.1)
    model.update()
    model.fingerprint = fingerprint(model)
    return model


def _encode(model, frames, quality=5):
    return encode_frames(model, frames, frame_count=len(frames), quality=quality, intra_period=0, scene_cuts=False)


def _skipped(packets):
    return [p.frame_type == FrameType.INTER and bool(p.payload[0] & SKIP_FLAG) for p in packets]


def test_a_still_scene_is_skipped_and_decodes_to_the_encoders_pictures():
    frames = [moving_pattern(1, 48, 80)[0]] * 5
    model = _model()
    stream, recons = _encode(model, frames)
    packets, decoded = decode_stream(model, stream)
    assert _skipped(packets) == [False, True, True, True, True]
    assert all(np.array_equal(a, b) for a, b in zip(decoded, recons))
    # A skipped frame's picture is the previous picture moved by its vectors, with its filter.
    x_hat, reference = model.decompress_frame(packets[0].payload, (6, 10), 5, None)
    moves = model._read_motion(packets[1].payload, (6, 10), "cpu")[0]
    prediction = motion.predict(x_hat, moves.vectors, torch.tensor([moves.filter]), "smooth")
    skipped, _ = model.decompress_frame(packets[1].payload, (6, 10), 5, reference)
    assert torch.equal(skipped, prediction.clamp(0, 1))
    coded_stream, _ = _encode(_model(skip_frames=False), frames)
    assert len(stream) < len(coded_stream)


def test_a_still_skip_repeats_the_previous_picture_for_a_few_bytes():
    frames = moving_pattern(2, 48, 80)
    model = _model()
    packets, decoded = decode_stream(model, _encode(model, frames)[0])
    still = model.skipped_payloads(packets[1].payload, (6, 10))[1]
    assert len(still) <= 12 < len(packets[1].payload)
    reader = codec.open_stream(io.BytesIO(_encode(model, frames[:1])[0]))
    decoder = codec.Decoder(model, reader.header)
    first = decoder.decode(next(iter(reader)))
    repeated = decoder.decode(dataclasses.replace(packets[1], payload=still))
    assert np.array_equal(repeated, first) and np.array_equal(first, decoded[0])


def test_the_choice_follows_the_skipped_frames_weighed_error():
    frames = moving_pattern(4, 48, 80)
    model = _model()
    model.skip_error_weight = 1e-9  # the skipped frame's error costs nothing: every P-frame skips
    packets, _ = decode_stream(model, _encode(model, frames)[0])
    assert _skipped(packets) == [False, True, True, True]
    model.skip_error_weight = 1e9  # any error outweighs the bits: none skips
    stream, recons = _encode(model, frames)
    packets, decoded = decode_stream(model, stream)
    assert not any(_skipped(packets))
    assert all(np.array_equal(a, b) for a, b in zip(decoded, recons))


def test_skip_frames_are_a_coding_switch_the_fingerprint_covers():
    with_skips, without = _model(), _model(skip_frames=False)
    assert with_skips.fingerprint != without.fingerprint
    assert [t.tolist() for t in with_skips.state_dict().values()] == [t.tolist() for t in without.state_dict().values()]
    with pytest.raises(TypeError, match="switchable filter"):
        RTModel(dataclasses.replace(RTConfig(motion=True, residual=True), skip_frames=True))


def test_a_skip_flag_is_refused_where_it_does_not_belong():
    frames = moving_pattern(2, 48, 80)
    model = _model()
    model.skip_error_weight = 1e-9
    packets, _ = decode_stream(model, _encode(model, frames)[0])
    reference = model.decompress_frame(packets[0].payload, (6, 10), 5, None)[1]
    skipped = packets[1].payload
    with pytest.raises(FormatError, match="no latent"):
        model.decompress_frame(skipped + b"\x00", (6, 10), 5, reference)
    # A model without skip frames reads the flag as a filter index it does not have.
    plain = _model(skip_frames=False)
    with pytest.raises(FormatError, match="filter"):
        plain.decompress_frame(skipped, (6, 10), 5, reference)
    assert model.skipped_payloads(skipped, (6, 10))[0] == skipped  # flagged twice is flagged once
    assert plain.skipped_payloads(packets[1].payload, (6, 10)) == []
