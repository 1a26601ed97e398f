"""Audio I/O and small signal helpers.

Convention throughout the package: audio is a float32 numpy array of shape
``(channels, samples)``; rates are in Hz.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import AudioError  # noqa: F401  (re-exported: audio.AudioError)
from .paths import atomic_write


def read_audio(path, rate: int | None = None, channels: int | None = None,
               name: str | None = None) -> tuple[np.ndarray, int]:
    """Read a file as ``(channels, samples)`` float32, optionally resampled / re-channelled.

    Returns ``(audio, rate)``; the rate is the requested one when given. A file
    that is missing, not audio soundfile can read, or holds NaN/infinite samples
    raises :class:`AudioError` naming it (``name``, e.g. "track 'x', stem
    'other'", is put in front of the path).
    """
    path = Path(path)
    where = f"{name} ({path})" if name else str(path)
    if not path.is_file():
        raise AudioError(f"{where}: audio file not found; check the path "
                         "(or render / download the data set again)")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, channels)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{where}: not a readable audio file ({exc.error_string}); "
                         "replace it with a wav/flac file (render or download the data set again)") from exc
    if not np.isfinite(data).all():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioError(f"{where}: {bad} of {data.size} samples are NaN or infinite; "
                         "replace the file with a finite version (render or download it again)")
    audio = np.ascontiguousarray(data.T)  # (channels, samples)
    if channels is not None:
        audio = to_channels(audio, channels, name=where)
    if rate is not None and rate != file_rate:
        audio = resample(audio, file_rate, rate)
        file_rate = rate
    return audio, int(file_rate)


def audio_info(path) -> tuple[int, int, int]:
    """``(rate, channels, frames)`` of an audio file from its header (of the first stream for .mp4).

    Raises :class:`AudioError` naming the file when it cannot be read: soundfile
    reads wav/flac/ogg; only MUSDB18's .stem.mp4 goes through ffprobe (stempeg).
    """
    path = Path(path)
    if path.suffix == ".mp4":
        import ffmpeg
        import stempeg

        try:
            info = stempeg.Info(str(path))
        except ffmpeg.Error as exc:
            lines = [line for line in (exc.stderr or b"").decode(errors="replace").splitlines() if line.strip()]
            reason = lines[-1].replace(f"{path}: ", "") if lines else "ffprobe failed"
            raise AudioError(f"{path}: not a readable .stem.mp4 file ({reason}); download it again") from exc
        return int(info.rate(0)), int(info.channels(0)), int(info.samples(0))
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc.error_string}); "
                         "replace it with a wav/flac file (render or download the data set again)") from exc
    return int(info.samplerate), int(info.channels), int(info.frames)


def write_audio(path, audio: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    """Write ``(channels, samples)`` audio atomically (temp file + rename)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    return atomic_write(path, lambda tmp: sf.write(tmp, audio.T, int(rate), subtype=subtype))


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample ``(channels, samples)`` audio with soxr (high quality)."""
    if int(orig_rate) == int(target_rate):
        return np.asarray(audio, dtype=np.float32)
    import soxr

    out = soxr.resample(np.asarray(audio, dtype=np.float32).T, int(orig_rate), int(target_rate), quality="HQ")
    out = out[:, None] if out.ndim == 1 else out
    return np.ascontiguousarray(out.T, dtype=np.float32)


def to_channels(audio: np.ndarray, channels: int, name: str = "audio") -> np.ndarray:
    """Mono downmix (mean) or duplicate mono to ``channels``; other changes are errors (named ``name``)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    have = audio.shape[0]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    raise AudioError(f"{name}: has {have} channels and cannot be converted to {channels}; "
                     "give it as mono or stereo")


def rms_db(audio: np.ndarray, eps: float = 1e-10) -> float:
    """Root-mean-square level in dBFS (a plain level, not LUFS loudness)."""
    audio = np.asarray(audio, dtype=np.float64)
    return float(10 * np.log10(np.mean(audio**2) + eps))


def check_audio(audio: np.ndarray, rate: int, *, expected_rate: int | None = None,
                expected_channels: int | None = None, min_seconds: float = 0.0,
                silence_db: float = -80.0, name: str = "audio") -> np.ndarray:
    """Validate audio before a model or metric sees it; raise :class:`AudioError` with the reason."""
    audio = np.asanyarray(audio)  # a memory-mapped song stays mapped (training sets keep its file's name: datasets.held)
    if audio.ndim != 2:
        raise AudioError(f"{name}: expected shape (channels, samples), got {audio.shape}")
    if expected_rate is not None and int(rate) != int(expected_rate):
        raise AudioError(f"{name}: sample rate is {rate} Hz but {expected_rate} Hz is expected; "
                         "resample it first (mss_helpers.audio.resample)")
    if expected_channels is not None and audio.shape[0] != expected_channels:
        raise AudioError(f"{name}: has {audio.shape[0]} channel(s) but {expected_channels} expected; "
                         "use mss_helpers.audio.to_channels")
    if audio.shape[1] < min_seconds * rate:
        raise AudioError(f"{name}: {audio.shape[1] / rate:.3f} s long, at least {min_seconds:.3g} s needed; "
                         "use a longer excerpt or leave this track out")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name}: contains NaN or infinite samples; replace it with a finite version")
    if rms_db(audio) < silence_db:
        raise AudioError(f"{name}: is silent (level {rms_db(audio):.1f} dBFS < {silence_db} dBFS), nothing to "
                         "separate; leave this track out")
    return audio


