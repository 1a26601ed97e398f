"""MixIT separator: the loss, mixture consistency, the stem-free loader, training, grouping, errors."""

import json

import numpy as np
import pytest
import torch

from mss_helpers import mixit_data as md
from mss_helpers import separator as sp
from mss_helpers import separator_group as sg
from mss_helpers.config import get_config
from mss_helpers.errors import RunNotFoundError


# --- the loss ------------------------------------------------------------------------------


@pytest.mark.parametrize("M", [2, 4, 6])
def test_gram_loss_matches_brute_force(M):
    g = torch.Generator().manual_seed(M)
    outputs = torch.randn(3, M, 1, 400, generator=g)
    mixtures = torch.randn(3, 2, 1, 400, generator=g)
    # make the mixtures partly explainable so the best partition is not arbitrary
    mixtures[:, 0] += outputs[:, : M // 2].sum(1)
    loss, assign = sp.mixit_loss(outputs, mixtures, 30.0)
    ref, ref_assign = sp.mixit_loss_bruteforce(outputs, mixtures, 30.0)
    assert float(loss) == pytest.approx(float(ref), abs=1e-6)
    assert torch.equal(assign, ref_assign.to(assign.dtype))


def test_loss_finds_the_true_partition_and_caps_at_the_threshold():
    torch.manual_seed(0)
    s = torch.randn(2, 5, 1, 1000)
    truth = torch.tensor([[1, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.float32)
    y1 = torch.einsum("bm,bmct->bct", truth, s)
    y2 = torch.einsum("bm,bmct->bct", 1 - truth, s)
    loss, assign = sp.mixit_loss(s, torch.stack([y1, y2], 1), snr_max_db=30.0)
    assert torch.equal(assign, truth)
    assert float(loss) == pytest.approx(-60.0, abs=0.01)  # two mixtures, each capped at 30 dB
    wrong, _ = sp.mixit_loss(s, torch.stack([y2 + 0.5 * y1, y1], 1), snr_max_db=30.0)
    assert float(wrong) > float(loss) + 10


def test_loss_has_gradients():
    out = torch.randn(2, 3, 1, 200, requires_grad=True)
    loss, _ = sp.mixit_loss(out, torch.randn(2, 2, 1, 200))
    loss.backward()
    assert out.grad is not None and torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


# --- the network -----------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_outputs_sum_to_the_input(channels):
    cfg = get_config("tiny")
    torch.manual_seed(0)
    model = sp.MixITSeparator(cfg.separator).eval()
    x = 0.1 * torch.randn(2, channels, 3000)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, cfg.separator.n_outputs, channels, 3000)
    assert torch.allclose(y.sum(1), x, atol=1e-5)
    assert y.abs().amax(dim=(0, 2, 3)).min() > 0  # every output carries something before training


def test_chunked_separation_sums_to_input_and_matches_one_pass():
    cfg = get_config("tiny")
    torch.manual_seed(0)
    model = sp.MixITSeparator(cfg.separator).eval()
    x = (0.1 * np.random.default_rng(0).standard_normal((1, 16000 * 5))).astype(np.float32)
    whole = sp.separate_outputs(model, x, chunk_s=10.0, overlap_s=1.0, rate=16000)
    chunked = sp.separate_outputs(model, x, chunk_s=2.0, overlap_s=0.5, rate=16000)
    assert chunked.shape == whole.shape == (cfg.separator.n_outputs, 1, x.shape[1])
    np.testing.assert_allclose(chunked.sum(0), x, atol=1e-4)
    # away from chunk borders the chunked outputs agree with the one-pass ones up to the BLSTM's context
    assert np.mean((chunked - whole) ** 2) < 0.5 * np.mean(whole ** 2)


# --- training data ---------------------------------------------------------------------------


def test_pairs_come_from_two_different_tracks():
    levels = [1.0, 10.0, 100.0]  # +-5 dB gains keep the tracks' levels apart
    audio = [np.full((1, 500), v, dtype=np.float32) for v in levels]
    ds = md.MixtureOfMixtures(audio, clip=100, n_items=50, seed=0, gain_db=5.0)
    for i in range(50):
        pair = ds[i].numpy()
        assert pair.shape == (2, 1, 100)
        tracks = [int(np.argmin([abs(np.log10(p[0, 0] / v)) for v in levels])) for p in pair]
        assert tracks[0] != tracks[1]
    with pytest.raises(ValueError, match="two different tracks"):
        md.MixtureOfMixtures(audio[:1], clip=100, n_items=1)


def test_disjoint_pairing_pairs_only_allowed_partners_and_fails_clearly():
    levels = [1.0, 10.0, 100.0, 1000.0]
    audio = [np.full((1, 500), v, dtype=np.float32) for v in levels]
    partners = [[2], [], [0, 3], [2]]  # track 1 has no partner: it is never drawn
    ds = md.MixtureOfMixtures(audio, clip=100, n_items=60, seed=0, gain_db=5.0, partners=partners)
    seen = set()
    for i in range(60):
        pair = ds[i].numpy()
        a, b = (int(np.argmin([abs(np.log10(p[0, 0] / v)) for v in levels])) for p in pair)
        assert b in partners[a]
        seen.add((a, b))
    assert seen == {(0, 2), (2, 0), (2, 3), (3, 2)}
    with pytest.raises(ValueError, match="two different tracks"):
        md.MixtureOfMixtures(audio, clip=100, n_items=1, partners=[[0], [], [], []])

    class T:
        def __init__(self, *names):
            self.instruments = list(names)

    assert md.pairing_partners([T("piano"), T("guitar")], "any") is None
    assert md.pairing_partners([T("piano", "strings"), T("guitar"), T("strings")], "disjoint") == [[1], [0, 2], [1]]
    from mss_helpers.errors import ConfigError

    with pytest.raises(ConfigError, match="no two training tracks"):
        md.pairing_partners([T("piano"), T("piano", "organ")], "disjoint")
    with pytest.raises(ConfigError, match="instrument names"):
        md.pairing_partners([T("piano"), T()], "disjoint")
    with pytest.raises(ConfigError, match="'any' or 'disjoint'"):
        md.pairing_partners([T("piano"), T("organ")], "sometimes")


def test_training_never_reads_the_instrument_stems(tiny_cfg, stemless_root, tmp_path):
    """Train on a copy of the tiny set without other_stems/, and spy on every file read."""
    root, read = stemless_root
    run_dir = sp.train_separator(tiny_cfg, root=root, run_dir=tmp_path / "run", progress=False)
    assert (run_dir / "done.json").is_file()
    assert read and all(p.endswith("other.wav") for p in read), read
    assert not any("other_stems" in p for p in read)


def test_train_resume_and_cache(tiny_cfg, tiny_root, tmp_path):
    one = tiny_cfg.replace(separator={"epochs": 1})
    run_dir = sp.train_separator(one, root=tiny_root, run_dir=tmp_path / "r", progress=False)
    assert json.loads((run_dir / "done.json").read_text())["epochs"] == 1
    (run_dir / "done.json").unlink()
    sp.train_separator(tiny_cfg, root=tiny_root, run_dir=run_dir, resume=True, progress=False)
    hist = json.loads((run_dir / "history.json").read_text())
    steps = tiny_cfg.separator.steps_per_epoch
    assert [e["step"] for e in hist["epochs"]] == [steps, 2 * steps]
    assert {"neg_snr", "active"} <= set(hist["epochs"][0]["train"])
    mtime = (run_dir / "best.pt").stat().st_mtime_ns
    sp.train_separator(tiny_cfg, root=tiny_root, run_dir=run_dir, progress=False)  # finished: a cache
    assert (run_dir / "best.pt").stat().st_mtime_ns == mtime
    model = sp.load_separator(tiny_cfg, run_dir)
    assert isinstance(model, sp.MixITSeparator) and not model.training


def test_oracle_mixture_snr_is_high_for_disjoint_mixtures_and_finite_on_real_ones(tiny_cfg, tiny_root,
                                                                                 monkeypatch):
    snr = md.oracle_mixture_snr_db(tiny_cfg, tiny_root)
    assert np.isfinite(snr) and snr > 0
    # two sines far apart in frequency: the ratio mask splits them almost perfectly
    t = np.arange(int(tiny_cfg.separator.clip_s * tiny_cfg.data.sample_rate)) / tiny_cfg.data.sample_rate
    pair = torch.tensor(np.stack([np.sin(2 * np.pi * 300 * t), 0.5 * np.sin(2 * np.pi * 3000 * t)]),
                        dtype=torch.float32)[:, None]
    monkeypatch.setattr(md, "loaders", lambda cfg, root: (None, [pair[None]]))
    assert md.oracle_mixture_snr_db(tiny_cfg, tiny_root) > 25


def test_unknown_learning_rate_schedule_is_a_clear_error(tiny_cfg, tiny_root, tmp_path):
    from mss_helpers.errors import ConfigError

    with pytest.raises(ConfigError, match="lr_schedule must be one of"):
        sp.train_separator(tiny_cfg.replace(separator={"lr_schedule": "sometimes"}), root=tiny_root,
                           run_dir=tmp_path / "r", progress=False)


def test_untrained_separator_is_a_clear_error(tiny_cfg, tmp_path):
    with pytest.raises(RunNotFoundError, match="train-separator --preset tiny"):
        sp.load_separator(tiny_cfg, tmp_path / "nothing")


def test_cli_evaluate_mixit_untrained_is_one_line(tiny_cfg, tiny_root, tiny_run, tmp_path, monkeypatch,
                                                  capsys):
    from mss_helpers import cli

    monkeypatch.setattr(sp, "separator_run_dir", lambda cfg: tmp_path / "missing")
    code = cli.main(["evaluate", "--preset", "tiny", "--root", str(tiny_root), "--run", str(tiny_run),
                     "--methods", "mixture,mixit", "--k", "n", "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err
    assert "python -m mss_helpers train-separator --preset tiny" in err


# --- grouping --------------------------------------------------------------------------------


def _synthetic_outputs(rate=16000, seconds=4.0):
    """Three instruments of clearly different timbre, each spread over two outputs (by time)."""
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    saw = lambda f: sum(np.sin(2 * np.pi * h * f * t) / h for h in range(1, 15))  # noqa: E731
    sine = lambda f: np.sin(2 * np.pi * f * t)  # noqa: E731
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(3) / 3, mode="same")
    sources = {"saw": (saw(110.0), saw(131.0)), "sine": (sine(1760.0), sine(1975.0)),
               "noise": (noise, rng.standard_normal(len(t)))}
    half = len(t) // 2
    gate = [np.r_[np.ones(half), np.zeros(len(t) - half)], np.r_[np.zeros(half), np.ones(len(t) - half)]]
    outputs, truth, refs = [], [], {}
    for j, (name, (a, b)) in enumerate(sources.items()):
        parts = [0.1 * a * gate[0], 0.1 * b * gate[1]]
        refs[name] = (parts[0] + parts[1])[None].astype(np.float32)
        for p in parts:
            outputs.append(p[None].astype(np.float32))
            truth.append(j)
    order = rng.permutation(len(outputs))
    return np.stack(outputs)[order], np.array(truth)[order], refs


def _same_partition(a, b) -> bool:
    return all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


def test_feature_grouping_puts_one_instruments_outputs_together():
    outputs, truth, refs = _synthetic_outputs()
    F = sg.spectral_features(outputs, 16000)
    active = sg.active_outputs(outputs, -25.0)
    assert active.all()
    labels = sg.group_outputs(F, active, 3)
    assert _same_partition(labels, truth)
    auto = sg.group_outputs(F, active, None, k_range=(2, 5))
    assert len(set(auto)) == 3 and _same_partition(auto, truth)
    est = sg.grouped_estimates(outputs, labels)
    np.testing.assert_allclose(np.sum(est, axis=0), outputs.sum(0), atol=1e-5)


def _notes(rate, onsets, f0, seconds=3.0):
    """Decaying tones of frequency ``f0`` starting at ``onsets`` (seconds): ``(1, S)``."""
    t = np.arange(int(seconds * rate)) / rate
    y = np.zeros_like(t)
    for o in onsets:
        on = t >= o
        y[on] += np.sin(2 * np.pi * f0 * (t[on] - o)) * np.exp(-6 * (t[on] - o))
    return y[None].astype(np.float32)


def test_envelope_grouping_joins_outputs_whose_notes_start_together():
    rate = 16000
    a, b = [0.1, 0.9, 1.7, 2.3], [0.5, 1.3, 2.0, 2.6]  # two instruments, different rhythms
    # instrument A split into a low and a high output (same onsets), instrument B likewise
    outputs = np.stack([_notes(rate, a, 220), _notes(rate, a, 1760), _notes(rate, b, 330), _notes(rate, b, 2640)])
    E = sg.envelope_features(outputs, rate)
    assert E.shape[0] == 4
    np.testing.assert_allclose(E.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1, atol=1e-9)
    assert E[0] @ E[1] > 0.5 and E[0] @ E[2] < 0.2  # correlation of the envelopes
    labels = sg.group_outputs(E, np.ones(4, dtype=bool), 2, standardise=False)
    assert _same_partition(labels, np.array([0, 0, 1, 1]))


def test_train_tracks_limits_the_training_set_and_is_checked(tiny_cfg, tiny_root):
    from mss_helpers.errors import ConfigError

    full, _ = md.loaders(tiny_cfg, tiny_root)
    two, _ = md.loaders(tiny_cfg.replace(separator={"train_tracks": 2}), tiny_root)
    assert len(two.dataset.audio) == 2 < len(full.dataset.audio)
    with pytest.raises(ConfigError, match="train_tracks"):
        md.loaders(tiny_cfg.replace(separator={"train_tracks": 1}), tiny_root)


def test_oracle_grouping_and_quiet_outputs():
    outputs, truth, refs = _synthetic_outputs()
    assert np.array_equal(sg.oracle_groups(outputs, refs), truth)
    quiet = np.concatenate([outputs, 1e-4 * outputs[:1]])  # a near-silent 7th output
    active = sg.active_outputs(quiet, -25.0)
    assert active.sum() == 6 and not active[-1]
    labels = sg.group_outputs(sg.spectral_features(quiet, 16000), active, 3)
    assert len(set(labels)) == 3 and labels[-1] == labels[0]  # joins its loud twin's group


def test_mixit_settings_on_a_tiny_track(tiny_cfg, tiny_root, tiny_run, tmp_path):
    from mss_helpers import datasets
    from mss_helpers.model import load_model

    run_dir = sp.train_separator(tiny_cfg, root=tiny_root, run_dir=tmp_path / "sep", progress=False)
    model = sp.load_separator(tiny_cfg, run_dir)
    vae, _ = load_model(tiny_run)
    track = datasets.load_tracks(tiny_root, "test")[0]
    x = datasets.input_audio(track, tiny_cfg)
    refs = track.other_stems(rate=tiny_cfg.data.sample_rate, channels=1)
    settings = list(sg.mixit_settings(x, refs, [2, "n"], tiny_cfg, model, vae=vae))
    keys = {(s["decoding"], s["k_label"]) for s in settings}
    M = tiny_cfg.separator.n_outputs
    assert ("ungrouped", str(M)) in keys and ("oracle-grouped", "n") in keys
    for d in ("latent-grouped", "feature-grouped", "envelope-grouped"):
        assert {(d, "2"), (d, "n"), (d, "auto")} <= keys
    for s in settings:
        assert s["method"] == "mixit" and s["k"] == len(s["estimates"]) >= 1
        np.testing.assert_allclose(np.sum(s["estimates"], axis=0), x, atol=2e-3)


def test_mixture_snr_db_is_the_per_mixture_snr_of_the_loss():
    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.standard_normal((1, 2, 1, 4000)))
    noise = torch.from_numpy(rng.standard_normal((1, 2, 1, 4000)))
    scale = y.pow(2).sum(-1, keepdim=True).sqrt() / noise.pow(2).sum(-1, keepdim=True).sqrt()
    noise = noise * scale * 10 ** (-10 / 20)
    loss, _ = sp.mixit_loss(y + noise, y, snr_max_db=80.0)  # each mixture re-built at 10 dB SNR
    history = {"epochs": [{"val": {"neg_snr": 0.0}}, {"val": {"neg_snr": float(loss)}}]}
    assert sp.mixture_snr_db(history) == pytest.approx(10.0, abs=0.01)
