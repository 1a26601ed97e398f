"""Deep clustering (Hershey, Chen, Le Roux, Watanabe, ICASSP 2016): the LABELLED reference.

Every other learned method of the report trains on "other" alone. Deep clustering trains on the
instruments inside it (their ideal binary masks), so in every table it is a *reference* -- what
clustering achieves when the embedding is trained for it with labels -- beside the oracle rows,
never a competitor of the unsupervised methods.

- :class:`DeepClusteringNet`: log-magnitude STFT of "other" -> BLSTM -> a ``D``-dimensional
  unit-norm embedding of every time-frequency bin.
- :class:`LabelledClips`: excerpts of "other" and of its instruments at the same offsets
  (``other_stems/`` of the training split: the labels).
- :func:`affinity_loss`: ``||V^T V||^2 - 2 ||V^T Y||^2 + ||Y^T Y||^2`` (= ``||V V^T - Y Y^T||^2``) over
  the active bins, in the low-rank form that never builds the ``N x N`` affinities.
- :func:`train_deep_clustering`: the generic :func:`train.fit` loop, ``runs/deep_clustering_<preset>_<hash>``.
- :func:`separate_dc`: embeddings chunk by chunk, then ONE k-means over the active bins of the whole
  input (cluster identities agree across chunks), binary (or soft) masks on the mixture's STFT;
  :func:`auto_k` chooses k by silhouette.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import paths
from .config import Config, DeepClusteringConfig, config_from_dict, config_hash, config_to_dict, get_config
from .errors import AudioError, ConfigError, DataRootError, RunNotFoundError
from .train import torch_threads

EPS = 1e-8
LABELLED = "LABELLED reference: trained on the instruments inside 'other' (their ideal binary masks)"
KEEP_BYTES = 128 * 2 ** 20  # separation: chunk embeddings kept between the two passes, at most


# --- the network ---------------------------------------------------------------------------


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``(..., L)`` audio -> ``(..., F, T)`` complex STFT (Hann window, centred frames)."""
    lead = x.shape[:-1]
    X = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop, window=torch.hann_window(n_fft, device=x.device),
                   center=True, return_complex=True)
    return X.view(*lead, *X.shape[-2:])


