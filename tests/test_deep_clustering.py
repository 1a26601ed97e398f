"""Deep clustering (the LABELLED reference): the loss, its labels, one k-means per track, training, errors."""

import argparse
import json

import numpy as np
import pytest
import torch

from mss_helpers import deep_clustering as dc
from mss_helpers.config import get_config
from mss_helpers.errors import AudioError, ConfigError, DataRootError, RunNotFoundError
from mss_helpers.separation_metrics import match_estimates

RATE = 16000


def affinity_loss_bruteforce(V, Y, weights=None):
    """Deep clustering's loss from the explicit ``(B, N, N)`` affinity matrices ``V V^T`` and ``Y Y^T``."""
    w = torch.ones(V.shape[:2], dtype=V.dtype) if weights is None else weights
    diff = V @ V.transpose(1, 2) - Y @ Y.transpose(1, 2)  # (B, N, N)
    total = (w[:, :, None] * w[:, None, :] * diff ** 2).sum((1, 2))
    return (total / w.sum(1) ** 2).mean()


# --- the loss ------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [None, "binary", "real"])
@pytest.mark.parametrize("N,D,K", [(7, 2, 2), (40, 5, 3), (64, 20, 5)])
def test_low_rank_loss_equals_the_affinity_matrix_norm(N, D, K, weights):
    g = torch.Generator().manual_seed(N + D + K)
    V = torch.nn.functional.normalize(torch.randn(3, N, D, generator=g, dtype=torch.float64), dim=-1)
    Y = torch.nn.functional.one_hot(torch.randint(0, K, (3, N), generator=g), K).double()
    w = {None: None, "binary": (torch.rand(3, N, generator=g) > 0.4).double(),
         "real": torch.rand(3, N, generator=g, dtype=torch.float64)}[weights]
    loss = dc.affinity_loss(V, Y, w)
    assert float(loss) == pytest.approx(float(affinity_loss_bruteforce(V, Y, w)), rel=1e-10)
    # and the brute force is what it says: sum_ij w_i w_j ((VV^T)_ij - (YY^T)_ij)^2 / (sum w)^2, by loops
    b, ww = 1, torch.ones(3, N, dtype=torch.float64) if w is None else w
    total = sum(float(ww[b, i] * ww[b, j] * (V[b, i] @ V[b, j] - Y[b, i] @ Y[b, j]) ** 2)
                for i in range(N) for j in range(N))
    one = dc.affinity_loss(V[b:b + 1], Y[b:b + 1], None if w is None else w[b:b + 1])
    assert float(one) == pytest.approx(total / float(ww[b].sum()) ** 2, rel=1e-10)


def test_loss_is_zero_for_the_ideal_embedding_and_ignores_silent_bins():
    labels = torch.tensor([[0, 1, 1, 2, 0, 2]])
    Y = torch.nn.functional.one_hot(labels, 3).double()
    assert float(dc.affinity_loss(Y.clone(), Y)) == pytest.approx(0.0, abs=1e-12)
    wrong = Y.clone()
    wrong[0, 5] = Y[0, 0]  # bin 5 embedded with the wrong source
    assert float(dc.affinity_loss(wrong, Y)) > 0.05
    w = torch.tensor([[1.0, 1, 1, 1, 1, 0]])  # ... but bin 5 is silent: it does not count
    assert float(dc.affinity_loss(wrong, Y, w)) == pytest.approx(0.0, abs=1e-12)
    V = torch.randn(2, 5, 3, requires_grad=True)
    dc.affinity_loss(V, torch.nn.functional.one_hot(torch.randint(0, 2, (2, 5)), 2).float()).backward()
    assert V.grad is not None and V.grad.abs().sum() > 0


