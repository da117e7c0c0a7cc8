import io

import numpy as np
import pytest

from conftest import decode_stream, encode_frames, moving_pattern
from oval import bitstream as bs
from oval import codec
from oval.models.store import load_model


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    return load_model(tiny_model_path)


def test_units_are_written_as_frames_are_encoded(tiny):
    sink = io.BytesIO()
    encoder = codec.Encoder(tiny, sink, 40, 24)
    sizes = []
    for frame in moving_pattern(4, 24, 40):
        result = encoder.encode(frame)
        sizes.append(len(sink.getvalue()))
        assert result.bytes > 0
    assert sizes == sorted(set(sizes))  # the stream grows with every frame, nothing is held back
    encoder.close()
    assert encoder.bytes_written == len(sink.getvalue())


def test_decoder_output_equals_encoder_recon(tiny):
    stream, recons = encode_frames(tiny, moving_pattern(3, 30, 50))
    _, decoded = decode_stream(tiny, stream)
    assert all(np.array_equal(a, b) for a, b in zip(recons, decoded, strict=True))
    assert decoded[0].shape == (30, 50, 3)


def test_encoder_refuses_size_change(tiny):
    encoder = codec.Encoder(tiny, io.BytesIO(), 40, 24)
    with pytest.raises(ValueError, match="40x24"):
        encoder.encode(np.zeros((24, 41, 3), np.uint8))


def test_inter_frames_are_refused_by_an_intra_model(tiny):
    header = bs.StreamHeader(tiny.arch, tiny.fingerprint, 32, 32)
    decoder = codec.Decoder(tiny, header)
    with pytest.raises(bs.FormatError, match="has no P-frames"):
        decoder.decode(bs.FramePacket(0, bs.FrameType.INTER, 0, b""))


def test_a_scene_cut_is_coded_as_an_i_frame(carphone_frames, bikes):
    """Two shots back to back in one group of pictures: the first frame of the second shot costs
    far more as a P-frame than the P-frames before it, so the encoder codes it intra."""
    import io

    from oval import codec
    from oval.io import read_frames
    from oval.models.store import load_model
    model = load_model("oval/weights/video-2026-11-25.safetensors")
    second = [np.ascontiguousarray(f[60:204, 200:376]) for f in read_frames(bikes, 3)]
    frames = carphone_frames[:4] + second
    kinds = []
    for cuts in (True, False):
        encoder = codec.Encoder(model, io.BytesIO(), 176, 144, 25, len(frames), intra_period=0, scene_cuts=cuts)
        kinds.append([encoder.encode(f).frame_type.name for f in frames])
    assert kinds[0] == ["INTRA", "INTER", "INTER", "INTER", "INTRA", "INTER", "INTER"]
    assert kinds[1] == ["INTRA"] + ["INTER"] * 6


def test_a_cut_right_after_an_i_frame_is_seen(bikes):
    """Two cuts in a row (a shot of one frame): the frame after the first cut's I-frame has no
    P-frames of its group to compare with; costing more than that I-frame, it is coded intra too
    (the default model; bikes showed this in benchmarks/drift.py)."""
    import io

    from oval import codec
    from oval.io import read_frames
    from oval.models.store import load_model
    from oval.samples import resolve
    model = load_model("default")
    other = read_frames(str(resolve("carphone")), 1)
    shot = [np.ascontiguousarray(f[60:204, 200:376]) for f in read_frames(bikes, 5)]
    frames = shot[:3] + other + shot[3:5]
    kinds, sizes = [], []
    for cuts in (True, False):
        encoder = codec.Encoder(model, io.BytesIO(), 176, 144, 25, len(frames), intra_period=0, scene_cuts=cuts)
        results = [encoder.encode(f) for f in frames]
        kinds.append([r.frame_type.name for r in results])
        sizes.append(sum(r.bytes for r in results))
    assert kinds[0] == ["INTRA", "INTER", "INTER", "INTRA", "INTRA", "INTER"]
    assert kinds[1] == ["INTRA"] + ["INTER"] * 5 and sizes[0] < sizes[1]


