"""From the MixIT separator's M outputs to k instrument estimates, without labels.

MixIT over-separates: one instrument is often spread over several outputs. The
outputs are grouped (summed within a group) by clustering per-output features:

- ``latent``: statistics of the SEANet VAE's latent frames of each output
  (the seed's latent space, used on whole sources instead of time frames):
  energy-weighted mean and standard deviation over the output's sounding frames;
- ``feature`` (non-learned): MFCC 1..19 mean and standard deviation over the
  output's sounding STFT frames (timbre; c0, the level, is left out);
- ``envelope`` (non-learned): the output's onset-strength envelope over time;
  outputs whose envelopes correlate (the same notes starting together, as when
  one instrument is split across outputs by register or by harmonics) group.

Features are standardised across the track's active outputs (envelopes are
instead centred and scaled per output, so the cosine distance between two of
them is one minus their correlation) and grouped by agglomerative clustering
(cosine distance, average linkage). Outputs below an
energy floor (``SeparatorConfig.energy_floor_db`` under the loudest output) are
*inactive*: they are left out of the clustering and join the group whose
centroid they are closest to (they carry almost no energy, and their
features are noise). ``k = auto`` picks k in ``SeparatorConfig.k_range`` by the
cosine silhouette of the active outputs.

The ``oracle`` grouping gives each output to the reference instrument with the
largest inner product (the instrument whose distance to its estimate the output
reduces most), one output at a time: a greedy oracle, close to (not exactly) the
best grouping of these outputs; it uses ground truth, so it is labelled oracle.

Without the instruments (MUSDB18) there is neither an oracle nor a true count:
:func:`label_free_groups` gives every grouping of one input at k = auto, and
:func:`label_free_findings` says what the separation rows found, from their
label-free columns alone.
"""

from __future__ import annotations

import numpy as np

from .config import Config

GROUPINGS = ("latent", "feature", "envelope")
DECODINGS = {"latent": "latent-grouped", "feature": "feature-grouped", "envelope": "envelope-grouped",
             "oracle": "oracle-grouped"}
ENVELOPE_HOP = 256  # samples between onset-strength frames
SOUNDING_DB = -30.0  # frames of an output this far below its loudest frame do not shape its features


def output_energies(outputs: np.ndarray) -> np.ndarray:
    """Energy of each output: ``(M, C, S)`` -> ``(M,)``."""
    return np.sum(np.asarray(outputs, dtype=np.float64) ** 2, axis=(1, 2))


def active_outputs(outputs: np.ndarray, floor_db: float) -> np.ndarray:
    """``(M,)`` bool: outputs whose energy is within ``floor_db`` (negative) of the loudest one."""
    e = output_energies(outputs)
    if e.max() <= 0:
        return np.zeros(len(e), dtype=bool)
    return e >= e.max() * 10 ** (floor_db / 10)


def _weighted_stats(F: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mean and std over rows of ``F`` (n, d) with weights ``w`` (n,) -> (2d,)."""
    w = w / max(w.sum(), 1e-12)
    mean = w @ F
    std = np.sqrt(np.maximum(w @ (F - mean) ** 2, 0.0))
    return np.concatenate([mean, std])


def _sounding_weights(energy: np.ndarray) -> np.ndarray:
    """Frame weights: the frame's energy where it is within SOUNDING_DB of the loudest frame, else 0."""
    if energy.max() <= 0:
        return np.ones_like(energy)
    return np.where(energy >= energy.max() * 10 ** (SOUNDING_DB / 10), energy, 0.0)


def latent_features(outputs: np.ndarray, vae) -> np.ndarray:
    """VAE latent statistics per output: ``(M, C, S)`` -> ``(M, 2 * latent_dim)``."""
    from .latents import encode_track
    from .frames import frame_energies

    feats = []
    for y in outputs:
        frames = encode_track(vae, y)  # (n_frames, D)
        w = _sounding_weights(frame_energies(y, vae.hop_length, len(frames)))
        feats.append(_weighted_stats(frames.astype(np.float64), w))
    return np.stack(feats)


def spectral_features(outputs: np.ndarray, rate: int, n_fft: int = 1024, hop: int = 256,
                      n_mfcc: int = 20) -> np.ndarray:
    """MFCC 1..n_mfcc-1 statistics per output: ``(M, C, S)`` -> ``(M, 2 * (n_mfcc - 1))``."""
    import librosa

    feats = []
    for y in outputs:
        mono = np.mean(y, axis=0).astype(np.float32)
        S = np.abs(librosa.stft(mono, n_fft=n_fft, hop_length=hop)) ** 2
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(S + 1e-12), sr=rate, n_mfcc=n_mfcc)[1:]
        w = _sounding_weights(S.sum(axis=0))
        feats.append(_weighted_stats(mfcc.T.astype(np.float64), w))
    return np.stack(feats)


