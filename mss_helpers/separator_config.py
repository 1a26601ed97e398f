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

    n_sources: int = 6  # K; may exceed the true count (surplus sources go silent)
    n_fft: int = 512
    hop: int = 128
    hidden: int = 128  # inference network units
    latent_dim: int = 16  # per source and frame
    beta: float = 1.0  # weight of the KL terms
    kl_warmup_steps: int = 200
    clip_s: float = 2.0
    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    grad_clip: float = 5.0
    val_clips: int = 32
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
    clip_s: float = 2.0
    epochs: int = 20
    steps_per_epoch: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    grad_clip: float = 5.0
    val_clips: int = 32
    max_minutes: float | None = 40.0  # safety net only (SAFETY_NETS)
    chunk_s: float = 10.0
    overlap_s: float = 1.0
    seed: int = 0
