"""A teacher-student round for the MixIT separator: a student trained on the teacher's grouped outputs.

MixIT over-separates (8 outputs for about 3 instruments) and its outputs must be
grouped afterwards. A teacher-student round (Zhang et al., Interspeech 2021,
"Teacher-student MixIT for unsupervised and semi-supervised speech separation")
turns the grouping into training targets, still without a label:

1. The trained MixIT separator (the *teacher*) splits every *training* track's
   "other" into its ``M`` outputs, and they are grouped into ``k`` pseudo-sources
   without labels (:func:`separator_group.group_outputs` with ``k = auto`` on the
   MFCC statistics of the outputs, or the VAE latent statistics); the grouping
   is done once per whole track, so a pseudo-source is the same group all along it.
2. A *student* (the same mask network, ``StudentConfig.n_outputs`` outputs,
   started from the teacher's weights) learns to split excerpts of the single,
   real "other" (not a mixture of mixtures: the condition it will be used in)
   into those pseudo-sources, with a permutation-invariant thresholded negative
   SNR; outputs left without a pseudo-source are asked for silence
   (``10 log10(||s||^2 + tau ||x||^2)``, Wisdom et al.'s loss for empty references).

Only ``other.wav`` of the training tracks is read, as for the teacher. The
student's outputs are grouped and scored exactly like the teacher's
(``scripts/mixit_student.py``, ``results/mixit_student_<preset>.csv``).

The pseudo-sources can come from another label-free teacher
(``StudentConfig.teacher``): ``"pan"`` splits each training track's *stereo*
``other.wav`` by pan clustering (:mod:`spatial`), and the student, which hears
only the mono downmix, learns to give the same split. The table's
``pan_student`` is that student (:data:`PAN_STUDENT`, ``train-student``). The
ABLATION ``"stems"`` reads the true instruments (a supervised student): what
the network learns in the same budget when the targets are right; scripts only.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from . import paths
from .config import Config, config_hash, config_to_dict
from .errors import ConfigError
from .separator import EPS, MixITSeparator, load_mask_network, neg_snr_db

# where pseudo-sources come from (StudentConfig.teacher); "stems" is an ABLATION that reads the
# instrument stems (a supervised student: the ceiling of this network and budget), never a table row
TEACHERS = ("mixit", "pan", "stems")

# --- pseudo-sources --------------------------------------------------------------------------


def pseudo_sources(teacher, x: np.ndarray, cfg: Config, grouping: str = "feature", vae=None) -> np.ndarray:
    """The teacher's outputs of one track grouped without labels: ``(K, C, S)`` float32.

    ``cfg.student.pseudo_k`` groups, or k = auto (silhouette) when it is None;
    at most ``cfg.student.n_outputs`` groups either way.
    """
    from .separator import separate_outputs
    from .separator_group import active_outputs, group_outputs, grouped_estimates, output_features

    s = cfg.separator
    outputs = separate_outputs(teacher, x, s.chunk_s, s.overlap_s, cfg.data.sample_rate)
    active = active_outputs(outputs, s.energy_floor_db)
    F = output_features(outputs, grouping, cfg, vae)
    k_range = (s.k_range[0], min(s.k_range[1], cfg.student.n_outputs))
    k = None if cfg.student.pseudo_k is None else min(cfg.student.pseudo_k, cfg.student.n_outputs)
    labels = group_outputs(F, active, k, k_range, standardise=grouping != "envelope")
    groups = grouped_estimates(outputs, labels)[:cfg.student.n_outputs]
    return np.stack(groups).astype(np.float32)


def pan_pseudo_sources(x: np.ndarray, cfg: Config, name: str = "audio") -> np.ndarray:
    """Pseudo-sources of one track from its stereo image: ``(K, C, S)`` float32, C = the model's channels.

    ``x`` is the stereo ``(2, S)`` "other"; it is split by pan clustering
    (:func:`spatial.separate_pan`, the table's STFT) into ``cfg.student.pseudo_k`` parts, or k = auto by
    silhouette, at most ``cfg.student.n_outputs``; the parts are of the downmix the student hears.
    """
    from .spatial import separate_pan

    st, c = cfg.student, cfg.cluster
    k_range = (2, max(2, min(cfg.separator.k_range[1], st.n_outputs)))
    k = None if st.pseudo_k is None else min(st.pseudo_k, st.n_outputs)
    parts, _ = separate_pan(x, k, c.stft_n_fft, c.stft_hop, k_range=k_range, out_channels=cfg.data.channels,
                            seed=st.seed, name=name)
    return parts


class PseudoSourceClips(torch.utils.data.Dataset):
    """Excerpts of single tracks with their pseudo-sources.

    Items are ``(sources (M, C, L), valid (M,))``: the pseudo-sources of one
    excerpt, scaled by one random gain, zero-padded to ``M`` rows; ``valid``
    marks the rows that hold a pseudo-source. The input is their sum.
    """

    def __init__(self, sources: list, n_outputs: int, clip: int, n_items: int, seed: int = 0,
                 gain_db: float = 5.0, random: bool = True):
        short = [i for i, s in enumerate(sources) if s.shape[-1] < clip]
        if short:
            raise ValueError(f"tracks {short} are shorter than one clip of {clip} samples")
        if any(len(s) > n_outputs for s in sources):
            raise ValueError(f"a track has more pseudo-sources than the student's {n_outputs} outputs")
        self.sources, self.M, self.clip, self.n_items = sources, int(n_outputs), int(clip), int(n_items)
        self.seed, self.gain_db, self.random, self._epoch = seed, gain_db, random, 0

    def __len__(self) -> int:
        return self.n_items

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, index] + ([self._epoch, 2] if self.random else []))
        src = self.sources[int(rng.integers(len(self.sources)))]
        for _ in range(4):  # redraw nearly silent excerpts
            start = int(rng.integers(0, src.shape[-1] - self.clip + 1))
            clip = src[:, :, start:start + self.clip]
            if float(np.mean(clip.sum(0) ** 2)) > 1e-6:
                break
        clip = clip * np.float32(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))
        out = np.zeros((self.M,) + clip.shape[1:], dtype=np.float32)
        out[:len(clip)] = clip
        valid = np.zeros(self.M, dtype=np.float32)
        valid[:len(clip)] = 1.0
        return torch.from_numpy(out), torch.from_numpy(valid)


# --- the loss --------------------------------------------------------------------------------


def permutations(n: int) -> torch.Tensor:
    """All ``n!`` permutations of ``range(n)``: ``(n!, n)`` long."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long)


def pit_loss(outputs: torch.Tensor, sources: torch.Tensor, valid: torch.Tensor, snr_max_db: float = 30.0):
    """Permutation-invariant thresholded negative SNR against pseudo-sources, silence for empty rows.

    Parameters
    ----------
    outputs, sources : (B, M, ...) estimates and zero-padded pseudo-sources
    valid : (B, M) 1 where ``sources`` holds a pseudo-source

    Returns
    -------
    loss : scalar, the batch mean of the best permutation's summed cost (dB)
    perm : (B, M) the best permutation (output ``perm[b, j]`` went to source ``j``)

    A valid row costs ``neg_snr_db(||s_j - out_i||^2, ||s_j||^2)``; an empty row
    ``10 log10(||out_i||^2 + tau ||x||^2) - 10 log10(||x||^2)`` with ``x`` the input
    (the sum of the sources), which is cheapest when the output is silent.
    """
    B, M = outputs.shape[:2]
    o = outputs.reshape(B, M, -1)
    s = sources.reshape(B, M, -1).to(o.dtype)
    err = ((o[:, :, None] - s[:, None]) ** 2).sum(-1)  # (B, out i, source j)
    ref = (s ** 2).sum(-1)  # (B, M)
    xx = (s.sum(1) ** 2).sum(-1)  # (B,)
    full = neg_snr_db(err, ref[:, None, :], snr_max_db)
    tau = 10.0 ** (-snr_max_db / 10.0)
    empty = 10 * torch.log10((o ** 2).sum(-1) + tau * xx[:, None] + EPS) - 10 * torch.log10(xx[:, None] + EPS)
    v = valid[:, None, :].to(o.dtype)
    cost = v * full + (1 - v) * empty[:, :, None]  # (B, i, j)
    P = permutations(M).to(o.device)  # (P, M): source j gets output P[p, j]
    total = cost[:, P, torch.arange(M, device=o.device)].sum(-1)  # (B, P)
    best, idx = total.min(dim=1)
    return best.mean(), P[idx]


def pit_loss_fn(cfg: Config):
    """``loss_fn(model, batch, step)`` for :func:`train.fit` on ``(sources, valid)`` batches."""
    snr_max = cfg.separator.snr_max_db

    def loss_fn(model, batch, step):
        sources, valid = batch
        out = model(sources.sum(dim=1))
        loss, _ = pit_loss(out, sources, valid, snr_max)
        return loss, {"pit": float(loss.detach()), "pseudo_sources": float(valid.sum(1).mean())}

    return loss_fn


# --- runs ------------------------------------------------------------------------------------


def student_run_dir(cfg: Config, root=None) -> Path:
    """``runs/student_<preset>_<hash>``: keyed by the data, the teacher's and the student's settings
    (and by :func:`datasets.data_key` of a root other than the preset's own set)."""
    from .datasets import data_key

    key = config_hash(cfg.replace(data={"source": "other"}), "data", "separator", "student")
    return paths.runs_dir() / f"student_{cfg.name}_{key}{data_key(cfg, root)}"


def _pseudo_sets(cfg: Config, root, teacher, vae=None, progress: bool = True):
    """Pseudo-sources of the training and validation tracks (the teacher's split; only ``other.wav``).

    Teacher "mixit": the separator's grouped outputs on the model's input; teacher "pan": pan clustering
    of the stereo ``other.wav`` (:func:`pan_pseudo_sources`).
    """
    from tqdm.auto import tqdm

    from .mixit_data import load_other, split_tracks

    train_tracks, val_tracks = split_tracks(cfg, root)
    pan = cfg.student.teacher == "pan"
    if cfg.student.teacher == "stems":  # ABLATION: the true instruments, at most n_outputs of them
        rate, channels = cfg.data.sample_rate, cfg.data.channels
        return [[np.stack(list(t.other_stems(rate=rate, channels=channels).values())[:cfg.student.n_outputs])
                 for t in group] for group in (train_tracks, val_tracks)]
    sets = []
    for name, group in (("train", train_tracks), ("validation", val_tracks)):
        audio = load_other(group, cfg, channels=2 if pan else None)
        sets.append([pan_pseudo_sources(x, cfg, f"track {t.name!r}, stem 'other'") if pan
                     else pseudo_sources(teacher, x, cfg, cfg.student.grouping, vae)
                     for t, x in tqdm(list(zip(group, audio)), desc=f"pseudo-sources ({name})",
                                      disable=not progress, leave=False)])
    return sets


def train_student(cfg: Config, root=None, teacher_run=None, run_dir=None, resume: bool = False,
                  force: bool = False, progress: bool = True, vae=None) -> Path:
    """Train (or reuse) the student of ``cfg``'s separator; return its run folder.

    The teacher is the finished MixIT run of ``cfg`` (``teacher_run``: its folder,
    default :func:`separator.separator_run_dir`); it must exist.
    """
    from torch.utils.data import DataLoader

    from . import datasets
    from .separator import load_separator, separator_run_dir
    from .train import finished_run, fit

    st = cfg.student
    if st.n_outputs < 2 or st.n_outputs > 6:
        raise ConfigError(f"student.n_outputs must be between 2 and 6 (n! permutations), got {st.n_outputs}")
    if st.teacher not in TEACHERS:
        raise ConfigError(f"student.teacher must be one of {', '.join(TEACHERS)}, got {st.teacher!r}")
    if st.teacher == "mixit" and st.grouping == "latent" and vae is None:
        raise ConfigError("student.grouping 'latent' needs the trained autoencoder (pass vae=)")
    run_dir = Path(run_dir) if run_dir else student_run_dir(cfg, root)
    if finished_run(run_dir, force, resume):
        return run_dir
    teacher = None
    if st.teacher == "mixit" or st.init_from_teacher:
        # the teacher trained on the same data (RunNotFoundError names train-separator)
        teacher = load_separator(cfg, run_dir=teacher_run or separator_run_dir(cfg, root))
    root = Path(root) if root else datasets.ensure_dataset(cfg)
    train_src, val_src = _pseudo_sets(cfg, root, teacher, vae, progress)
    clip = int(round(st.clip_s * cfg.data.sample_rate))
    train_ds = PseudoSourceClips(train_src, st.n_outputs, clip, st.steps_per_epoch * st.batch_size,
                                 seed=st.seed, gain_db=st.gain_db)
    val_ds = PseudoSourceClips(val_src, st.n_outputs, clip, st.val_clips, seed=st.seed + 1,
                               gain_db=st.gain_db, random=False)
    torch.manual_seed(st.seed)
    model = MixITSeparator(_student_separator_config(cfg))
    if st.init_from_teacher:
        shared = {k: v for k, v in teacher.state_dict().items() if not k.startswith("out.")}
        model.load_state_dict(shared, strict=False)
    counts = [len(s) for s in train_src]
    fit(model, pit_loss_fn(cfg), DataLoader(train_ds, batch_size=st.batch_size, drop_last=True),
        DataLoader(val_ds, batch_size=st.batch_size), run_dir, epochs=st.epochs,
        steps_per_epoch=st.steps_per_epoch, lr=st.lr, weight_decay=0.0, grad_clip=st.grad_clip, seed=st.seed,
        config={**config_to_dict(cfg), "data_root": str(root), "teacher_run": str(teacher and teacher_run or ""),
                "pseudo_sources_per_track": {str(k): counts.count(k) for k in sorted(set(counts))}},
        resume=resume, max_minutes=st.max_minutes, progress=progress, device="cpu")
    return run_dir


# The table's pan-taught student (evaluate --methods pan_student): pseudo-sources from pan clustering of
# the stereo "other" (k = auto), five outputs, trained from scratch on the mono downmix.
PAN_STUDENT = {"teacher": "pan", "init_from_teacher": False, "n_outputs": 5}


def pan_student_config(cfg: Config) -> Config:
    """``cfg`` with the student settings of the table's pan-taught student (:data:`PAN_STUDENT`)."""
    return cfg.replace(student=PAN_STUDENT)


def pan_student_run_dir(cfg: Config) -> Path:
    return student_run_dir(pan_student_config(cfg))


def ensure_pan_student(cfg: Config, root=None, progress: bool = True) -> Path:
    """The finished pan-taught student of ``cfg``: reused when cached, trained (or resumed) now otherwise."""
    from .train import interrupted

    pcfg = pan_student_config(cfg)
    return train_student(pcfg, root=root, resume=interrupted(student_run_dir(pcfg, root)), progress=progress)


def load_pan_student(cfg: Config, which: str = "last") -> MixITSeparator:
    """The trained pan-taught student of ``cfg``; a clear error names the command that trains it."""
    pcfg = pan_student_config(cfg)
    return load_mask_network(student_run_dir(pcfg), which, _student_separator_config,
                             f"no trained pan-taught student at {student_run_dir(pcfg)}; train it with "
                             f"`python -m mss_helpers train-student --preset {cfg.name}`")


def add_arguments(parser) -> None:
    """Arguments of ``python -m mss_helpers train-student`` (the table's pan-taught student)."""
    parser.add_argument("--preset", default=None, help="tiny, cpu or paper (default: $MSS_PRESET or cpu)")
    parser.add_argument("--root", default=None, help="data set root (default: the preset's embedded set)")
    parser.add_argument("--force", action="store_true", help="train again even if a finished run exists")


def run(args) -> int:
    """Train (or reuse) the pan-taught student and print its run folder."""
    from .config import get_config

    from .train import interrupted

    pcfg = pan_student_config(get_config(args.preset))
    resume = interrupted(student_run_dir(pcfg, args.root)) and not args.force
    print(f"run: {train_student(pcfg, root=args.root, resume=resume, force=args.force)}")
    return 0


def _student_separator_config(cfg: Config):
    import dataclasses

    return dataclasses.replace(cfg.separator, n_outputs=cfg.student.n_outputs)


def load_student(cfg: Config, run_dir=None, which: str = "last") -> MixITSeparator:
    """The trained student of ``cfg`` (eval mode, CPU); a clear error says how to train it."""
    run_dir = Path(run_dir) if run_dir else student_run_dir(cfg)
    return load_mask_network(run_dir, which, _student_separator_config,
                             f"no trained MixIT student at {run_dir}; train it with "
                             f"`python scripts/mixit_student.py --preset {cfg.name}`")
