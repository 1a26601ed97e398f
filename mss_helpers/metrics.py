"""Signal metrics: how close one waveform is to another (the autoencoder's reconstruction).

:func:`mse`, :func:`snr_db`, :func:`spectral_mse`, :func:`cosine`,
:func:`si_sdr` and :func:`reconstruction_metrics` (all five at once), plus the
input checks the other metric modules share. Numpy/scipy only, so it sits on
the floor of the model and its losses: training reports these numbers.
Scoring separations (matching estimates to references, BSS-eval) is
:mod:`mss_helpers.separation_metrics`; measures without ground truth and of
latent spaces are :mod:`mss_helpers.cluster_metrics`.

Audio is a float numpy array of shape ``(channels, samples)``; unless a
function says otherwise, channels are flattened together (one number per
signal, not per channel). Every metric raises :class:`ValueError` naming the
input when it would otherwise return NaN or an infinity from bad input
(different shapes, a silent reference, non-finite samples).

Ratios in dB are capped at ``+-cap_db`` (100 dB by default) so that a perfect
estimate (identical, or a scaled copy for the scale-invariant SI-SDR) gives
+100 dB and an estimate with nothing of the reference in it (orthogonal or
all zeros) gives -100 dB, instead of infinities that break means and the
Hungarian matching.
"""

from __future__ import annotations

import math

import numpy as np

LOG_EPS = 1e-7  # added to STFT magnitudes before the natural log (spectral_mse)


# --------------------------------------------------------------------------- checks


def as_audio(x, name: str) -> np.ndarray:
    """``x`` as float64 ``(channels, samples)``; 1-D input is one channel."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be (channels, samples) audio, got shape {a.shape}")
    if a.shape[1] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or infinite samples")
    return a


def _pair(ref, est) -> tuple[np.ndarray, np.ndarray]:
    r, e = as_audio(ref, "ref"), as_audio(est, "est")
    if r.shape != e.shape:
        raise ValueError(f"ref and est differ in shape: ref {r.shape} vs est {e.shape} "
                         "(trim or pad the estimate to the reference first)")
    return r, e


def estimate_stack(estimates, name: str = "estimates") -> np.ndarray:
    """K same-shape signals as float64 ``(K, channels, samples)``, each checked by :func:`as_audio`.

    ``estimates`` : a list of (channels, samples) or (samples,) arrays, or one
    (K, channels, samples) or (K, samples) array.
    """
    if len(estimates) == 0:
        raise ValueError(f"{name} is empty")
    shapes = {np.shape(e) for e in estimates}
    if len(shapes) != 1:
        raise ValueError(f"{name} differ in shape: {sorted(shapes)}")
    return np.stack([as_audio(e, f"{name}[{j}]") for j, e in enumerate(estimates)])


def signal_energy(x: np.ndarray) -> float:
    """Sum of squared samples."""
    return float(np.sum(x * x))


def require_sound(x: np.ndarray, name: str) -> None:
    """:class:`ValueError` naming ``name`` when ``x`` is all zeros (a ratio to it is undefined)."""
    if not np.any(x):
        raise ValueError(f"{name} is silent (all zeros): the ratio is undefined")


def capped_db(num: float, den: float, cap_db: float) -> float:
    """10 log10(num / den) clipped to [-cap_db, cap_db].

    num == 0 (nothing of the target) gives -cap_db, else den == 0 gives +cap_db.
    """
    if num <= 0.0:
        return -float(cap_db)
    if den <= 0.0:
        return float(cap_db)
    return float(np.clip(10.0 * math.log10(num / den), -cap_db, cap_db))


# --------------------------------------------------------------------------- STFT


def stft_mag(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Magnitude STFT, ``(channels, n_fft // 2 + 1, frames)``.

    Periodic Hann window, no normalisation, centred frames with reflect padding
    (the torch.stft / librosa.stft conventions).
    """
    from scipy.signal import get_window

    if n_fft < 2 or hop < 1:
        raise ValueError(f"n_fft must be >= 2 and hop >= 1, got n_fft={n_fft}, hop={hop}")
    if audio.shape[1] <= n_fft // 2:
        raise ValueError(f"audio has {audio.shape[1]} samples, too short for an STFT of "
                         f"n_fft={n_fft} (needs more than {n_fft // 2})")
    padded = np.pad(audio, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=1)[:, ::hop]
    # frames: (channels, n_frames, n_fft)
    spec = np.fft.rfft(frames * get_window("hann", n_fft), axis=-1)  # (channels, n_frames, bins)
    return np.abs(spec).transpose(0, 2, 1)  # (channels, bins, n_frames)


# --------------------------------------------------------------------------- reconstruction


def mse(ref, est) -> float:
    """Mean squared error over all channels and samples.

    Parameters
    ----------
    ref, est : (channels, samples) float
        Reference and estimate of the same shape. A silent reference is allowed
        here (the MSE is still defined).
    """
    r, e = _pair(ref, est)
    return float(np.mean((r - e) ** 2))


