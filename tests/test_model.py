"""SEANetVAE: shapes, lengths, chunked whole-track helpers, loading a run."""

import numpy as np
import pytest
import torch

from mss_helpers.config import ModelConfig, get_config
from mss_helpers.model import SEANetVAE, decode_frames, describe, encode_audio, reconstruct

TINY = ModelConfig(n_filters=4, ratios=(4, 4, 2), latent_dim=8, lstm=0, encoder_dim=16)


def make_model(channels=1, rate=8000, cfg=TINY):
    torch.manual_seed(0)
    return SEANetVAE(cfg, channels, rate).eval()


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("length", [1, 31, 32, 33, 1001])
def test_forward_keeps_shape_for_any_length(channels, length):
    model = make_model(channels)
    x = torch.randn(2, channels, length)
    recon, mean, logvar = model(x)
    frames = -(-length // 32)  # ceil(length / hop)
    assert recon.shape == x.shape
    assert mean.shape == logvar.shape == (2, 8, frames)
    assert model.encode(x).shape == (2, 8, frames)
    assert model.decode(mean).shape == (2, channels, frames * 32)
    assert model.decode(mean, length=length).shape == x.shape


def test_sizes_and_compression():
    model = make_model(rate=8000)
    assert model.hop_length == 32
    assert model.frame_rate == pytest.approx(250.0)
    # 8000 samples/s vs 250 frames/s x 8 values = 2000 values/s -> 4x
    assert model.compression_ratio == pytest.approx(4.0)
    d = describe(get_config("tiny"))
    assert d["hop"] == 32 and d["params"] > 0 and d["compression"] > 0


def test_training_mode_samples_and_eval_mode_uses_mean():
    model = make_model()
    x = torch.randn(1, 1, 256)
    with torch.no_grad():
        a, b = model(x)[0], model(x)[0]
        assert torch.equal(a, b)  # eval: deterministic, decodes the mean
        assert torch.allclose(a, model.decode(model.encode(x), length=256))
        model.train()
        c, d = model(x)[0], model(x)[0]
    assert not torch.equal(c, d)


def test_bad_shapes_raise():
    model = make_model()
    with pytest.raises(ValueError, match="channels|shape"):
        model(torch.randn(1, 2, 100))
    with pytest.raises(ValueError, match="latent"):
        model.decode(torch.randn(1, 3, 10))
    with pytest.raises(ValueError):
        encode_audio(model, np.zeros((2, 100), np.float32))


def test_chunked_equals_unchunked_away_from_edges():
    model = make_model(rate=8000)
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal((1, 8000 * 3 + 17))).astype(np.float32)
    with torch.no_grad():
        full = model.encode(torch.from_numpy(audio[None]))[0].numpy().T  # (frames, latent)
        full_audio = model.decode(torch.from_numpy(full.T[None].copy()), length=audio.shape[1])[0].numpy()
    frames = encode_audio(model, audio, chunk_s=0.5, context_s=0.25)
    assert frames.shape == full.shape == (-(-audio.shape[1] // 32), 8)
    np.testing.assert_allclose(frames, full, atol=1e-4)
    out = decode_frames(model, frames, length=audio.shape[1], chunk_s=0.5, context_s=0.25)
    assert out.shape == audio.shape
    np.testing.assert_allclose(out, full_audio, atol=1e-4)
    np.testing.assert_allclose(reconstruct(model, audio, chunk_s=0.5), full_audio, atol=1e-3)


def test_chunking_without_context_differs_at_borders():
    # Guards the test above: with no context the chunk borders really change the result.
    model = make_model(rate=8000)
    audio = (0.3 * np.random.default_rng(1).standard_normal((1, 8000 * 2))).astype(np.float32)
    with torch.no_grad():
        full = model.encode(torch.from_numpy(audio[None]))[0].numpy().T
    frames = encode_audio(model, audio, chunk_s=0.5, context_s=0.0)
    assert np.abs(frames - full).max() > 1e-3


def test_logvar_init_starts_a_nearly_deterministic_posterior():
    import dataclasses

    x = torch.randn(2, 1, 512)
    default = make_model().posterior(x)[1]
    assert float(default.abs().max()) < 5  # PyTorch's init: log-variance near 0, unit-variance noise
    model = make_model(cfg=dataclasses.replace(TINY, logvar_init=-10.0))
    logvar = model.posterior(x)[1]
    torch.testing.assert_close(logvar, torch.full_like(logvar, -10.0))  # for every input, until trained
    model.train()
    torch.manual_seed(1)
    recon_a = model(x)[0]
    torch.manual_seed(2)
    recon_b = model(x)[0]  # a different noise draw changes the output by almost nothing
    assert float((recon_a - recon_b).abs().max()) < 1e-2 * float(recon_a.abs().max())