def chunk_bounds(n_samples: int, chunk: int, overlap: int = 0) -> list[tuple[int, int]]:
    """Start/stop sample pairs covering ``n_samples`` in chunks that overlap by ``overlap``."""
    if chunk <= 0 or overlap < 0 or overlap >= chunk:
        raise ValueError(f"need chunk > overlap >= 0, got chunk={chunk}, overlap={overlap}")
    if n_samples <= chunk:
        return [(0, n_samples)]
    step = chunk - overlap
    starts = list(range(0, n_samples - overlap, step))
    return [(s, min(s + chunk, n_samples)) for s in starts if s < n_samples]


def overlap_add(chunks: list[np.ndarray], bounds: list[tuple[int, int]], n_samples: int) -> np.ndarray:
    """Join processed chunks ``(channels, len)`` with linear cross-fades over their overlaps."""
    channels = chunks[0].shape[0]
    out = np.zeros((channels, n_samples), dtype=np.float64)
    weight = np.zeros(n_samples, dtype=np.float64)
    for i, (chunk, (start, stop)) in enumerate(zip(chunks, bounds)):
        n = stop - start
        w = np.ones(n)
        if i > 0:
            fade = min(n, bounds[i - 1][1] - start)
            if fade > 0:
                w[:fade] = np.linspace(0, 1, fade + 2)[1:-1]
        if i + 1 < len(bounds):
            fade = min(n, stop - bounds[i + 1][0])
            if fade > 0:
                w[n - fade:] = np.minimum(w[n - fade:], np.linspace(1, 0, fade + 2)[1:-1])
        out[:, start:stop] += chunk[:, :n] * w
        weight[start:stop] += w
    return (out / np.maximum(weight, 1e-12)).astype(np.float32)


def encode_ogg(audio: np.ndarray, rate: int) -> bytes:
    """Compress ``(channels, samples)`` audio to OGG/Vorbis bytes (compact notebook players)."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio, dtype=np.float32).T, int(rate), format="OGG", subtype="VORBIS")
    return buf.getvalue()


def embed_audio(audio: np.ndarray, rate: int, max_rate: int = 16000, normalize: bool = False):
    """An ``IPython.display.Audio`` player holding compact OGG data.

    Audio is resampled down to ``max_rate`` first. ``normalize=False`` keeps
    levels comparable between players (a quiet estimate stays quiet).
    """
    from IPython.display import Audio

    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if rate > max_rate:
        audio, rate = resample(audio, rate, max_rate), max_rate
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if normalize and peak > 0:
        audio = audio / peak * 0.9
    elif peak > 1.0:
        audio = audio / peak  # avoid clipping only; relative levels are still kept within a call
    player = Audio(data=encode_ogg(audio, rate), rate=rate, autoplay=False)
    player.mimetype = "audio/ogg"  # IPython assumes wav for raw bytes
    return player