def snr_db(ref, est, cap_db: float = 100.0) -> float:
    """Signal-to-noise ratio ``10 log10(|ref|^2 / |ref - est|^2)`` in dB.

    Not scale invariant: a gain error counts as noise. Capped at ``cap_db``
    (an identical estimate gives exactly ``cap_db``) and at ``-cap_db``.

    Parameters
    ----------
    ref, est : (channels, samples) float
    cap_db : float
        Largest magnitude returned, dB.

    Raises
    ------
    ValueError
        Shapes differ, non-finite samples, or a silent reference.
    """
    r, e = _pair(ref, est)
    require_sound(r, "ref")
    return capped_db(signal_energy(r), signal_energy(r - e), cap_db)


def spectral_mse(ref, est, n_fft: int = 1024, hop: int = 256) -> float:
    """Mean squared difference of natural-log STFT magnitudes.

    ``mean((ln(|STFT(ref)| + 1e-7) - ln(|STFT(est)| + 1e-7))^2)`` over
    channels, frequency bins and frames; the STFT uses a periodic Hann window of
    ``n_fft`` samples, hop ``hop``, centred frames and no normalisation. Its
    unit is squared nepers (log-magnitude units), the kind of number the seed's
    13.70 is; with these conventions, values are comparable only at the same
    ``n_fft``. The 1e-7 floor keeps silent bins finite, so a silent estimate
    scores high rather than infinite.

    Parameters
    ----------
    ref, est : (channels, samples) float
    n_fft, hop : int
        STFT window and hop, samples.
    """
    r, e = _pair(ref, est)
    lr = np.log(stft_mag(r, n_fft, hop) + LOG_EPS)
    le = np.log(stft_mag(e, n_fft, hop) + LOG_EPS)
    return float(np.mean((lr - le) ** 2))


def cosine(ref, est) -> float:
    """Cosine similarity of the flattened signals, in [-1, 1].

    Raises
    ------
    ValueError
        Shapes differ, non-finite samples, or either signal is silent.
    """
    r, e = _pair(ref, est)
    require_sound(r, "ref")
    require_sound(e, "est")
    value = float(np.sum(r * e) / (np.linalg.norm(r) * np.linalg.norm(e)))
    return float(np.clip(value, -1.0, 1.0))


def si_sdr(ref, est, cap_db: float = 100.0) -> float:
    """Scale-invariant SDR in dB (Le Roux et al., 2019), no zero-mean step.

    ``alpha = <est, ref> / |ref|^2``, ``target = alpha ref``,
    ``SI-SDR = 10 log10(|target|^2 / |est - target|^2)``, with one ``alpha``
    for all channels together. The signals are used as given: no mean is
    removed (fast_bss_eval's ``zero_mean=False``). Capped at ``+-cap_db``: a
    scaled copy gives ``+cap_db``; an orthogonal or all-zero estimate, which
    holds nothing of the reference, gives ``-cap_db``.

    Parameters
    ----------
    ref, est : (channels, samples) float
    cap_db : float
        Largest magnitude returned, dB.

    Raises
    ------
    ValueError
        Shapes differ, non-finite samples, or a silent reference.
    """
    r, e = _pair(ref, est)
    require_sound(r, "ref")
    return si_sdr_checked(r, e, cap_db)


def si_sdr_checked(r: np.ndarray, e: np.ndarray, cap_db: float) -> float:
    """SI-SDR (dB, capped) of arrays already checked by :func:`as_audio` and :func:`require_sound`."""
    alpha = np.sum(e * r) / signal_energy(r)
    target = alpha * r
    return capped_db(signal_energy(target), signal_energy(e - target), cap_db)


def _stft_size(rate: int) -> tuple[int, int]:
    """STFT of about 64 ms (power of two) with a quarter hop: 1024/256 at 16 kHz."""
    n_fft = 2 ** int(round(math.log2(0.064 * rate)))
    return n_fft, n_fft // 4


def reconstruction_metrics(ref, est, rate: int) -> dict[str, float]:
    """All reconstruction metrics of one estimate against its reference.

    Parameters
    ----------
    ref, est : (channels, samples) float
    rate : int
        Sample rate, Hz. Sets the spectral MSE's STFT to about 64 ms
        (n_fft 1024, hop 256 at 16 kHz; 2048/512 at 44.1 kHz) so the number
        means the same time resolution at any rate.

    Returns
    -------
    dict
        ``{"mse", "snr_db", "spectral_mse", "cosine", "si_sdr_db"}``.
    """
    if not rate or rate <= 0:
        raise ValueError(f"rate must be a positive number of Hz, got {rate!r}")
    r, e = _pair(ref, est)
    require_sound(r, "ref")
    n_fft, hop = _stft_size(int(rate))
    return {
        "mse": mse(r, e),
        "snr_db": snr_db(r, e),
        "spectral_mse": spectral_mse(r, e, n_fft=n_fft, hop=hop),
        "cosine": cosine(r, e) if np.any(e) else 0.0,  # a silent estimate shares nothing
        "si_sdr_db": si_sdr(r, e),
    }
