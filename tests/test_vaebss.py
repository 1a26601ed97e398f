"""VAE-BSS: the loss, mixture consistency (chunked too), counting and grouping sources, training, errors."""

import argparse
import json

import numpy as np
import pytest
import torch

from mss_helpers import vaebss as vb
from mss_helpers.config import VAEBSSConfig, get_config
from mss_helpers.errors import ConfigError, RunNotFoundError

# --- the loss ------------------------------------------------------------------------------


def _loss_by_loops(mix, sources, mean, logvar, beta):
    """The negative ELBO per bin by explicit loops over every index (float64)."""
    mix, sources, mean, logvar = (t.double().numpy() for t in (mix, sources, mean, logvar))
    B, K, F, T = sources.shape
    D = mean.shape[-1]
    total = 0.0
    for b in range(B):
        for t in range(T):
            frame = 0.0
            for f in range(F):
                frame += abs(mix[b, f, t] - sum(sources[b, k, f, t] for k in range(K)))
            for k in range(K):
                for d in range(D):
                    m, lv = mean[b, k, t, d], logvar[b, k, t, d]
                    frame += beta * 0.5 * (m * m + np.exp(lv) - 1.0 - lv)
            total += frame
    return total / (B * T) / F


@pytest.mark.parametrize("K,D", [(1, 1), (3, 2), (4, 5)])
def test_loss_matches_brute_force(K, D):
    g = torch.Generator().manual_seed(K * 10 + D)
    B, F, T = 2, 5, 3
    mix = torch.rand(B, F, T, generator=g) * 3
    sources = torch.rand(B, K, F, T, generator=g)
    mean, logvar = torch.randn(B, K, T, D, generator=g), torch.randn(B, K, T, D, generator=g)
    loss, terms = vb.vaebss_loss(mix, sources, mean, logvar, beta=0.7)
    assert float(loss) == pytest.approx(_loss_by_loops(mix, sources, mean, logvar, 0.7), rel=1e-5)
    assert terms["l1"] == pytest.approx(_loss_by_loops(mix, sources, mean, logvar, 0.0), rel=1e-5)


def test_loss_known_answers():
    B, K, F, T, D = 1, 3, 4, 2, 6
    sources = torch.rand(B, K, F, T)
    zeros = torch.zeros(B, K, T, D)
    loss, terms = vb.vaebss_loss(sources.sum(1), sources, zeros, zeros, beta=1.0)
    assert float(loss) == 0.0 and terms["l1"] == 0.0 and terms["kl"] == 0.0  # exact fit, posterior = prior
    # a unit shift of every posterior mean costs 0.5 nat per dimension: K * D / 2 per frame
    _, terms = vb.vaebss_loss(sources.sum(1), sources, zeros + 1, zeros, beta=1.0)
    assert terms["kl"] == pytest.approx(K * D / 2)
    # one source holding all the energy is one active source
    one = torch.zeros(B, K, F, T)
    one[:, 1] = 1.0
    _, terms = vb.vaebss_loss(one.sum(1), one, zeros, zeros, beta=1.0)
    assert terms["active"] == 1.0


def test_kl_warm_up_ramps_to_beta():
    v = VAEBSSConfig(beta=2.0, kl_warmup_steps=100)
    assert vb.kl_weight(v, 0) == 0.0
    assert vb.kl_weight(v, 50) == pytest.approx(1.0)
    assert vb.kl_weight(v, 100) == vb.kl_weight(v, 10_000) == vb.kl_weight(v, None) == 2.0


def test_loss_has_gradients_through_encoder_and_decoder():
    cfg = get_config("tiny")
    torch.manual_seed(0)
    model = vb.VAEBSS(cfg.vaebss)
    loss, _ = vb.vaebss_loss_fn(cfg)(model, 0.1 * torch.randn(2, 1, 4000), step=10)
    loss.backward()
    for part in (model.inp, model.rnn, model.posterior, model.decoder):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


# --- mixture consistency ---------------------------------------------------------------------


def _relative_error(est_sum, x):
    return float(np.linalg.norm(est_sum - x) / np.linalg.norm(x))


@pytest.mark.parametrize("channels", [1, 2])
def test_masked_sources_sum_to_the_input(channels):
    cfg = get_config("tiny")
    torch.manual_seed(0)
    model = vb.VAEBSS(cfg.vaebss).eval()
    x = 0.1 * torch.randn(2, channels, 3000)
    x[1] *= 1e-3  # a quiet example: the masks do not depend on the level
    with torch.no_grad():
        y = model.separate(x)
    assert y.shape == (2, cfg.vaebss.n_sources, channels, 3000)
    for b in range(2):
        assert _relative_error(y[b].sum(0).numpy(), x[b].numpy()) < 1e-4
    assert y.abs().amax(dim=(0, 2, 3)).min() > 0  # every source carries something before training
    m = model.masks(model.stft(x).abs().mean(dim=1))
    assert torch.allclose(m.sum(1), torch.ones(()), atol=1e-6) and (m >= 0).all()