def istft(X: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: ``(..., F, T)`` -> ``(..., length)``."""
    lead = X.shape[:-2]
    y = torch.istft(X.reshape(-1, *X.shape[-2:]), n_fft, hop, window=torch.hann_window(n_fft, device=X.device),
                    center=True, length=length)
    return y.view(*lead, length)


class DeepClusteringNet(nn.Module):
    """BLSTM embedding of every time-frequency bin (the LABELLED reference's network).

    Multi-channel input shares one embedding per bin (from the mean magnitude over channels), so a
    cluster is the same source in every channel.

    Parameters
    ----------
    dcfg : DeepClusteringConfig (n_fft, hop, hidden, layers, emb_dim)
    """

    def __init__(self, dcfg: DeepClusteringConfig):
        super().__init__()
        self.n_fft, self.hop, self.emb_dim = dcfg.n_fft, dcfg.hop, dcfg.emb_dim
        self.n_bins = dcfg.n_fft // 2 + 1
        self.rnn = nn.LSTM(self.n_bins, dcfg.hidden, num_layers=dcfg.layers, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * dcfg.hidden, self.n_bins * dcfg.emb_dim)

    def embed(self, mag: torch.Tensor) -> torch.Tensor:
        """``(B, F, T)`` magnitudes -> ``(B, T, F, D)`` unit-norm embeddings."""
        feat = torch.log(mag + 1e-5)
        # per-example standardisation: the embedding does not depend on the input's level
        feat = (feat - feat.mean(dim=(1, 2), keepdim=True)) / (feat.std(dim=(1, 2), keepdim=True) + 1e-5)
        h, _ = self.rnn(feat.transpose(1, 2))  # (B, T, 2H)
        v = self.out(h).view(h.shape[0], h.shape[1], self.n_bins, self.emb_dim)  # (B, T, F, D)
        return nn.functional.normalize(v, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, L)`` audio -> ``(B, T, F, D)`` embeddings."""
        return self.embed(stft(x, self.n_fft, self.hop).abs().mean(dim=1))


# --- labels and the affinity loss ----------------------------------------------------------


def active_bins(mag: torch.Tensor, active_db: float) -> torch.Tensor:
    """``(B, F, T)`` magnitudes -> ``(B, F, T)`` bool: within ``-active_db`` dB of the example's loudest bin."""
    db = 20 * torch.log10(mag + EPS)
    return db > db.amax(dim=(1, 2), keepdim=True) + active_db


def ideal_binary_mask(mag: torch.Tensor, stem_mags: torch.Tensor, active_db: float):
    """The targets of the affinity loss: the loudest instrument of every bin, and which bins count.

    ``mag`` (B, F, T): the mixture's ("other") magnitudes; ``stem_mags`` (B, K, F, T): its instruments'
    (all-zero rows pad tracks with fewer); bins more than ``-active_db`` dB below the example's loudest
    get weight 0. Returns ``Y`` (B, T*F, K) one-hot and ``weights`` (B, T*F) in {0, 1}, bins in
    (frame, frequency) order like the embeddings.
    """
    K = stem_mags.shape[1]
    Y = nn.functional.one_hot(stem_mags.argmax(dim=1), K).to(mag.dtype)  # (B, F, T, K)
    w = active_bins(mag, active_db).to(mag.dtype)
    return Y.transpose(1, 2).flatten(1, 2), w.transpose(1, 2).flatten(1)


def affinity_loss(V: torch.Tensor, Y: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Deep clustering's loss ``||W^1/2 (V V^T - Y Y^T) W^1/2||_F^2 / (sum w)^2``, batch mean.

    ``V`` (B, N, D): embeddings of the N bins; ``Y`` (B, N, K): one-hot targets; ``weights`` (B, N)
    (None: all 1). With ``V' = W^1/2 V`` and ``Y' = W^1/2 Y`` the ``N x N`` norm equals ``||V'^T V'||^2 - 2 ||V'^T Y'||^2
    + ||Y'^T Y'||^2``: ``D x D``, ``D x K`` and ``K x K`` matrices only, cost O(N (D + K)^2). Dividing by
    ``(sum w)^2`` makes it a mean over pairs of active bins, so clips with many silent bins weigh the same.
    """
    if weights is None:
        norm = torch.full(V.shape[:1], float(V.shape[1]), dtype=V.dtype, device=V.device)
    else:
        root = weights.clamp_min(0).sqrt()[..., None]
        V, Y, norm = V * root, Y * root, weights.sum(dim=1)
    Vt, Yt = V.transpose(1, 2), Y.transpose(1, 2)
    total = ((Vt @ V) ** 2).sum((1, 2)) - 2 * ((Vt @ Y) ** 2).sum((1, 2)) + ((Yt @ Y) ** 2).sum((1, 2))
    return (total / norm.clamp_min(1.0) ** 2).mean()


def dc_loss_fn(cfg: Config):
    """``loss_fn(model, batch, step)`` for :func:`train.fit` on a batch ``(x (B, C, L), stems (B, K, C, L))``.

    Terms: ``affinity`` (the loss) and ``active`` (the share of bins that count).
    """
    d = cfg.deep_clustering
    if d.weighting not in ("binary", "magnitude"):
        raise ConfigError(f"deep_clustering.weighting must be 'binary' or 'magnitude', got {d.weighting!r}")

    def loss_fn(model, batch, step):
        x, stems = batch
        mag = stft(x, model.n_fft, model.hop).abs().mean(dim=1)  # (B, F, T)
        stem_mags = stft(stems, model.n_fft, model.hop).abs().mean(dim=2)  # (B, K, F, T)
        Y, w = ideal_binary_mask(mag, stem_mags, d.active_db)
        if d.weighting == "magnitude":  # scale-free: the loss divides by (sum w)^2
            w = w * mag.transpose(1, 2).flatten(1)
        V = model.embed(mag).flatten(1, 2)  # (B, T*F, D)
        loss = affinity_loss(V, Y, w)
        return loss, {"affinity": float(loss.detach()), "active": float(w.mean())}

    return loss_fn


# --- training data: "other" and its instruments at the same offsets -------------------------


class LabelledClips(torch.utils.data.Dataset):
    """Excerpts of "other" with its instruments at the same offsets (the labels of the LABELLED reference).

    Items are ``(x, stems)``: float32 tensors ``(C, clip)`` and ``(K, C, clip)``, ``K`` the most
    instruments of any track; tracks with fewer get all-zero rows (never the loudest).

    Parameters
    ----------
    audio : list of (C, S) float32, the "other" of each track (kept as :func:`datasets.held` gives it)
    stems : list of (N_i, C, S) float32, its instruments; ``clip``: samples per excerpt
    random : new excerpts every epoch (training) or a fixed excerpt per index (validation)
    """

    def __init__(self, audio: list, stems: list, clip: int, n_items: int, seed: int = 0, random: bool = True):
        from .datasets import held

        self.audio = [held(a) for a in audio]
        self.stems = stems
        self.lengths = [min(a.shape[1], s.shape[-1]) for a, s in zip(self.audio, stems)]
        if min(self.lengths) < clip:
            raise ValueError(f"tracks shorter than one clip of {clip} samples")
        self.clip, self.n_items, self.seed, self.random = int(clip), int(n_items), seed, random
        self.n_max = max(len(s) for s in stems)
        self._epoch = 0

    def __len__(self) -> int:
        return self.n_items

    def set_epoch(self, epoch: int) -> None:  # new random clips every epoch, reproducibly
        self._epoch = epoch

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index] + ([self._epoch, 1] if self.random else []))
        i = int(rng.integers(len(self.audio)))
        a = self.audio[i]
        for _ in range(4):  # instruments rest for bars: redraw nearly silent excerpts
            start = int(rng.integers(0, self.lengths[i] - self.clip + 1))
            x = a[:, start:start + self.clip]
            if float(np.mean(x ** 2)) > 1e-6:
                break
        stems = np.zeros((self.n_max, *x.shape), dtype=np.float32)
        stems[:len(self.stems[i])] = self.stems[i][:, :, start:start + self.clip]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(stems)


def labelled_tracks(cfg: Config, root) -> tuple[list, list]:
    """Training and validation tracks of the training split that have instruments inside "other"
    (:class:`DataRootError` when none has: MUSDB18 has none, and deep clustering needs the labels)."""
    from . import datasets

    tracks = datasets.load_tracks(root, "train")
    train, val = datasets.split_train_val(tracks, cfg.data.n_val_tracks, cfg.data.seed)
    train, val = [t for t in train if t.instruments], [t for t in val if t.instruments]
    if not train:
        raise DataRootError(f"deep clustering (the LABELLED reference) trains on the instruments inside 'other'; "
                            f"no training track of {root} has them (other_stems/<split>/<track>/*.wav): train it "
                            "on a root that has them, e.g. the preset's embedded set")
    return train, val or train[:1]


def loaders(cfg: Config, root):
    """Training and validation loaders of :class:`LabelledClips` from the training split."""
    from torch.utils.data import DataLoader

    d, rate, channels = cfg.deep_clustering, cfg.data.sample_rate, cfg.data.channels
    clip = round(d.clip_s * rate)

    def load(tracks):
        audio = [t.load("other", rate=rate, channels=channels) for t in tracks]
        stems = [np.stack(list(t.other_stems(rate=rate, channels=channels).values())) for t in tracks]
        return audio, stems

    train, val = labelled_tracks(cfg, root)
    train_ds = LabelledClips(*load(train), clip, d.steps_per_epoch * d.batch_size, seed=d.seed, random=True)
    val_ds = LabelledClips(*load(val), clip, d.val_clips, seed=d.seed + 1, random=False)
    val_ds.n_max = train_ds.n_max = max(train_ds.n_max, val_ds.n_max)  # one K for both
    return (DataLoader(train_ds, batch_size=d.batch_size, shuffle=False, drop_last=True),
            DataLoader(val_ds, batch_size=d.batch_size, shuffle=False))


# --- runs ------------------------------------------------------------------------------------


def deep_clustering_run_dir(cfg: Config, root=None) -> Path:
    """Default run folder, keyed by the data and deep-clustering settings (``data.source`` left out:
    the model trains on the true "other" and its instruments whatever it later separates)."""
    from .datasets import data_key

    key = config_hash(cfg.replace(data={"source": "other"}), "data", "deep_clustering")
    return paths.runs_dir() / f"deep_clustering_{cfg.name}_{key}{data_key(cfg, root)}"


def train_deep_clustering(cfg: Config, root=None, run_dir=None, resume: bool = False, force: bool = False,
                          progress: bool = True) -> Path:
    """Train (or reuse) the deep-clustering network of ``cfg``; return its run folder.

    The LABELLED reference: it reads the training split's instruments (``other_stems/``).
    A finished run (``done.json``) is a cache unless ``force``.
    """
    from . import datasets
    from .train import finished_run, fit, lr_factor

    run_dir = Path(run_dir) if run_dir else deep_clustering_run_dir(cfg, root)
    if finished_run(run_dir, force, resume):
        return run_dir
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    train_loader, val_loader = loaders(cfg, root)
    d = cfg.deep_clustering
    torch.manual_seed(d.seed)
    model = DeepClusteringNet(d)
    total = d.epochs * d.steps_per_epoch
    with torch_threads(d.torch_threads):
        fit(model, dc_loss_fn(cfg), train_loader, val_loader, run_dir, epochs=d.epochs,
            steps_per_epoch=d.steps_per_epoch, lr=d.lr, weight_decay=0.0, grad_clip=d.grad_clip, seed=d.seed,
            config={**config_to_dict(cfg), "data_root": str(root)}, resume=resume, max_minutes=d.max_minutes,
            progress=progress, device="cpu", lr_schedule=lambda step: lr_factor(step, total, d.lr_schedule))
    return run_dir


def ensure_deep_clustering(cfg: Config, root=None, progress: bool = True) -> Path:
    """The finished deep-clustering run of ``cfg`` (the LABELLED reference): reused, resumed or trained now."""
    from .train import interrupted

    return train_deep_clustering(cfg, root=root, resume=interrupted(deep_clustering_run_dir(cfg, root)),
                                 progress=progress)


def load_deep_clustering(cfg: Config, run_dir=None, which: str = "last") -> DeepClusteringNet:
    """The trained deep-clustering network of ``cfg`` (the LABELLED reference; eval mode, CPU).

    :class:`RunNotFoundError` naming the command that trains it when it has not been trained.
    """
    run_dir = Path(run_dir) if run_dir else deep_clustering_run_dir(cfg)
    ckpt = run_dir / f"{which}.pt"
    if not ckpt.is_file() or not (run_dir / "config.json").is_file():
        raise RunNotFoundError(f"no trained deep-clustering model at {run_dir}; train it with "
                               f"`python -m mss_helpers train-deepclustering --preset {cfg.name}`")
    run_cfg = config_from_dict(json.loads((run_dir / "config.json").read_text())["config"])
    model = DeepClusteringNet(run_cfg.deep_clustering)
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["model"])
    return model.eval()


# --- separation: one k-means over the whole input ---------------------------------------------


@torch.no_grad()
def _chunks(model, x: np.ndarray, bounds: list, active_db: float):
    """Per chunk: ``(X (C, F, T) complex, V (T, F, D), active (T, F) bool)``."""
    for start, stop in bounds:
        X = stft(torch.from_numpy(np.ascontiguousarray(x[:, start:stop])), model.n_fft, model.hop)
        mag = X.abs().mean(dim=0)[None]  # (1, F, T)
        yield X, model.embed(mag)[0], active_bins(mag, active_db)[0].T


def auto_k(sample: np.ndarray, k_range=(2, 5), seed: int = 0, max_n: int = 4000) -> tuple[int, dict]:
    """The k in ``k_range`` (inclusive) whose k-means of the embeddings has the best silhouette.

    ``sample`` (n, D): embeddings of active bins; k-means and silhouette run on a seeded subsample of
    ``max_n`` of them. Returns ``(k, {k: silhouette})``, the smallest k on ties.
    """
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    X = sample[rng.choice(len(sample), max_n, replace=False)] if len(sample) > max_n else sample
    lo, hi = int(k_range[0]), min(int(k_range[1]), len(X) - 1)
    if lo < 2 or hi < lo:
        raise ConfigError(f"cannot choose k in {tuple(k_range)} from {len(X)} embeddings (need 2 <= lo <= hi)")
    scores = {}
    for k in range(lo, hi + 1):
        with warnings.catch_warnings():  # a k above the distinct points found: scored, not worth a warning
            warnings.simplefilter("ignore", ConvergenceWarning)
            labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X)
        scores[k] = float(silhouette_score(X, labels)) if len(np.unique(labels)) > 1 else -1.0
    return max(scores, key=lambda k: (scores[k], -k)), scores


def cluster_masks(V: torch.Tensor, centroids: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
    """``(T, F, D)`` embeddings and ``(k, D)`` centroids -> ``(k, F, T)`` masks that sum to one in every bin:
    binary (the nearest centroid) when ``temperature`` is 0, else ``softmax_k(-||v - c_k||^2 / temperature)``."""
    dist = torch.cdist(V.reshape(-1, V.shape[-1]), centroids) ** 2  # (T*F, k)
    m = torch.softmax(-dist / temperature, dim=1) if temperature else nn.functional.one_hot(
        dist.argmin(dim=1), len(centroids)).to(V.dtype)
    return m.T.reshape(len(centroids), *V.shape[:2]).transpose(1, 2)


def separate_dc_many(model, x: np.ndarray, ks, cfg: Config, seed: int = 0) -> list[np.ndarray]:
    """:func:`separate_dc` for several k at once: the embeddings are computed once for all of them."""
    with torch_threads(1):  # one frame after another: a second thread waited more than it helped (10x)
        return _separate(model, x, ks, cfg, seed)


def _separate(model, x: np.ndarray, ks, cfg: Config, seed: int) -> list[np.ndarray]:
    from sklearn.cluster import KMeans

    from .audio import chunk_bounds, overlap_add

    d, rate = cfg.deep_clustering, cfg.data.sample_rate
    x = np.asarray(x, dtype=np.float32)
    C, S = x.shape
    if S <= model.n_fft // 2:
        raise AudioError(f"input of {S} samples is shorter than half an STFT frame ({model.n_fft // 2 + 1})")
    bounds = chunk_bounds(S, int(d.chunk_s * rate), int(d.overlap_s * rate))
    rng = np.random.default_rng(seed)
    # pass 1: a subsample of the active bins' embeddings of every chunk, in proportion to its length
    sample, kept, size = [], [], 0
    for (start, stop), (X, V, act) in zip(bounds, _chunks(model, x, bounds, d.active_db)):
        pick = V[act] if act.any() else V.reshape(-1, V.shape[-1])  # a silent chunk: all its bins
        quota = int(np.ceil(d.fit_bins * (stop - start) / S))
        if len(pick) > quota:
            pick = pick[torch.from_numpy(np.sort(rng.choice(len(pick), quota, replace=False)))]
        sample.append(pick.numpy())
        size += V.numel() * 4
        kept.append((X, V) if size <= KEEP_BYTES else None)  # else recomputed in pass 2
    sample = np.concatenate(sample).astype(np.float64)
    centroids = []
    for k in ks:
        k = auto_k(sample, d.k_range, seed)[0] if k in (None, "auto") else int(k)
        if not 1 <= k <= len(sample):
            raise ConfigError(f"k must be between 1 and the {len(sample)} embeddings sampled, got {k}")
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(sample)
        centroids.append(torch.from_numpy(km.cluster_centers_).float())
    # pass 2: every bin (silent ones too) to its nearest centroid (or softly), masks, iSTFT per chunk
    outs = [[] for _ in ks]
    n_kept = sum(pair is not None for pair in kept)  # a prefix of the chunks
    again = _chunks(model, x, bounds[n_kept:], d.active_db)
    for (start, stop), pair in zip(bounds, kept):
        X, V = pair if pair is not None else next(again)[:2]
        for out, cent in zip(outs, centroids):
            masks = cluster_masks(V, cent, d.mask_temperature)  # (k, F, T)
            y = istft(masks[:, None] * X[None], model.n_fft, model.hop, stop - start)  # (k, C, n)
            out.append(y.reshape(-1, stop - start).numpy())
    return [overlap_add(out, bounds, S).reshape(len(cent), C, S) for out, cent in zip(outs, centroids)]


def separate_dc(model, x: np.ndarray, k, cfg: Config, seed: int = 0) -> np.ndarray:
    """Deep clustering's ``k`` estimates of ``x`` (the LABELLED reference: trained on instrument masks).

    The whole input is embedded chunk by chunk (``deep_clustering.chunk_s``, ``overlap_s``); ONE seeded
    k-means is fitted on a subsample (at most ``fit_bins``) of the active bins of all chunks, so a
    cluster is the same source across the track; every bin (silent ones too) goes to its nearest
    centroid: binary masks (soft ones when ``mask_temperature > 0``, :func:`cluster_masks`) on the
    mixture's complex STFT, iSTFT, chunks joined by cross-fades.

    Parameters
    ----------
    model : :class:`DeepClusteringNet` (or anything with ``n_fft``, ``hop`` and ``embed``)
    x : (C, S) float32 at ``cfg.data.sample_rate``
    k : int, or ``"auto"`` / None (:func:`auto_k` over ``deep_clustering.k_range``)

    Returns
    -------
    (k, C, S) float32; the estimates sum to ``x`` (up to the STFT round trip).
    """
    return separate_dc_many(model, x, [k], cfg, seed)[0]


# --- CLI -------------------------------------------------------------------------------------


def add_arguments(parser) -> None:
    """Arguments of ``python -m mss_helpers train-deepclustering``."""
    from .train import add_run_arguments

    add_run_arguments(parser, "deep_clustering", root_help="root with other_stems/ (default: the preset's embedded set)")


def run(args) -> int:
    """Train (or reuse) the deep-clustering network (the LABELLED reference) and print its run folder."""
    cfg = get_config(args.preset)
    run_dir = train_deep_clustering(cfg, root=args.root, run_dir=args.run_dir, resume=args.resume,
                                    force=args.force)
    print(f"run: {run_dir}")
    return 0


__all__ = ["LABELLED", "DeepClusteringNet", "LabelledClips", "active_bins", "add_arguments", "affinity_loss",
           "auto_k", "cluster_masks", "dc_loss_fn", "deep_clustering_run_dir", "ensure_deep_clustering", "ideal_binary_mask",
           "istft", "labelled_tracks", "load_deep_clustering", "loaders", "run", "separate_dc",
           "separate_dc_many", "stft", "train_deep_clustering"]
