"""The settings of the learned separators: config sections of :class:`mss_helpers.config.Config`.

MixIT (``separator``), its teacher-student round (``student``), VAE-BSS
(``vaebss``) and deep clustering (``deep_clustering``). Frozen dataclasses that
import nothing of the package; :mod:`mss_helpers.config` groups them with the
others and names the presets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeparatorConfig:
    """The MixIT separator (:mod:`mss_helpers.separator`) and the grouping of its outputs."""

    n_outputs: int = 8  # M; the loss searches all 2^M partitions
    n_fft: int = 512
    hop: int = 128
    arch: str = "blstm"  # mask network: "blstm" or "tdcn" (dilated conv blocks)
    hidden: int = 128  # BLSTM units per direction / TDCN channels
    layers: int = 2  # BLSTM layers / TDCN dilations per repeat (1, 2, ..., 2^(layers-1), twice)
    clip_s: float = 2.0  # length of each excerpt of a mixture of mixtures
    gain_db: float = 5.0  # each excerpt scaled by a gain drawn from +-gain_db
    # "any" (MixIT): any two training tracks. "disjoint": an ABLATION using metadata MixIT must not use,
    # only tracks with no instrument name in common are paired (validation pairs stay "any").
    pairing: str = "any"
    snr_max_db: float = 30.0  # soft threshold of the negative-SNR loss
    output_penalty: float = 0.0  # weight of the active-output penalty (0: off)
    train_tracks: int | None = None  # train on only the first N training tracks (None: all; the data curve)
    epochs: int = 20  # 2000 steps: ~0.3 s/step on an idle 2-core machine
    steps_per_epoch: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant", "cosine" or "onecycle" (train.lr_factor) over all the steps
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    val_clips: int = 32
    # Safety net only (>= 4x the 10 min the 2000 steps take on the reference machine); a capped run is
    # recorded as such and left out of config_hash (SAFETY_NETS).
    max_minutes: float | None = 40.0
    chunk_s: float = 10.0  # separating long audio: chunk and overlap (overlap-add)
    overlap_s: float = 1.0
    energy_floor_db: float = -25.0  # outputs this far below the loudest are inactive (k = auto)
    k_range: tuple[int, int] = (2, 5)  # searched for k = auto
    seed: int = 0


@dataclass(frozen=True)
class StudentConfig:
    """The teacher-student round of the MixIT separator (:mod:`mss_helpers.separator_student`)."""

    n_outputs: int = 4  # the student's outputs; the teacher's groups are at most this many
    # where the pseudo-sources come from: "mixit" (the MixIT separator's outputs, grouped by `grouping`)
    # or "pan" (pan clustering of the stereo "other", mss_helpers.spatial; the student still hears mono)
    teacher: str = "mixit"
    grouping: str = "feature"  # how the teacher's outputs are grouped into pseudo-sources (teacher "mixit")
    pseudo_k: int | None = None  # groups per track (None: k = auto, by silhouette, at most n_outputs)
    init_from_teacher: bool = True  # start from the teacher's weights (all but the output layer)
    clip_s: float = 2.0
    gain_db: float = 5.0
    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    grad_clip: float = 5.0
    val_clips: int = 32
    max_minutes: float | None = 40.0  # safety net only, as SeparatorConfig.max_minutes
    seed: int = 0


@dataclass(frozen=True)
class VAEBSSConfig:
    """A VAE whose latent space is made of sources (Neri et al. 2021; :mod:`mss_helpers.vaebss`).

    An inference network maps the mixture's log-magnitude STFT to K latent sources, one shared decoder
    maps each to a source magnitude, the decoded sources sum to the mixture (Laplace likelihood) and
    each latent source has an N(0, I) prior (beta-VAE). Trained on "other" only, never on instruments.
    """

    n_sources: int = 6  # K; may exceed the true count (meant to leave surplus sources silent)
    n_fft: int = 512  # 1024/256 separated worse in 1500-step trials (validation: 0.4-0.5 dB vs 0.9 dB)
    hop: int = 128
    hidden: int = 128  # inference network units (BLSTM per direction, decoder MLP width)
    # per source and frame: low, so one source cannot hold a whole mixture. 2500-step trials, median
    # SI-SDRi on the training split's validation tracks (ungrouped / grouped to k = n): 8 -> 0.8 / 0.4 dB,
    # 4 -> 1.0 / 0.6 dB, 2 -> 0.4 / 0.8 dB; a per-clip latent of 8 beside 4 per frame: 0.8 / 0.8 dB.
    latent_dim: int = 4
    logvar_init: float = -6.0  # start value of the posterior log-variance (its head's bias, weights zero)
    # KL weight against a Laplace likelihood of scale 1 in mean-normalised magnitudes. beta 1 (and 200
    # warm-up steps) collapsed every posterior onto the prior (KL ~1 nat/frame, no separation); 0.02-0.1
    # with a 1000-step warm-up did not.
    beta: float = 0.02
    kl_warmup_steps: int = 1000
    clip_s: float = 2.0
    epochs: int = 25  # 2500 steps: ~0.14 CPU s/step (1 thread), ~6 min on the reference machine
    steps_per_epoch: int = 100
    batch_size: int = 8
    lr: float = 3e-3
    lr_schedule: str = "cosine"  # "constant", "cosine" or "onecycle" (train.lr_factor) over all the steps
    grad_clip: float = 5.0
    val_clips: int = 32
    torch_threads: int | None = 1  # torch intra-op threads while training (None: torch's); 1: steady, 2 cores
    max_minutes: float | None = 40.0  # safety net only (SAFETY_NETS)
    chunk_s: float = 10.0  # separating long audio
    overlap_s: float = 1.0
    energy_floor_db: float = -25.0  # sources this far below the loudest are inactive (k = auto)
    seed: int = 0


@dataclass(frozen=True)
class DeepClusteringConfig:
    """Deep clustering (Hershey et al. 2016; :mod:`mss_helpers.deep_clustering`): the LABELLED reference.

    A BLSTM embeds every time-frequency bin of "other"; trained with the affinity loss against the ideal
    binary masks of the training split's instruments; k-means on a test track's embeddings gives the masks.
    """

    n_fft: int = 512
    hop: int = 128
    hidden: int = 128  # BLSTM units per direction
    layers: int = 2
    emb_dim: int = 20
    active_db: float = -40.0  # bins this far below the clip's loudest bin are left out of loss and k-means
    # weight of an active bin in the loss: "binary" (1, Hershey et al.) or "magnitude" (its magnitude: the
    # loud bins that carry the energy count most, Wang, Le Roux & Hershey, ICASSP 2018)
    weighting: str = "binary"
    clip_s: float = 1.0  # 0.26 CPU s per step at 1 s (batch 8, one thread), 0.68 at 2 s
    # 1200 steps, ~0.26 CPU s each on one thread: ~5.5 min. The validation loss stops falling after a few
    # hundred steps on the realistic set (measured up to 1600), so the budget's margin is kept.
    epochs: int = 12
    steps_per_epoch: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant", "cosine" or "onecycle" (train.lr_factor) over all the steps
    grad_clip: float = 5.0
    val_clips: int = 32
    torch_threads: int | None = 1  # torch intra-op threads while training (None: torch's); steady on 2 cores
    max_minutes: float | None = 40.0  # safety net only (SAFETY_NETS)
    chunk_s: float = 10.0  # separating long audio: chunk and overlap (cross-faded)
    overlap_s: float = 1.0
    fit_bins: int = 50000  # k-means is fitted on at most this many active bins of the whole input
    mask_temperature: float = 0.0  # 0: binary masks (nearest centroid); > 0: softmax(-distance^2 / this)
    soft_temperature: float = 0.2  # the table's soft row: masks softmax(-distance^2 / this) (hard row: binary)
    k_range: tuple[int, int] = (2, 5)  # searched for k = auto (silhouette)
    seed: int = 0