def test_ideal_binary_mask_picks_the_loudest_instrument_and_weights_active_bins():
    # (B=1, F=2, T=3) mixture; instrument 0 loud in frame 0, instrument 1 elsewhere, frame 2 bin 1 silent
    stems = torch.tensor([[[[1.0, 0.1, 0.0], [2.0, 0.0, 0.0]],
                           [[0.0, 3.0, 1.0], [1.0, 4.0, 1e-4]]]])  # (1, K=2, F, T)
    mag = stems.sum(1)
    Y, w = dc.ideal_binary_mask(mag, stems, active_db=-40.0)
    # bins in (frame, frequency) order: (t0,f0) (t0,f1) (t1,f0) (t1,f1) (t2,f0) (t2,f1)
    assert Y.argmax(-1).tolist() == [[0, 0, 1, 1, 1, 1]]
    assert w.tolist() == [[1, 1, 1, 1, 1, 0]]  # 1e-4 is 92 dB below the loudest bin (4.0)


# --- the network and the training data -------------------------------------------------------


def test_embeddings_are_unit_vectors_per_bin(tiny_cfg):
    d = tiny_cfg.deep_clustering
    model = dc.DeepClusteringNet(d).eval()
    with torch.no_grad():
        V = model(0.1 * torch.randn(2, 2, 4000))
    frames = 4000 // d.hop + 1
    assert V.shape == (2, frames, d.n_fft // 2 + 1, d.emb_dim)
    torch.testing.assert_close(V.norm(dim=-1), torch.ones(V.shape[:-1]))


def test_clips_of_other_and_its_instruments_share_offsets(tiny_cfg, tiny_root):
    train_loader, val_loader = dc.loaders(tiny_cfg, tiny_root)
    ds = train_loader.dataset
    assert ds.n_max == val_loader.dataset.n_max >= max(len(s) for s in ds.stems)
    clip = int(tiny_cfg.deep_clustering.clip_s * RATE)
    for i in range(6):
        x, stems = ds[i]
        assert x.shape == (1, clip) and stems.shape == (ds.n_max, 1, clip)
        # "other" is the sum of its instruments (16-bit files), so only the same offsets re-build it
        np.testing.assert_allclose(stems.sum(0).numpy(), x.numpy(), atol=2e-3)


def test_labelled_clips_pad_tracks_with_fewer_instruments():
    ramp = np.arange(1000, dtype=np.float32)[None] / 1000  # the value says the offset
    stems = [np.stack([ramp, 2 * ramp]), np.stack([ramp, 0.5 * ramp, 0.25 * ramp])]  # 2 and 3 instruments
    audio = [s.sum(0) for s in stems]
    ds = dc.LabelledClips(audio, stems, clip=100, n_items=30, seed=0)
    assert ds.n_max == 3
    seen = set()
    for i in range(30):
        x, y = ds[i]
        assert y.shape == (3, 1, 100)
        torch.testing.assert_close(y.sum(0), x)
        which = 0 if torch.allclose(y[1], 2 * y[0]) else 1
        seen.add(which)
        if which == 0:
            assert not y[2].any()  # the padding row is silent: never the loudest instrument
    assert seen == {0, 1}
    fixed = dc.LabelledClips(audio, stems, clip=100, n_items=4, seed=0, random=False)
    fixed.set_epoch(3)
    torch.testing.assert_close(fixed[2][0], dc.LabelledClips(audio, stems, 100, 4, random=False)[2][0])


def test_unknown_weighting_is_a_clear_error(tiny_cfg):
    with pytest.raises(ConfigError, match="weighting must be 'binary' or 'magnitude'"):
        dc.dc_loss_fn(tiny_cfg.replace(deep_clustering={"weighting": "loud"}))


def test_magnitude_weighting_counts_loud_bins_more(tiny_cfg):
    """Two bins: the loud one embedded right, the quiet one wrong; magnitude weights forgive more."""
    losses = {}
    for weighting in ("binary", "magnitude"):
        cfg = tiny_cfg.replace(deep_clustering={"weighting": weighting})

        class Fixed(torch.nn.Module):
            n_fft, hop = 256, 64

            def embed(self, mag):
                V = torch.zeros(*mag.shape[:1], mag.shape[2], mag.shape[1], 2)  # (B, T, F, 2)
                V[..., 0] = 1.0  # every bin embedded as instrument 0
                return V

        t = np.arange(2000) / RATE
        loud, quiet = np.sin(2 * np.pi * 500 * t), 0.05 * np.sin(2 * np.pi * 3000 * t)
        stems = torch.tensor(np.stack([loud, quiet])[None, :, None], dtype=torch.float32)  # (1, 2, 1, L)
        losses[weighting] = float(dc.dc_loss_fn(cfg)(Fixed(), (stems.sum(1), stems), 0)[0])
    assert losses["magnitude"] < losses["binary"]


def test_a_root_without_instruments_is_a_clear_error(tiny_cfg, stemless_root, tmp_path):
    root, _ = stemless_root
    with pytest.raises(DataRootError, match="instruments inside 'other'"):
        dc.train_deep_clustering(tiny_cfg, root=root, run_dir=tmp_path / "r", progress=False)


# --- separation ------------------------------------------------------------------------------


class BandEmbedding(torch.nn.Module):
    """A hand-set embedding: bins below ``cut_hz`` point one way, bins above the other."""

    def __init__(self, n_fft=256, hop=64, cut_hz=1500.0):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.low = int(cut_hz / (RATE / n_fft))

    def embed(self, mag):
        B, F, T = mag.shape
        V = torch.zeros(B, T, F, 2)
        V[:, :, :self.low, 0] = 1.0
        V[:, :, self.low:, 1] = 1.0
        return V


def _two_tones(seconds=3.0):
    t = np.arange(int(seconds * RATE)) / RATE
    low = (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    high = (0.2 * np.sin(2 * np.pi * 3520 * t + 1.0) * (t > 0.5))[None].astype(np.float32)
    return low, high


def _si_sdrs(x, refs, ests):
    rows = match_estimates(refs, list(ests), x)
    return {r["instrument"]: r["si_sdr_db"] for r in rows if r["instrument"]}


@pytest.mark.parametrize("chunk_s", [10.0, 1.0])
def test_two_tones_separate_with_a_hand_set_embedding(tiny_cfg, chunk_s):
    low, high = _two_tones()
    x = low + high
    cfg = tiny_cfg.replace(deep_clustering={"chunk_s": chunk_s, "overlap_s": 0.25})
    est = dc.separate_dc(BandEmbedding(), x, 2, cfg)
    assert est.shape == (2, 1, x.shape[1]) and est.dtype == np.float32
    np.testing.assert_allclose(est.sum(0), x, atol=1e-5)
    # one k-means for the whole input: the same cluster is the same tone in every chunk
    scores = _si_sdrs(x, {"low": low, "high": high}, est)
    assert min(scores.values()) > 10, scores
    assert dc.separate_dc(BandEmbedding(), x, "auto", cfg.replace(deep_clustering={"k_range": (2, 4)})
                          ).shape[0] == 2


@pytest.fixture
def one_thread():
    """Tiny tensors: a second torch thread only waits (it made one test take minutes on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_network_trained_on_toy_tones_separates_them(one_thread):
    """A few hundred steps on mixtures of a low and a high tone (random pitches), then an unseen pair."""
    cfg = get_config("tiny", deep_clustering={"n_fft": 256, "hop": 64, "hidden": 16, "layers": 1, "emb_dim": 3})
    torch.manual_seed(0)
    model = dc.DeepClusteringNet(cfg.deep_clustering)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = dc.dc_loss_fn(cfg)
    rng = np.random.default_rng(0)
    t = np.arange(4000) / RATE
    for step in range(150):
        f_low, f_high = rng.uniform(200, 900, 8), rng.uniform(2500, 6000, 8)
        stems = np.stack([np.sin(2 * np.pi * f_low[:, None] * t), 0.5 * np.sin(2 * np.pi * f_high[:, None] * t)], 1)
        stems = torch.tensor(stems[:, :, None], dtype=torch.float32)  # (B, K=2, C=1, L)
        loss, _ = loss_fn(model, (stems.sum(1), stems), step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    low, high = _two_tones(2.0)
    est = dc.separate_dc(model.eval(), low + high, 2, cfg)
    np.testing.assert_allclose(est.sum(0), low + high, atol=1e-5)
    assert min(_si_sdrs(low + high, {"low": low, "high": high}, est).values()) > 10


@pytest.mark.parametrize("channels", [1, 2])
def test_estimates_sum_to_the_input_for_any_k(tiny_cfg, channels, monkeypatch):
    torch.manual_seed(0)
    model = dc.DeepClusteringNet(tiny_cfg.deep_clustering).eval()
    x = (0.1 * np.random.default_rng(0).standard_normal((channels, int(4.3 * RATE)))).astype(np.float32)
    many = dc.separate_dc_many(model, x, [1, 3, "auto"], tiny_cfg)  # 2 s chunks: three of them
    assert [e.shape for e in many[:2]] == [(1, channels, x.shape[1]), (3, channels, x.shape[1])]
    assert tiny_cfg.deep_clustering.k_range[0] <= len(many[2]) <= tiny_cfg.deep_clustering.k_range[1]
    for est in many:
        np.testing.assert_allclose(est.sum(0), x, atol=1e-5)
    np.testing.assert_array_equal(many[1], dc.separate_dc(model, x, 3, tiny_cfg))  # seeded: reproducible
    monkeypatch.setattr(dc, "KEEP_BYTES", 0)  # every chunk embedded again in the second pass: same result
    np.testing.assert_allclose(dc.separate_dc(model, x, 3, tiny_cfg), many[1], atol=1e-6)


def test_soft_masks_sum_to_one_and_harden_as_the_temperature_falls():
    V = torch.nn.functional.normalize(torch.randn(7, 5, 3), dim=-1)  # (T, F, D)
    cent = torch.nn.functional.normalize(torch.randn(4, 3), dim=-1)
    hard = dc.cluster_masks(V, cent)
    assert hard.shape == (4, 5, 7) and set(hard.unique().tolist()) <= {0.0, 1.0}
    for temperature in (1.0, 0.1, 1e-4):
        soft = dc.cluster_masks(V, cent, temperature)
        torch.testing.assert_close(soft.sum(0), torch.ones(5, 7))
    torch.testing.assert_close(soft, hard)  # at a tiny temperature: the nearest centroid


def test_the_ideal_embedding_gives_the_ideal_binary_mask(tiny_cfg, tiny_root):
    """With every bin embedded as its loudest instrument (one-hot), k-means at k = n is the oracle IBM."""
    from mss_helpers import datasets

    cfg = tiny_cfg.replace(deep_clustering={"chunk_s": 10.0})  # one chunk: the oracle sees the whole track
    track = datasets.load_tracks(tiny_root, "test")[0]
    x = datasets.input_audio(track, cfg)
    refs = track.other_stems(rate=RATE, channels=1, min_db=-60.0)
    S = dc.stft(torch.from_numpy(np.stack(list(refs.values()))), 256, 64).abs().mean(1)  # (n, F, T)

    class Ideal(torch.nn.Module):
        n_fft, hop = 256, 64

        def embed(self, mag):
            return torch.nn.functional.one_hot(S.argmax(0), len(S)).float().transpose(0, 1)[None]  # (1, T, F, n)

    est = dc.separate_dc(Ideal(), x, len(refs), cfg)
    X = dc.stft(torch.from_numpy(x), 256, 64)
    ibm = [dc.istft((S.argmax(0) == i) * X, 256, 64, x.shape[1]).numpy() for i in range(len(refs))]
    got, want = _si_sdrs(x, refs, est), _si_sdrs(x, refs, ibm)
    assert got == pytest.approx(want, abs=0.01)
    assert min(want.values()) > 0


def test_silence_short_input_and_impossible_k(tiny_cfg):
    model = dc.DeepClusteringNet(tiny_cfg.deep_clustering).eval()
    silent = np.zeros((1, RATE), dtype=np.float32)
    est = dc.separate_dc(model, silent, 2, tiny_cfg)
    assert est.shape == (2, 1, RATE) and not est.any()
    with pytest.raises(AudioError, match="shorter than half an STFT frame"):
        dc.separate_dc(model, np.ones((1, 100), dtype=np.float32), 2, tiny_cfg)
    one_frame = (0.1 * np.random.default_rng(0).standard_normal((1, 200))).astype(np.float32)
    assert dc.separate_dc(model, one_frame, 2, tiny_cfg).shape == (2, 1, 200)
    with pytest.raises(ConfigError, match="k must be between 1 and"):
        dc.separate_dc(model, one_frame, 10 ** 6, tiny_cfg)


def test_auto_k_finds_three_blobs_of_unit_vectors():
    rng = np.random.default_rng(0)
    centres = np.eye(5)[:3]
    X = np.concatenate([c + 0.05 * rng.standard_normal((300, 5)) for c in centres])
    k, scores = dc.auto_k(X / np.linalg.norm(X, axis=1, keepdims=True), (2, 5))
    assert k == 3 and set(scores) == {2, 3, 4, 5}


# --- runs ------------------------------------------------------------------------------------


def test_train_resume_cache_and_load(tiny_cfg, tiny_root, tmp_path):
    one = tiny_cfg.replace(deep_clustering={"epochs": 1})
    run_dir = dc.train_deep_clustering(one, root=tiny_root, run_dir=tmp_path / "r", progress=False)
    assert json.loads((run_dir / "done.json").read_text())["epochs"] == 1
    (run_dir / "done.json").unlink()
    dc.train_deep_clustering(tiny_cfg, root=tiny_root, run_dir=run_dir, resume=True, progress=False)
    hist = json.loads((run_dir / "history.json").read_text())
    steps = tiny_cfg.deep_clustering.steps_per_epoch
    assert [e["step"] for e in hist["epochs"]] == [steps, 2 * steps]
    assert {"affinity", "active"} <= set(hist["epochs"][0]["train"])
    mtime = (run_dir / "last.pt").stat().st_mtime_ns
    dc.train_deep_clustering(tiny_cfg, root=tiny_root, run_dir=run_dir, progress=False)  # finished: a cache
    assert (run_dir / "last.pt").stat().st_mtime_ns == mtime
    model = dc.load_deep_clustering(tiny_cfg, run_dir)
    assert isinstance(model, dc.DeepClusteringNet) and not model.training
    assert torch.get_num_threads() >= 1


def test_default_run_folder_ensure_and_cli(tiny_cfg, tiny_root, capsys):
    run_dir = dc.deep_clustering_run_dir(tiny_cfg)
    assert run_dir.name.startswith("deep_clustering_tiny_")
    other = dc.deep_clustering_run_dir(tiny_cfg.replace(deep_clustering={"emb_dim": 6}))
    assert other != run_dir
    assert dc.deep_clustering_run_dir(tiny_cfg.replace(deep_clustering={"max_minutes": 1.0})) == run_dir
    parser = argparse.ArgumentParser()
    dc.add_arguments(parser)
    assert dc.run(parser.parse_args(["--preset", "tiny", "--root", str(tiny_root)])) == 0
    assert capsys.readouterr().out.strip().endswith(str(dc.deep_clustering_run_dir(tiny_cfg, tiny_root)))
    assert dc.ensure_deep_clustering(tiny_cfg, root=tiny_root, progress=False) == dc.deep_clustering_run_dir(
        tiny_cfg, tiny_root)


def test_untrained_model_is_a_clear_error(tiny_cfg, tmp_path):
    with pytest.raises(RunNotFoundError, match="train-deepclustering --preset tiny"):
        dc.load_deep_clustering(tiny_cfg, tmp_path / "nothing")
