"""Losses: known zeros, signs and the KL warm-up."""

import numpy as np
import pytest
import torch

from mss_helpers.config import TrainConfig
from mss_helpers.losses import (kl_divergence, kl_weight_at, mel_loss, neg_snr_db, stft_loss, vae_loss,
                                 waveform_mse)


def tone(freq, n=4096, rate=8000):
    t = torch.arange(n) / rate
    return torch.sin(2 * np.pi * freq * t).reshape(1, 1, n)


def test_kl_zero_for_standard_normal_and_positive_otherwise():
    zero = torch.zeros(2, 4, 10)
    assert float(kl_divergence(zero, zero)) == 0.0
    assert float(kl_divergence(zero + 1.0, zero)) == pytest.approx(0.5)  # 0.5 * mean^2
    assert float(kl_divergence(zero, zero + 1.0)) == pytest.approx(0.5 * (np.e - 2))
    assert float(kl_divergence(torch.randn(2, 4, 10), torch.randn(2, 4, 10))) > 0


def test_stft_loss_zero_for_identical_and_positive_for_different():
    x = tone(440)
    assert float(stft_loss(x, x, (128, 256))) == pytest.approx(0.0, abs=1e-6)
    assert float(stft_loss(tone(880), x, (128, 256))) > 1.0
    # a louder copy has a larger STFT distance than a nearly equal one
    assert float(stft_loss(2 * x, x, (128, 256))) > float(stft_loss(1.01 * x, x, (128, 256)))


def test_mse_and_mel():
    x = tone(440)
    assert float(waveform_mse(x, x)) == 0.0
    assert float(waveform_mse(x + 0.1, x)) == pytest.approx(0.01, rel=1e-4)
    assert float(mel_loss(x, x, 8000, n_fft=256, n_mels=16)) == pytest.approx(0.0, abs=1e-6)
    assert float(mel_loss(tone(1500), x, 8000, n_fft=256, n_mels=16)) > 1.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        stft_loss(torch.zeros(1, 1, 512), torch.zeros(1, 1, 600))
    with pytest.raises(ValueError, match="too short"):
        stft_loss(torch.zeros(1, 1, 100), torch.zeros(1, 1, 100), (1024,))


def test_kl_warmup_is_linear_then_fixed():
    tcfg = TrainConfig(kl_weight=0.1, kl_warmup_steps=10)
    assert kl_weight_at(0, tcfg) == 0.0
    assert kl_weight_at(5, tcfg) == pytest.approx(0.05)
    assert kl_weight_at(10, tcfg) == kl_weight_at(1000, tcfg) == kl_weight_at(None, tcfg) == pytest.approx(0.1)


def test_vae_loss_is_the_weighted_sum_of_its_terms():
    tcfg = TrainConfig(mse_weight=2.0, stft_weight=0.5, mel_weight=0.25, kl_weight=0.1, kl_warmup_steps=10,
                       stft_sizes=(128, 256))
    torch.manual_seed(0)
    x, recon = tone(440), tone(440) + 0.05 * torch.randn(1, 1, 4096)
    mean, logvar = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    total, terms = vae_loss(recon, x, mean, logvar, 5, tcfg, sample_rate=8000)
    assert set(terms) == {"mse", "stft", "kl", "mel", "kl_weight"}
    assert terms["kl_weight"] == pytest.approx(0.05)
    expected = 2.0 * terms["mse"] + 0.5 * terms["stft"] + 0.25 * terms["mel"] + 0.05 * terms["kl"]
    assert float(total) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="sample_rate"):
        vae_loss(recon, x, mean, logvar, 5, tcfg)


def test_neg_snr_db_is_minus_the_snr_of_each_clip():
    torch.manual_seed(0)
    x = torch.cat([tone(440), 0.01 * tone(660)])  # a loud and a quiet clip, (2, 1, 4096)
    assert float(neg_snr_db(torch.zeros_like(x), x)) == pytest.approx(0.0, abs=1e-4)
    assert float(neg_snr_db(x, x)) < -60
    noise = torch.randn_like(x)
    noise = noise / noise.pow(2).sum(-1, keepdim=True).sqrt() * x.pow(2).sum(-1, keepdim=True).sqrt()
    # noise at 20 dB below each clip's own energy: -20 dB for the quiet clip as for the loud one
    assert float(neg_snr_db(x + 0.1 * noise, x)) == pytest.approx(-20.0, abs=1e-3)
    with pytest.raises(ValueError, match="shape"):
        neg_snr_db(x[:1], x)


def test_snr_term_enters_the_total_only_when_weighted():
    tcfg = TrainConfig(mse_weight=0.0, stft_weight=1.0, snr_weight=0.5, kl_weight=0.0, stft_sizes=(128, 256))
    torch.manual_seed(0)
    x, recon = tone(440), tone(440) + 0.05 * torch.randn(1, 1, 4096)
    mean = logvar = torch.zeros(1, 4, 8)
    total, terms = vae_loss(recon, x, mean, logvar, None, tcfg)
    assert terms["neg_snr_db"] == pytest.approx(float(neg_snr_db(recon, x)), rel=1e-6)
    assert float(total) == pytest.approx(terms["stft"] + 0.5 * terms["neg_snr_db"], rel=1e-5)
    _, plain = vae_loss(recon, x, mean, logvar, None, TrainConfig(stft_sizes=(128, 256)))
    assert "neg_snr_db" not in plain


def test_unweighted_stft_term_is_reported_but_takes_no_gradient():
    tcfg = TrainConfig(mse_weight=1.0, stft_weight=0.0, kl_weight=0.0, stft_sizes=(128, 256))
    torch.manual_seed(0)
    x = tone(440)
    recon = (tone(440) + 0.05 * torch.randn(1, 1, 4096)).requires_grad_(True)
    mean = logvar = torch.zeros(1, 4, 8)
    total, terms = vae_loss(recon, x, mean, logvar, None, tcfg)
    assert terms["stft"] > 0  # still measured, for the history
    total.backward()
    expected = 2 * (recon.detach() - x) / x.numel()  # the gradient of the waveform MSE alone
    assert torch.allclose(recon.grad, expected, rtol=1e-4, atol=1e-9)