def test_chunked_separation_sums_to_the_input_and_keeps_source_identity():
    cfg = get_config("tiny")  # chunks of 2 s overlapping by 0.5 s
    torch.manual_seed(0)
    model = vb.VAEBSS(cfg.vaebss).eval()
    rate = cfg.data.sample_rate
    t = np.arange(int(7.3 * rate)) / rate  # three full chunks and a tail
    noise = np.random.default_rng(0).standard_normal(len(t))
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise])
    x = x.astype(np.float32)
    chunked = vb.separate_vaebss(model, x, cfg)
    whole = vb.separate_vaebss(model, x, cfg.replace(vaebss={"chunk_s": 60.0}))
    assert chunked.shape == whole.shape == (cfg.vaebss.n_sources, 1, x.shape[1])
    assert chunked.dtype == np.float32
    assert _relative_error(chunked.sum(0), x) < 1e-4 and _relative_error(whole.sum(0), x) < 1e-4
    # source k of every chunk is source k of the whole pass (same network, same index): a stationary
    # input gives each source the same share in both, up to the BLSTM's context at chunk borders
    for k in range(cfg.vaebss.n_sources):
        assert np.mean((chunked[k] - whole[k]) ** 2) < 0.1 * np.mean(whole[k] ** 2) + 1e-12


def test_separation_rejects_audio_shorter_than_half_a_frame():
    cfg = get_config("tiny")
    model = vb.VAEBSS(cfg.vaebss).eval()
    with pytest.raises(ValueError, match="shorter than half an STFT frame"):
        vb.separate_vaebss(model, np.zeros((1, 50), np.float32), cfg)


# --- counting and grouping -------------------------------------------------------------------


def test_active_sources_by_energy_floor():
    sources = np.zeros((4, 1, 100), np.float32)
    sources[0] = 1.0  # 0 dB
    sources[1] = 0.1  # -20 dB
    sources[2] = 0.01  # -40 dB; source 3 silent
    assert vb.active_sources(sources, -25.0).tolist() == [True, True, False, False]
    assert vb.active_sources(sources, -45.0).tolist() == [True, True, True, False]
    assert not vb.active_sources(np.zeros((3, 2, 10)), -25.0).any()