def test_a_p_frame_whose_latents_are_not_finite_is_coded_as_an_i_frame(tiny_rt_residual_model_path):
    """A reference a drifting model blew up (NaN feature) would code as garbage that decodes
    without error: the encoder codes that frame from pixels instead, and an I-frame that cannot be
    coded stops the encoder with one line."""
    import torch
    from oval.errors import NonFiniteLatents
    from oval.models.rt import Reference
    model = load_model(tiny_rt_residual_model_path)
    frames = moving_pattern(3, 32, 48)
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, 48, 32, intra_period=0, scene_cuts=False)
    encoder.encode(frames[0])
    ref = encoder.decoder.reference
    encoder.decoder.reference = Reference(torch.full_like(ref.feature, float("nan")), ref.latent16, ref.picture)
    results = [encoder.encode(f) for f in frames[1:]]
    encoder.close()
    assert [r.frame_type for r in results] == [bs.FrameType.INTRA, bs.FrameType.INTER]
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    decoder = codec.Decoder(model, reader.header)
    decoded = [decoder.decode(p) for p in reader]
    assert all(np.array_equal(a, r.recon) for a, r in zip(decoded[1:], results, strict=True))
    model._analyse = lambda x, q, context=None: torch.full((1, 16, 4, 6), float("nan"))
    with pytest.raises(NonFiniteLatents, match="frame 0: .*non-finite"):
        codec.Encoder(model, io.BytesIO(), 48, 32).encode(frames[0])


def _coded(model, frames, **options) -> tuple:
    """frames coded without scene cuts -> (the encoder's pictures, the stream's reader, its packets)."""
    h, w = frames[0].shape[:2]
    sink = io.BytesIO()
    encoder = codec.Encoder(model, sink, w, h, scene_cuts=False, **options)
    recon = [encoder.encode(f).recon for f in frames]
    encoder.close()
    reader = codec.open_stream(io.BytesIO(sink.getvalue()))
    return recon, reader, list(reader)


@pytest.mark.parametrize("quality,cycle,levels", [(5, (-1, 0), [4, 5, 4, 4]), (10, (1, -2), [10, 8, 10, 10]),
                                                 (1, (-1,), [1, 1, 1, 1])])
def test_level_cycle_codes_p_frames_at_levels_by_their_place_in_the_group(tiny_rt_residual_model_path, quality,
                                                                          cycle, levels):
    """The k-th P-frame after an I-frame is coded at quality + cycle[k % len], within the model's
    levels, the count starting again at each I-frame; each packet names its level and the decoder's
    pictures are the encoder's."""
    model = load_model(tiny_rt_residual_model_path)
    recon, reader, packets = _coded(model, moving_pattern(6, 32, 48), quality=quality, intra_period=4,
                                    level_cycle=cycle)
    inter = [p.quality for p in packets if p.frame_type == bs.FrameType.INTER]
    assert [p.frame_type for p in packets].count(bs.FrameType.INTRA) == 2
    assert inter == levels and packets[0].quality == packets[4].quality == quality
    decoder = codec.Decoder(model, reader.header)
    assert all(np.array_equal(decoder.decode(p), r) for p, r in zip(packets, recon, strict=True))


def test_level_cycle_needs_a_model_with_levels(tiny_model_path):
    with pytest.raises(ValueError, match="level_cycle"):
        codec.Encoder(load_model(tiny_model_path), io.BytesIO(), 48, 32, level_cycle=(-1, 0))


@pytest.mark.parametrize("quality,boost,intra_level", [(5, 2, 7), (9, 3, 10), (5, 0, 5)])
def test_intra_boost_codes_i_frames_levels_above_the_p_frames(tiny_rt_residual_model_path, quality, boost,
                                                              intra_level):
    """Each packet names its level: I-frames at quality + boost (capped at the model's top level),
    P-frames at the stream's; the decoder's pictures are the encoder's."""
    model = load_model(tiny_rt_residual_model_path)
    frames = moving_pattern(5, 32, 48)
    recon, reader, packets = _coded(model, frames, quality=quality, intra_period=3, intra_boost=boost)
    assert reader.header.quality == quality
    assert [(p.frame_type, p.quality) for p in packets] == [
        (bs.FrameType.INTRA, intra_level), (bs.FrameType.INTER, quality), (bs.FrameType.INTER, quality),
        (bs.FrameType.INTRA, intra_level), (bs.FrameType.INTER, quality)]
    decoder = codec.Decoder(model, reader.header)
    assert all(np.array_equal(decoder.decode(p), r) for p, r in zip(packets, recon, strict=True))
    plain_sink = io.BytesIO()
    plain = codec.Encoder(model, plain_sink, 48, 32, quality=quality, intra_period=3, scene_cuts=False)
    plain.encode(frames[0])
    plain.close()
    plain_intra = next(iter(codec.open_stream(io.BytesIO(plain_sink.getvalue()))))
    assert (plain_intra.payload == packets[0].payload) == (intra_level == quality)
    with pytest.raises(ValueError, match="intra_boost"):
        codec.Encoder(model, io.BytesIO(), 48, 32, intra_boost=-1)

