"""Frozen, grouped run configuration and the named presets.

One :class:`Config` per run, grouped as data / model / train / cluster / unmix
(the Asteroid habit). Presets:

- ``tiny``: tests; a handful of short tracks, a model that trains in seconds.
- ``cpu``: the embedded default; mono 16 kHz, trains within the CPU budget.
- ``paper``: the seed's settings (stereo 44.1 kHz, n_filters 48, ratios
  [4, 4, 4, 2], latent 512, 24 epochs), meant for a GPU.

``get_config()`` picks the preset named by ``MSS_PRESET`` (default ``cpu``).
Every run writes ``config_to_dict(cfg)`` plus the git commit as ``config.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .separator_config import DeepClusteringConfig, SeparatorConfig, StudentConfig, VAEBSSConfig  # noqa: F401


@dataclass(frozen=True)
class DataConfig:
    """The embedded data set and how clips are drawn from it."""

    n_tracks: int = 150  # total tracks rendered (train + test)
    n_test: int = 20  # the seed's 130/20 split
    # Training tracks rendered beyond n_tracks, from the training scores only: more training audio with the
    # same test split (its tracks and scores unchanged). scripts/mixit_curve.py uses it for the last point of
    # the MixIT data curve; the gain was too small (+0.2 dB per doubling) for the cpu preset to use it.
    extra_train: int = 0
    duration_s: float = 10.0  # length of each rendered track
    render_rate: int = 16000  # Hz of the wav files on disk
    sample_rate: int = 16000  # Hz the models see (resampled on load)
    channels: int = 1  # channels the models see (1 = mono downmix)
    clip_s: float = 1.0  # training clip length
    n_val_tracks: int = 10  # training tracks held out for validation
    min_other: int = 2  # instruments inside "other", drawn per track
    max_other: int = 5
    rest_prob: float = 0.2  # chance an instrument rests for a whole bar
    min_sounding_share: float = 0.3  # least share of the excerpt each instrument of "other" holds notes
    render_version: int = 3  # bumped when the renderer's output changes (3: no silent instruments, levelled)
    # "realistic": chords, strums and pads from the harmony, a humanised performance, several soundfonts and
    # programs, a simulated room per track and loudness-levelled wet stems (issue 20); "clean": one monophonic
    # part per instrument, dry point-source pans, one soundfont (the report's first data set).
    style: str = "realistic"
    rt60_range_s: tuple[float, float] = (0.2, 0.8)  # realistic: the room's reverberation time, drawn per track
    seed: int = 0
    max_pieces: int = 48  # music21 scores drawn on (fewer for tiny)
    source: str = "other"  # input to the AE/separation: "other" or "unmix"
    root: str | None = None  # None -> data_dir()/embedded_<signature>

    def resolved_root(self) -> Path:
        """Where this data set lives on disk (keyed by what shapes the audio)."""
        if self.root:
            return Path(self.root).expanduser().resolve()
        return paths.data_dir() / f"embedded_{self.signature()}"

    def signature(self) -> str:
        """Short hash of the fields that change the rendered audio."""
        keys = ("n_tracks", "n_test", "duration_s", "render_rate", "min_other",
                "max_other", "rest_prob", "seed", "max_pieces", "min_sounding_share", "render_version")
        if self.extra_train:  # only when set, so the roots of sets without extra tracks keep their names
            keys += ("extra_train",)
        if self.style != "clean":  # likewise: the clean render keeps the root names it always had
            keys += ("style", "rt60_range_s")
        blob = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True)
        total = self.n_tracks + self.extra_train
        return f"{total}t_{int(self.render_rate)}hz_" + hashlib.sha1(blob.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class ModelConfig:
    """SEANetVAE: encodec's SEANet encoder/decoder + a Gaussian bottleneck."""

    n_filters: int = 16
    ratios: tuple[int, ...] = (8, 5, 4, 2)  # hop = prod(ratios) samples per latent frame
    latent_dim: int = 32  # channels of the latent (the bottleneck width)
    n_residual_layers: int = 1
    lstm: int = 2  # LSTM layers at the bottleneck of SEANet
    encoder_dim: int = 64  # SEANet output channels before the mean/log-var heads
    true_skip: bool = False  # SEANet residual blocks: identity shortcut (True) or encodec's default 1x1 conv
    compress: int = 2  # SEANet residual blocks: hidden channels = channels // compress
    # Start value of the posterior log-variance (its head's bias, weights zero); None: PyTorch's init, which
    # starts near logvar 0, i.e. unit-variance noise on the latent that takes hundreds of steps to shrink.
    logvar_init: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Autoencoder training: fixed loss weights so epochs compare."""

    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 16
    clip_s: float | None = None  # seconds per training clip; None: DataConfig.clip_s (kept for old runs)
    lr: float = 1e-3  # peak learning rate
    lr_schedule: str = "constant"  # "constant", "cosine" or "onecycle" over epochs * steps_per_epoch
    lr_warmup_steps: int = 0  # linear warm-up of the learning rate
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    mse_weight: float = 1.0
    stft_weight: float = 1.0
    mel_weight: float = 0.0  # optional perceptual (mel) term
    snr_weight: float = 0.0  # per-clip negative SNR in dB (losses.neg_snr_db): quiet clips weigh as loud ones
    kl_weight: float = 1e-3
    kl_warmup_steps: int = 500  # KL weight ramps linearly from 0 over these steps
    stft_sizes: tuple[int, ...] = (256, 512, 1024)
    val_clips: int = 64
    num_workers: int = 0
    seed: int = 0
    # A safety net, not a budget (the budget is epochs x steps_per_epoch): stop and checkpoint after this wall
    # time and record the run as capped. Left out of config_hash (SAFETY_NETS).
    max_minutes: float | None = None
    torch_threads: int | None = None  # torch intra-op threads while training the autoencoder (None: torch's)


@dataclass(frozen=True)
class ClusterConfig:
    """Clustering latent frames and turning clusters into audio."""

    methods: tuple[str, ...] = ("kmeans", "agglomerative", "dbscan", "gmm", "spectral", "hdbscan")
    ks: tuple[int, ...] = (2, 3, 4)
    k_range: tuple[int, int] = (2, 6)  # searched when k is chosen by silhouette / eigengap
    embedding: str = "raw"  # "raw" latent, or "spectral" embedding as the original did
    max_fit_frames: int = 4000  # subsample for fitting; the rest are assigned
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    stft_n_fft: int = 1024
    stft_hop: int = 256
    nmf_components: int = 24
    # Inputs longer than nmf_fit_s: NMF templates are fit on an excerpt of that many seconds and the
    # activations solved nmf_chunk_s seconds at a time, so the cost grows linearly (nmf.factorise).
    nmf_fit_s: float = 20.0
    nmf_chunk_s: float = 30.0
    seed: int = 0


@dataclass(frozen=True)
class UnmixConfig:
    """The Open-Unmix first stage (mixture -> "other")."""

    pretrained: str = "umxhq"  # hub name used when weights are given locally
    weights_dir: str | None = None  # local folder with <target>.pth + <target>.json
    hidden_size: int = 128
    nb_bins_max_hz: float = 8000.0  # bandwidth of the small model
    n_fft: int = 1024
    n_hop: int = 256
    epochs: int = 8  # cpu preset: 400 steps of 16 x 1 s clips; 10-56 s per epoch on 2 shared cores
    steps_per_epoch: int = 50
    batch_size: int = 16
    clip_s: float = 1.0
    lr: float = 1e-3
    chunk_s: float = 30.0  # separation chunk length for long tracks
    seed: int = 0


@dataclass(frozen=True)
class Config:
    name: str = "cpu"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    unmix: UnmixConfig = field(default_factory=UnmixConfig)
    separator: SeparatorConfig = field(default_factory=SeparatorConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    vaebss: VAEBSSConfig = field(default_factory=VAEBSSConfig)
    deep_clustering: DeepClusteringConfig = field(default_factory=DeepClusteringConfig)

    def replace(self, **sections) -> "Config":
        """Return a copy with whole sections or section fields changed.

        ``cfg.replace(train={"kl_weight": 0.0})`` or ``cfg.replace(name="x")``.
        """
        changes = {}
        for key, value in sections.items():
            current = getattr(self, key)
            if isinstance(value, dict) and dataclasses.is_dataclass(current):
                value = dataclasses.replace(current, **value)
            changes[key] = value
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, Config] = {
    "tiny": Config(
        name="tiny",
        data=DataConfig(n_tracks=6, n_test=2, duration_s=4.0, n_val_tracks=1, clip_s=0.5,
                        max_pieces=3, max_other=3),
        model=ModelConfig(n_filters=4, ratios=(4, 4, 2), latent_dim=8, lstm=0, encoder_dim=16),
        train=TrainConfig(epochs=2, steps_per_epoch=5, batch_size=4, val_clips=4,
                          kl_warmup_steps=4, stft_sizes=(128, 256)),
        cluster=ClusterConfig(ks=(2, 3), k_range=(2, 3), max_fit_frames=500, umap_neighbors=5,
                              stft_n_fft=512, stft_hop=128, nmf_components=8),
        unmix=UnmixConfig(hidden_size=16, epochs=1, steps_per_epoch=3, batch_size=2, clip_s=1.0,
                          chunk_s=2.0, n_fft=512, n_hop=128),
        separator=SeparatorConfig(n_outputs=4, n_fft=256, hop=64, hidden=16, layers=1, clip_s=1.0, epochs=2,
                                  steps_per_epoch=3, batch_size=2, val_clips=2, chunk_s=2.0, overlap_s=0.5,
                                  k_range=(2, 3), max_minutes=None),
        student=StudentConfig(epochs=1, steps_per_epoch=2, batch_size=2, clip_s=1.0, val_clips=2,
                              max_minutes=None),
        vaebss=VAEBSSConfig(n_sources=4, n_fft=256, hop=64, hidden=16, latent_dim=4, kl_warmup_steps=2,
                            clip_s=1.0, epochs=2, steps_per_epoch=3, batch_size=2, val_clips=2, chunk_s=2.0,
                            overlap_s=0.5, max_minutes=None),
        deep_clustering=DeepClusteringConfig(n_fft=256, hop=64, hidden=16, layers=1, emb_dim=4, clip_s=1.0,
                                             epochs=2, steps_per_epoch=3, batch_size=2, val_clips=2,
                                             chunk_s=2.0, overlap_s=0.5, max_minutes=None),
    ),
    # Issue 3: hop 64 = 250 latent frames/s, no LSTM and 8 filters for the CPU budget; the waveform MSE
    # weighted x1000 so it, not the phase-blind STFT term, drives the (SNR-measured) reconstruction.
    # Issue 11 (scripts/ae_search.py, results/ae_search_cpu.csv): 32 latent channels (2x compression),
    # a cosine learning-rate schedule, the posterior log-variance started at -10 (else the decoder trains
    # on noise-drowned latents) and 0.5 s clips: twice the steps for the CPU time of the old 1600.
    # One torch thread: steady time per step whatever else runs; two threads took 4-5 s per step while
    # another process held the second core (measured on the 2-core machine).
    # Issue 11, round 4 (same CSV): two down-sampling stages of 8 instead of three of 4, no residual blocks
    # (0.042 CPU s per step instead of 0.075, and the same SNR at 3200 steps) and no STFT term (its
    # phase-blind log-magnitude part pulled against the waveform SNR); 9600 steps, ~6 min on one core.
    # Issue 21: the budget is the 9600 steps; the 40-minute cap is a safety net (>= 4x the reference
    # machine's time, outside config_hash), and a run it stops is reported as capped.
    "cpu": Config(
        name="cpu",
        model=ModelConfig(n_filters=8, ratios=(8, 8), latent_dim=32, lstm=0, encoder_dim=32,
                          n_residual_layers=0, logvar_init=-10.0),
        train=TrainConfig(epochs=96, steps_per_epoch=100, batch_size=8, clip_s=0.5, lr=4e-3,
                          lr_schedule="cosine", lr_warmup_steps=50, mse_weight=1000.0, stft_weight=0.0,
                          kl_warmup_steps=200, max_minutes=40.0, torch_threads=1),
    ),
    "paper": Config(
        name="paper",
        data=DataConfig(duration_s=30.0, render_rate=44100, sample_rate=44100, channels=2, clip_s=1.0),
        model=ModelConfig(n_filters=48, ratios=(4, 4, 4, 2), latent_dim=512, encoder_dim=512),
        train=TrainConfig(epochs=24, steps_per_epoch=500, batch_size=16, lr=3e-4,
                          stft_sizes=(512, 1024, 2048)),
        cluster=ClusterConfig(stft_n_fft=2048, stft_hop=512, max_fit_frames=8000),
        unmix=UnmixConfig(hidden_size=512, nb_bins_max_hz=16000.0, n_fft=4096, n_hop=1024,
                          epochs=100, steps_per_epoch=200, clip_s=6.0),
        separator=SeparatorConfig(n_fft=2048, hop=512, hidden=256, clip_s=4.0, epochs=100, steps_per_epoch=200,
                                  batch_size=16, max_minutes=None),
    ),
}


def get_config(name: str | None = None, **sections) -> Config:
    """The preset ``name`` (default: ``$MSS_PRESET`` or ``cpu``), with overrides.

    With ``MSS_DATA_ROOT`` set (``reproduce --root``, ``make reproduce DATA=...``), the
    preset reads that root instead of rendering its embedded set.
    """
    from_env = not name and "MSS_PRESET" in os.environ
    name = name or os.environ.get("MSS_PRESET", "cpu")
    if name not in PRESETS:
        from .errors import ConfigError

        where = " (from $MSS_PRESET)" if from_env else ""
        raise ConfigError(f"unknown preset {name!r}{where}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]
    if paths.user_root() is not None:
        cfg = cfg.replace(data={"root": str(paths.user_root())})
    return cfg.replace(**sections) if sections else cfg


def config_to_dict(cfg: Config) -> dict:
    """JSON-ready dict of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(d: dict) -> Config:
    """Inverse of :func:`config_to_dict` (lists become tuples again)."""
    def build(cls, values):
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            v = values[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
        return cls(**kwargs)

    return Config(
        name=d.get("name", "custom"),
        data=build(DataConfig, d.get("data", {})),
        model=build(ModelConfig, d.get("model", {})),
        train=build(TrainConfig, d.get("train", {})),
        cluster=build(ClusterConfig, d.get("cluster", {})),
        unmix=build(UnmixConfig, d.get("unmix", {})),
        separator=build(SeparatorConfig, d.get("separator", {})),
        student=build(StudentConfig, d.get("student", {})),
        vaebss=build(VAEBSSConfig, d.get("vaebss", {})),
        deep_clustering=build(DeepClusteringConfig, d.get("deep_clustering", {})),
    )


# Fields that stop a run on a slow machine but do not say what it computes (wall-clock safety nets):
# they stay out of config_hash, so a longer or shorter net names the same run.
SAFETY_NETS = ("max_minutes",)


def config_hash(cfg: Config, *sections: str) -> str:
    """Stable short hash of the named sections (all when none): cache keys for runs.

    The safety nets (:data:`SAFETY_NETS`) are left out: what a run computes is fixed by
    its steps, data and seeds, not by how long a machine is allowed to take.
    """
    d = config_to_dict(cfg)
    if sections:
        d = {s: d[s] for s in sections}
    for section in d.values():
        if isinstance(section, dict):
            for name in SAFETY_NETS:
                section.pop(name, None)
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def git_commit() -> str | None:
    """The current commit of the project checkout, or None outside git."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJ_ROOT,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def seed_everything(seed: int = 0) -> None:
    """Seed python, numpy and (if imported) torch."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
