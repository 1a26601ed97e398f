"""A simulated room for the "realistic" render style: dry stems in a shoebox, picked up by a spaced pair.

Each track gets a random room (:func:`draw_room`): wall absorption set by Sabine's formula from a drawn
RT60, two omni microphones near the middle, one source per instrument in front of them.
:func:`impulse_responses` runs pyroomacoustics' image-source method once for all sources and
:func:`place` convolves a dry mono stem with its two RIRs. The image order is capped so a track's room
costs ~0.1 s instead of seconds; the measured RT60 (:func:`measured_rt60_s`) then differs from the
target, and both are worth recording. The rest is the mix engineer's part: loudness (ITU-R BS.1770,
pyloudnorm), optional per-stem effects (pedalboard, drawn as JSON-ready dicts), and :func:`ild_iqr_db`,
a check that a stereo stem has a room's decorrelated image rather than a constant-gain pan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pedalboard
import pyloudnorm
import pyroomacoustics as pra
import scipy.signal
from pyroomacoustics.experimental import measure_rt60

from .errors import AudioError, ConfigError

# shoebox ranges (m): a rehearsal room to a small hall
LENGTH_M = (5.0, 12.0)
WIDTH_M = (4.0, 9.0)
HEIGHT_M = (2.6, 4.0)
MIC_HEIGHT_M = (1.2, 1.8)
SOURCE_HEIGHT_M = (0.8, 2.0)
WALL_GAP_M = 0.5  # sources keep this far from every wall
MIN_MIC_GAP_M = 1.0  # ... and this far from each microphone
SPREAD_M = 2.0  # sources sit MIN_MIC_GAP_M to MIN_MIC_GAP_M + SPREAD_M from the pair (if the room allows)
AZIMUTH_DEG = 50.0  # sources span +-AZIMUTH_DEG in front of the pair (+x); wider would crowd the side walls
TRIES = 100


@dataclass(frozen=True)
class Room:
    """One track's room. Positions are (x, y, z) in m: x along the length, y the width, z up.

    Attributes
    ----------
    dims_m : (3,) length, width, height in m
    rt60_target_s : the drawn RT60 in s that set ``absorption`` (Sabine)
    absorption : energy absorption coefficient of every wall, in [0, 1]
    max_order : image-source order used (the Sabine order, capped)
    mics_m : (2, 3) left and right microphone positions in m (the pair faces +x, left is +y)
    sources_m : instrument name -> (3,) source position in m
    """

    dims_m: tuple[float, float, float]
    rt60_target_s: float
    absorption: float
    max_order: int
    mics_m: tuple[tuple[float, float, float], tuple[float, float, float]]
    sources_m: dict[str, tuple[float, float, float]]


def _ray_length(origin: np.ndarray, direction: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Distance in m from (2,) ``origin`` inside the box lo..hi to its edge along (2,) unit ``direction``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.min(np.where(direction > 0, hi - origin, origin - lo) / np.abs(direction)))


def draw_room(names, rng: np.random.Generator, rt60_range_s=(0.2, 0.8), mic_spacing_m: float = 0.2,
              max_order_cap: int = 25) -> Room:
    """Draw a random shoebox, a spaced microphone pair and one source per name.

    Parameters
    ----------
    names : iterable of str, the instruments (one source each, in this order)
    rng : numpy Generator; the room is a function of its state (dims and positions do not depend on
        ``rt60_range_s``)
    rt60_range_s : (low, high) in s, the RT60 is drawn uniformly from it
    mic_spacing_m : distance between the two omni microphones in m (along the width axis)
    max_order_cap : largest image-source order (full order at RT60 0.8 s costs seconds per track)

    Returns
    -------
    Room
        Sources at distinct azimuths within +-50 degrees in front of the pair, 1-3 m from it (>= 1 m from
        both microphones) and >= 0.5 m from every wall. Raises ConfigError for an RT60 too short for the
        room (Sabine absorption above 1) or a spacing that leaves no room for the sources.
    """
    names = list(names)
    for _ in range(TRIES):
        dims = np.array([rng.uniform(*LENGTH_M), rng.uniform(*WIDTH_M), rng.uniform(*HEIGHT_M)])
        rt60 = float(rng.uniform(*rt60_range_s))
        # the pair sits a little behind the middle of the length, so the sources have room in front of it
        centre = np.array([rng.uniform(0.35, 0.5) * dims[0], rng.uniform(0.4, 0.6) * dims[1],
                           rng.uniform(*MIC_HEIGHT_M)])
        # each name gets its own azimuth sector (in a random order), so no two sources line up
        edges = np.linspace(-AZIMUTH_DEG, AZIMUTH_DEG, len(names) + 1)
        sector = rng.permutation(len(names))
        lo, hi = np.full(2, WALL_GAP_M), dims[:2] - WALL_GAP_M
        # >= MIN_MIC_GAP_M from the centre plus half the spacing is >= MIN_MIC_GAP_M from both mics
        near = MIN_MIC_GAP_M + mic_spacing_m / 2
        sources, ok = {}, mic_spacing_m / 2 < min(centre[1], dims[1] - centre[1]) - WALL_GAP_M
        for name, k in zip(names, sector):
            az = np.deg2rad(rng.uniform(edges[k], edges[k + 1]))
            direction = np.array([np.cos(az), np.sin(az)])
            far = min(_ray_length(centre[:2], direction, lo, hi), near + SPREAD_M)
            dist = rng.uniform(near, max(near, far))
            xy = centre[:2] + dist * direction
            sources[name] = (float(xy[0]), float(xy[1]), float(rng.uniform(*SOURCE_HEIGHT_M)))
            ok = ok and far >= near
        if ok:
            break
    else:
        raise ConfigError(f"no room in {TRIES} draws fits sources >= {MIN_MIC_GAP_M} m from a pair "
                          f"{mic_spacing_m} m apart; use a smaller mic_spacing_m")
    try:
        absorption, order = pra.inverse_sabine(rt60, dims)
    except ValueError as err:
        raise ConfigError(f"RT60 {rt60:.2f} s is too short for a {dims.round(1).tolist()} m room "
                          f"({err}); draw a longer one") from err
    half = np.array([0.0, mic_spacing_m / 2, 0.0])
    mics = (tuple(float(v) for v in centre + half), tuple(float(v) for v in centre - half))
    return Room(dims_m=tuple(float(v) for v in dims), rt60_target_s=rt60, absorption=float(absorption),
                max_order=int(min(order, max_order_cap)), mics_m=mics, sources_m=sources)


def impulse_responses(room: Room, rate: int) -> dict[str, np.ndarray]:
    """The impulse responses from every source to both microphones (one image-source simulation).

    Parameters
    ----------
    room : Room; rate : Hz

    Returns
    -------
    dict
        name -> (2, L) float32 RIR (left, right), L the same for all names (zero-padded to the longest).
        Arrivals come at distance / 343 m/s plus a fixed 40 samples (pyroomacoustics' centred fractional
        delays); the direct path has energy 1 / distance^2 (unit at 1 m), so level stems after placing.
    """
    shoebox = pra.ShoeBox(list(room.dims_m), fs=rate, materials=pra.Material(room.absorption),
                          max_order=room.max_order)
    for position in room.sources_m.values():
        shoebox.add_source(list(position))
    shoebox.add_microphone_array(np.array(room.mics_m, dtype=float).T)
    shoebox.compute_rir()
    length = max(len(h) for mic in shoebox.rir for h in mic)
    out = {name: np.zeros((2, length), dtype=np.float32) for name in room.sources_m}
    for i, rir in enumerate(out.values()):
        for m in range(2):
            rir[m, :len(shoebox.rir[m][i])] = shoebox.rir[m][i]
    return out


def measured_rt60_s(rir: np.ndarray, rate: int, decay_db: float = 30.0) -> float:
    """The RT60 of one impulse response, from its Schroeder decay (pyroomacoustics.experimental.measure_rt60).

    By default the T30 slope (-5 to -35 dB) is extrapolated to 60 dB, as in ISO 3382: a shoebox's late
    decay is not exponential, so a 60 dB fit drifts above T30 (most in dead rooms: target 0.21 s gave T20
    0.21, T30 0.23, T60 0.30 s), and the capped image order cuts long tails before they fall 60 dB. When
    the decay does not reach ``decay_db + 5`` dB before the last fifth of the response (where a truncated
    Schroeder curve plunges), the T30, then the T20 slope is used. Report a room's RT60 as the median
    over its sources' left-microphone RIRs.

    Parameters
    ----------
    rir : (L,) float; rate : Hz
    decay_db : dB of decay to fit; 60 asks for a direct RT60 where the response allows it

    Returns
    -------
    float
        RT60 in s. Raises AudioError for an all-zero response.
    """
    h = np.asarray(rir, dtype=np.float64).ravel()
    if not np.any(h):
        raise AudioError("the impulse response is all zeros; it has no RT60")
    h = h[:np.flatnonzero(h)[-1] + 1]  # without the zero padding of impulse_responses
    energy = np.cumsum(h[::-1] ** 2)[::-1]
    reached = energy[int(0.8 * (len(h) - 1))] / energy[0]
    range_db = -10 * np.log10(reached) if reached > 0 else np.inf
    # below 20 dB measure_rt60 shortens the fit to the range there is
    fit_db = next((d for d in (decay_db, 30, 20) if d <= decay_db and range_db >= d + 5), min(decay_db, 20))
    return float(measure_rt60(h, fs=rate, decay_db=fit_db))


def place(dry: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """A dry mono stem as the two microphones hear it.

    Parameters
    ----------
    dry : (samples,) float32; rir : (2, L) float, from :func:`impulse_responses`

    Returns
    -------
    (2, samples) float32
        The convolution cut at ``samples``: the tail past the excerpt's end is dropped for every stem of a
        track alike, so a sum of placed stems is the placed sum.
    """
    dry = np.asarray(dry, dtype=np.float64)
    if dry.ndim != 1:
        raise AudioError(f"place expects a mono (samples,) stem, got shape {dry.shape}")
    # overlap-add: a short RIR against a long stem; float64 keeps the sum-of-stems identity tight
    wet = scipy.signal.oaconvolve(dry[None, :], np.asarray(rir, dtype=np.float64), axes=-1)
    return wet[:, :len(dry)].astype(np.float32)


def loudness_lufs(audio: np.ndarray, rate: int) -> float | None:
    """Integrated loudness (ITU-R BS.1770, pyloudnorm.Meter).

    Parameters
    ----------
    audio : (channels, samples) or (samples,) float; rate : Hz

    Returns
    -------
    float or None
        LUFS; None for silence (all gated out) or audio shorter than one 0.4 s gating block.
    """
    audio = np.asarray(audio, dtype=np.float64)
    try:  # pyloudnorm wants (samples, channels)
        lufs = pyloudnorm.Meter(rate).integrated_loudness(audio.T if audio.ndim == 2 else audio)
    except ValueError:  # shorter than the block size
        return None
    return float(lufs) if np.isfinite(lufs) else None


def level_to(audio: np.ndarray, rate: int, target_lufs: float) -> tuple[np.ndarray, float]:
    """Scale audio to an integrated loudness (no limiting: loud targets can exceed full scale).

    Parameters
    ----------
    audio : (channels, samples) or (samples,) float; rate : Hz; target_lufs : LUFS

    Returns
    -------
    scaled : same shape as ``audio``, float32
    gain_db : dB applied; 0 when the loudness is undefined (silent or < 0.4 s), the input then unchanged
    """
    lufs = loudness_lufs(audio, rate)
    audio = np.asarray(audio, dtype=np.float32)
    if lufs is None:
        return audio, 0.0
    gain_db = float(target_lufs - lufs)
    return (audio * np.float32(10 ** (gain_db / 20))).astype(np.float32), gain_db


def draw_effects(rng: np.random.Generator, p: float = 0.5) -> list[dict]:
    """An optional per-stem chain: an EQ and/or a compressor, each with probability ``p``.

    Cutoffs stay below 4 kHz so a chain works at 8 kHz and up; values are rounded to 0.01 so what
    meta.json records is exactly what :func:`apply_effects` runs.

    Returns
    -------
    list of dict
        JSON-ready, in processing order (EQ first), e.g. ``{"type": "Compressor", "threshold_db": -22.4,
        "ratio": 3.1, "attack_ms": 7.5, "release_ms": 120.0}``; possibly empty.
    """
    def u(lo, hi):
        return round(float(rng.uniform(lo, hi)), 2)

    chain = []
    if rng.random() < p:
        kind = ("LowShelfFilter", "HighShelfFilter", "PeakFilter")[int(rng.integers(3))]
        cutoff = {"LowShelfFilter": (80.0, 300.0), "HighShelfFilter": (1500.0, 3500.0),
                  "PeakFilter": (150.0, 3000.0)}[kind]
        # 0.71 (Butterworth) for the shelves; a peak gets a drawn width
        q = u(0.5, 2.0) if kind == "PeakFilter" else 0.71
        chain.append({"type": kind, "cutoff_frequency_hz": u(*cutoff), "gain_db": u(-6.0, 6.0), "q": q})
    if rng.random() < p:
        chain.append({"type": "Compressor", "threshold_db": u(-30.0, -15.0), "ratio": u(2.0, 6.0),
                      "attack_ms": u(2.0, 20.0), "release_ms": u(50.0, 250.0)})
    return chain


_EFFECTS = {"Compressor": pedalboard.Compressor, "LowShelfFilter": pedalboard.LowShelfFilter,
            "HighShelfFilter": pedalboard.HighShelfFilter, "PeakFilter": pedalboard.PeakFilter}


def apply_effects(mono: np.ndarray, rate: int, effects: list[dict]) -> np.ndarray:
    """Run a mono stem through the chain that :func:`draw_effects` describes.

    Parameters
    ----------
    mono : (samples,) float32; rate : Hz
    effects : list of dict from :func:`draw_effects`, applied in order

    Returns
    -------
    (samples,) float32
        The input itself (as float32) for an empty chain. Raises ConfigError for an unknown effect type
        or a cutoff at or above Nyquist.
    """
    mono = np.asarray(mono, dtype=np.float32)
    if not effects:
        return mono
    plugins = []
    for fx in effects:
        params = {k: v for k, v in fx.items() if k != "type"}
        if fx.get("type") not in _EFFECTS:
            raise ConfigError(f"unknown effect {fx.get('type')!r}; known: {sorted(_EFFECTS)}")
        if params.get("cutoff_frequency_hz", 0.0) >= rate / 2:
            raise ConfigError(f"{fx['type']} cutoff {params['cutoff_frequency_hz']} Hz is at or above "
                              f"Nyquist at {rate} Hz")
        plugins.append(_EFFECTS[fx["type"]](**params))
    out = pedalboard.Pedalboard(plugins)(mono[None, :], rate)
    return np.asarray(out[0], dtype=np.float32)


def ild_iqr_db(stereo: np.ndarray, rate: int, n_fft: int = 1024, hop: int = 256,
               floor_db: float = -40.0) -> float:
    """The spread of the inter-channel level difference over the loud time-frequency bins.

    A constant-gain pan gives every bin the same ``20 log10(|L| / |R|)`` (spread ~0 dB, also for identical
    channels); a source in a room, heard by two spaced microphones, gives comb-filtered, decorrelated
    channels and a spread of several dB.

    Parameters
    ----------
    stereo : (2, samples) float; rate : Hz
    n_fft, hop : STFT size and hop in samples (Hann window)
    floor_db : bins whose louder channel is more than ``-floor_db`` dB below the loudest bin are left out

    Returns
    -------
    float
        Inter-quartile range of the per-bin ILD in dB. Raises AudioError (a ValueError) for a shape other
        than (2, samples), an empty or a silent input.
    """
    stereo = np.asarray(stereo, dtype=np.float64)
    if stereo.ndim != 2 or stereo.shape[0] != 2 or stereo.shape[1] == 0:
        raise AudioError(f"ild_iqr_db expects non-empty (2, samples) audio, got shape {stereo.shape}")
    _, _, spec = scipy.signal.stft(stereo, fs=rate, window="hann", nperseg=n_fft, noverlap=n_fft - hop)
    mag = np.abs(spec)  # (2, F, T)
    loud, peak = mag.max(axis=0), mag.max()
    if not peak > 0:
        raise AudioError("ild_iqr_db got a silent signal; it has no level difference")
    keep = loud >= peak * 10 ** (floor_db / 20)
    eps = peak * 1e-12  # keeps a hard-panned bin (one channel exactly 0) finite
    ild = 20 * np.log10((mag[0][keep] + eps) / (mag[1][keep] + eps))
    q1, q3 = np.percentile(ild, [25, 75])
    return float(q3 - q1)