def _split_instruments(rate=16000, seconds=2.0):
    """Three instruments of different spectra; two are split into a loud and a quieter copy of themselves.

    Sources, loudest first but for the copies: [b, c, a, 0.35 a (with another phase), 0.3 b (delayed by
    1 ms)]; the copies are quieter than any original. The truth is the groups {0, 4}, {1}, {2, 3}.
    """
    t = np.arange(int(rate * seconds)) / rate
    saw = sum(np.sin(2 * np.pi * h * 220 * t) / h for h in range(1, 8))
    saw_shift = sum(np.sin(2 * np.pi * h * 220 * t + h) / h for h in range(1, 8))
    bell = np.sin(2 * np.pi * 1500 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    noise = np.random.default_rng(0).standard_normal(len(t))
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")
    b, a = 1.3 * bell, 0.5 * saw
    sources = np.stack([b, noise, a, 0.35 * 0.5 * saw_shift, 0.3 * np.roll(b, 16)])
    return sources[:, None].astype(np.float32)


def test_group_sources_joins_each_quiet_source_to_the_seed_it_sounds_like():
    sources = _split_instruments()
    assert np.argsort(-vb.source_energies(sources)).tolist() == [0, 1, 2, 4, 3]  # the copies are not seeds
    groups = vb.group_sources(sources, 3)
    assert groups.shape == (3, 1, sources.shape[-1]) and groups.dtype == np.float32
    np.testing.assert_allclose(groups.sum(0), sources.sum(0), atol=1e-5)
    np.testing.assert_allclose(groups[0], sources[0] + sources[4], atol=1e-6)  # b with its quiet copy
    np.testing.assert_allclose(groups[1], sources[1], atol=1e-6)
    np.testing.assert_allclose(groups[2], sources[2] + sources[3], atol=1e-6)  # a with its phase-shifted copy


def test_group_sources_edge_cases():
    sources = _split_instruments()
    np.testing.assert_array_equal(vb.group_sources(sources, 5), sources)
    np.testing.assert_array_equal(vb.group_sources(sources, 9), sources)  # k > K: nothing to merge
    one = vb.group_sources(sources, 1)
    assert one.shape == (1, 1, sources.shape[-1])
    np.testing.assert_allclose(one[0], sources.sum(0), atol=1e-5)
    silent = np.concatenate([sources, np.zeros_like(sources[:1])])
    np.testing.assert_allclose(vb.group_sources(silent, 3), vb.group_sources(sources, 3), atol=1e-6)
    with pytest.raises(ConfigError, match="k must be at least 1"):
        vb.group_sources(sources, 0)


# --- training --------------------------------------------------------------------------------


def test_training_never_reads_the_instrument_stems(tiny_cfg, stemless_root, tmp_path):
    """Train on a copy of the tiny set without other_stems/, and spy on every file read."""
    root, read = stemless_root
    run_dir = vb.train_vaebss(tiny_cfg, root=root, run_dir=tmp_path / "run", progress=False)
    assert (run_dir / "done.json").is_file()
    assert read and all(p.endswith("other.wav") for p in read), read
    assert not any("other_stems" in p for p in read)


def test_train_resume_cache_and_separate(tiny_cfg, tiny_root, tmp_path):
    from mss_helpers import datasets

    one = tiny_cfg.replace(vaebss={"epochs": 1})
    run_dir = vb.train_vaebss(one, root=tiny_root, run_dir=tmp_path / "r", progress=False)
    assert json.loads((run_dir / "done.json").read_text())["epochs"] == 1
    (run_dir / "done.json").unlink()
    vb.train_vaebss(tiny_cfg, root=tiny_root, run_dir=run_dir, resume=True, progress=False)
    hist = json.loads((run_dir / "history.json").read_text())
    steps = tiny_cfg.vaebss.steps_per_epoch
    assert [e["step"] for e in hist["epochs"]] == [steps, 2 * steps]
    assert {"l1", "kl", "active"} <= set(hist["epochs"][0]["train"]) and np.isfinite(hist["best_val"])
    mtime = (run_dir / "last.pt").stat().st_mtime_ns
    vb.train_vaebss(tiny_cfg, root=tiny_root, run_dir=run_dir, progress=False)  # finished: a cache
    assert (run_dir / "last.pt").stat().st_mtime_ns == mtime
    model = vb.load_vaebss(tiny_cfg, run_dir)
    assert isinstance(model, vb.VAEBSS) and not model.training
    track = datasets.load_tracks(tiny_root, "test")[0]
    x = datasets.input_audio(track, tiny_cfg)
    est = vb.separate_vaebss(model, x, tiny_cfg)
    assert est.shape == (tiny_cfg.vaebss.n_sources, *x.shape) and est.dtype == np.float32
    assert _relative_error(est.sum(0), x) < 1e-4
    n = len(track.other_stems(rate=tiny_cfg.data.sample_rate, channels=tiny_cfg.data.channels))
    assert vb.group_sources(est, n).shape == (n, *x.shape)


def test_default_run_dir_is_keyed_by_config_and_data(tiny_cfg, tiny_root, tmp_path):
    a = vb.vaebss_run_dir(tiny_cfg)
    assert a.name.startswith("vaebss_tiny_")
    assert vb.vaebss_run_dir(tiny_cfg.replace(vaebss={"beta": 0.5})) != a
    assert vb.vaebss_run_dir(tiny_cfg.replace(vaebss={"max_minutes": 1.0})) == a  # a safety net only
    assert vb.vaebss_run_dir(tiny_cfg.replace(data={"source": "unmix"})) == a
    assert vb.vaebss_run_dir(tiny_cfg, root=tmp_path) != a  # another root: another run


def test_unknown_learning_rate_schedule_is_a_clear_error(tiny_cfg, tiny_root, tmp_path):
    with pytest.raises(ConfigError, match="lr_schedule must be one of"):
        vb.train_vaebss(tiny_cfg.replace(vaebss={"lr_schedule": "sometimes"}), root=tiny_root,
                        run_dir=tmp_path / "r", progress=False)


def test_untrained_model_is_a_clear_error(tiny_cfg, tmp_path):
    with pytest.raises(RunNotFoundError, match="train-vaebss --preset tiny"):
        vb.load_vaebss(tiny_cfg, tmp_path / "nothing")


def test_command_trains_into_the_run_dir_and_checks_its_options(tiny_cfg, tiny_root, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    vb.add_arguments(parser)
    run_dir = tmp_path / "cli"
    args = parser.parse_args(["--preset", "tiny", "--root", str(tiny_root), "--run-dir", str(run_dir),
                              "--sources", "3"])
    assert vb.run(args) == 0
    assert f"run: {run_dir}" in capsys.readouterr().out
    assert vb.load_vaebss(tiny_cfg, run_dir).n_sources == 3  # the run's own config, not the preset's
    with pytest.raises(ConfigError, match="--sources"):
        vb.run(parser.parse_args(["--preset", "tiny", "--sources", "0"]))