def envelope_features(outputs: np.ndarray, rate: int, hop: int = ENVELOPE_HOP) -> np.ndarray:
    """Onset-strength envelope per output, centred and unit-norm: ``(M, C, S)`` -> ``(M, frames)``.

    The dot product of two rows is the correlation of the two envelopes.
    """
    import librosa

    env = np.stack([librosa.onset.onset_strength(y=np.mean(y, axis=0).astype(np.float32), sr=rate,
                                                 hop_length=hop) for y in outputs]).astype(np.float64)
    env -= env.mean(axis=1, keepdims=True)
    return env / np.maximum(np.linalg.norm(env, axis=1, keepdims=True), 1e-12)


def _standardise(F: np.ndarray) -> np.ndarray:
    F = np.asarray(F, dtype=np.float64)
    sd = F.std(axis=0)
    return (F - F.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0)


def _agglomerate(Z: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if k >= len(Z):
        return np.arange(len(Z))
    if k <= 1:
        return np.zeros(len(Z), dtype=int)
    return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(Z)


def choose_k(Z: np.ndarray, k_range: tuple[int, int]) -> tuple[int, dict]:
    """The k in ``k_range`` (inclusive, at most ``len(Z) - 1``) with the best cosine silhouette.

    Fewer than three points cannot be scored: then every point is its own group.
    """
    from sklearn.metrics import silhouette_score

    n = len(Z)
    lo, hi = max(2, k_range[0]), min(k_range[1], n - 1)
    if n < 3 or lo > hi:
        return n, {}
    scores = {}
    for k in range(lo, hi + 1):
        labels = _agglomerate(Z, k)
        scores[k] = float(silhouette_score(Z, labels, metric="cosine")) if len(set(labels)) > 1 else -1.0
    return max(scores, key=lambda k: (scores[k], -k)), scores


def group_outputs(features: np.ndarray, active: np.ndarray, k: int | None,
                  k_range: tuple[int, int] = (2, 5), standardise: bool = True) -> np.ndarray:
    """Group labels ``(M,)`` in 0..k'-1 for the outputs (``k=None``: chosen by silhouette).

    Active outputs are clustered; inactive ones join the nearest centroid
    (cosine, in the standardised space, or the features' own space when
    ``standardise=False``). When fewer outputs are active than ``k``, each
    active output is its own group (k' = number active).
    """
    F = np.asarray(features, dtype=np.float64)
    active = np.asarray(active, dtype=bool)
    if not active.any():
        active = np.ones(len(F), dtype=bool)
    if not standardise:
        Z = F[active]
    else:
        Z = _standardise(F[active]) if active.sum() > 1 else np.zeros((1, F.shape[1]))
    if k is None:
        k, _ = choose_k(Z, k_range)
    lab_active = _agglomerate(Z, min(k, len(Z)))
    labels = np.empty(len(F), dtype=int)
    labels[active] = lab_active
    if (~active).any():
        mu, sd = (F[active].mean(axis=0), F[active].std(axis=0)) if standardise else (0.0, 1.0)
        Zq = (F[~active] - mu) / np.where(sd > 1e-12, sd, 1.0)
        cents = np.stack([Z[lab_active == g].mean(axis=0) for g in range(lab_active.max() + 1)])
        sim = _unit(Zq) @ _unit(cents).T
        labels[~active] = sim.argmax(axis=1)
    return _relabel(labels)


def _unit(A: np.ndarray) -> np.ndarray:
    return A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Groups renumbered 0..k-1 in order of first appearance (no empty group numbers)."""
    _, first = np.unique(labels, return_index=True)
    order = {g: i for i, g in enumerate(labels[np.sort(first)])}
    return np.array([order[g] for g in labels], dtype=int)


def oracle_groups(outputs: np.ndarray, references: dict) -> np.ndarray:
    """ORACLE: each output to the instrument with the largest inner product ``<s_i, r_j>``.

    Adding ``s_i`` to instrument j's estimate changes its squared error by
    ``||s_i||^2 - 2 <s_i, r_j>``, so this is the greedy best assignment.
    Returns labels in 0..n-1 (index into the references' order); instruments
    that receive no output get no estimate.
    """
    R = np.stack([np.asarray(r, dtype=np.float64) for r in references.values()]).reshape(len(references), -1)
    S = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    return (S @ R.T).argmax(axis=1)


def grouped_estimates(outputs: np.ndarray, labels) -> list:
    """Sum the outputs within each group: list of ``(C, S)`` float32, one per non-empty group."""
    labels = np.asarray(labels)
    return [outputs[labels == g].sum(axis=0).astype(np.float32) for g in np.unique(labels)]


def output_features(outputs: np.ndarray, grouping: str, cfg: Config, vae=None) -> np.ndarray:
    """The features of ``grouping`` ("latent" needs the trained VAE)."""
    if grouping == "latent":
        if vae is None:
            raise ValueError("latent grouping needs the trained autoencoder (vae=None given)")
        return latent_features(outputs, vae)
    if grouping == "feature":
        return spectral_features(outputs, cfg.data.sample_rate)
    if grouping == "envelope":
        return envelope_features(outputs, cfg.data.sample_rate)
    raise ValueError(f"unknown grouping {grouping!r}; choose from {GROUPINGS}")


def label_free_groups(outputs: np.ndarray, cfg: Config, vae=None, k: int | None = None,
                      groupings=GROUPINGS) -> dict:
    """Each label-free grouping of one input's outputs at one k: ``{decoding: (M,) group labels}``.

    The groupings of :func:`mixit_settings`, keyed like its ``decoding`` ("latent-grouped", ...);
    ``k=None`` chooses k by silhouette in ``SeparatorConfig.k_range`` (what a data set without a
    true count of instruments gets). "latent" is left out when ``vae`` is None.

    Parameters
    ----------
    outputs : (M, C, S) float32, the separator's outputs
    """
    s = cfg.separator
    active = active_outputs(outputs, s.energy_floor_db)
    return {DECODINGS[g]: group_outputs(output_features(outputs, g, cfg, vae), active, k, tuple(s.k_range),
                                        standardise=g != "envelope")
            for g in groupings if g != "latent" or vae is not None}


def label_free_findings(table, n_outputs: int) -> list[str]:
    """Sentences from the seed's table (``cluster_metrics.seed_table``) of the separation rows,
    where no instrument scores them: what each k = auto setting and the ungrouped outputs found,
    and the range of the mixture MSE. Settings without any estimate are left out.

    ``table`` needs ``method``, ``decoding``, ``k_label``, ``k``, ``mixture_mse``, ``top_share``
    (the loudest estimate's energy fraction) and ``energy_shares`` (text, per rank).
    """
    def name(r) -> str:
        return r["method"] if r["decoding"] == "-" else f"{r['method']} {r['decoding']}"

    lines = []
    table = table[table["k"].notna()]
    for _, r in table[(table["k_label"] == "auto") | (table["decoding"] == "ungrouped")].iterrows():
        found = (f"all {n_outputs} outputs" if r["decoding"] == "ungrouped"
                 else f"k = auto (silhouette) gives a median of {r['k']:g} estimates per track")
        lines.append(f"{name(r)}: {found}, the loudest holding {100 * r['top_share']:.0f}% of the energy "
                     f"(median energy fraction by rank {r['energy_shares']})")
    mse = table.dropna(subset=["mixture_mse"])
    if len(mse):
        lo, hi = mse.loc[mse["mixture_mse"].idxmin()], mse.loc[mse["mixture_mse"].idxmax()]
        lines.append(f"mixture MSE (the input against the sum of the estimates), medians from "
                     f"{lo['mixture_mse']:.2g} ({name(lo)}, k = {lo['k_label']}) to "
                     f"{hi['mixture_mse']:.2g} ({name(hi)}, k = {hi['k_label']})")
    return lines


def mixit_settings(x: np.ndarray, refs: dict, ks, cfg: Config, separator, vae=None, outputs=None,
                   method: str = "mixit"):
    """Every MixIT setting of one input, in the format of ``evaluate.separate_track``.

    Yields, with ``method`` (``"mixit"``, or ``"pan_student"`` for the student taught by pan
    clustering): ``ungrouped`` (the M outputs themselves,
    k_label M); ``latent-grouped``, ``feature-grouped`` and ``envelope-grouped`` at each k of ``ks``
    (ints or "n") and at ``auto``; ``oracle-grouped`` at n (with ground truth).
    Each setting also carries ``groups``: the group of every output.

    Parameters
    ----------
    x : (C, S) float32 input
    refs : dict name -> (C, S), the instruments ({} without ground truth)
    separator : MixITSeparator (``separator.load_separator``)
    vae : SEANetVAE for the latent grouping (``None`` skips it)
    outputs : optional precomputed ``(M, C, S)`` outputs
    """
    from .separator import separate_outputs

    s = cfg.separator
    if outputs is None:
        outputs = separate_outputs(separator, x, s.chunk_s, s.overlap_s, cfg.data.sample_rate)
    M = len(outputs)
    active = active_outputs(outputs, s.energy_floor_db)

    def setting(decoding, labels, k_label):
        ests = grouped_estimates(outputs, labels)
        return {"method": method, "decoding": decoding, "k": len(ests), "k_label": k_label,
                "estimates": ests, "labels": None, "groups": np.asarray(labels),
                "n_active": int(active.sum())}

    yield setting("ungrouped", np.arange(M), str(M))
    for grouping in GROUPINGS:
        if grouping == "latent" and vae is None:
            continue
        F = output_features(outputs, grouping, cfg, vae)
        for k in list(ks) + ["auto"]:
            if k == "n" and not refs:
                continue
            kk = None if k == "auto" else (len(refs) if k == "n" else int(k))
            if kk is not None and kk < 1:
                continue
            labels = group_outputs(F, active, kk, tuple(s.k_range), standardise=grouping != "envelope")
            yield setting(DECODINGS[grouping], labels, str(k))
    if refs:
        yield setting(DECODINGS["oracle"], oracle_groups(outputs, refs), "n")


__all__ = ["GROUPINGS", "DECODINGS", "active_outputs", "output_energies", "latent_features", "envelope_features",
           "spectral_features", "choose_k", "group_outputs", "oracle_groups", "grouped_estimates",
           "output_features", "label_free_groups", "label_free_findings",
           "mixit_settings"]
