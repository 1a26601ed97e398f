"""``SEANetVAE``: encodec's SEANet encoder/decoder around a Gaussian bottleneck.

The encoder and decoder are the installed ``encodec`` package's modules (through
:func:`mss_helpers.compat.seanet`); this module only adds what the seed's model
lacked: 1x1 convolution heads for the mean and log-variance of a diagonal
Gaussian posterior, the reparameterisation trick while training, and the mean
at inference. Whole tracks are encoded and decoded in chunks
(:func:`encode_audio`, :func:`decode_frames`) so a 3-minute track fits in memory.

Shapes: audio ``(batch, channels, samples)`` tensors inside the model,
``(channels, samples)`` float32 numpy arrays outside it; latent frames
``(batch, latent_dim, frames)`` inside, ``(n_frames, latent_dim)`` numpy outside.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import audio as audio_mod
from . import compat
from .config import Config, ModelConfig, config_from_dict

# Log-variance is clamped to this range: exp(logvar) stays finite in float32 and
# the KL term cannot explode while the heads are still untrained.
LOGVAR_RANGE = (-30.0, 20.0)


class SEANetVAE(nn.Module):
    """A variational autoencoder on raw audio built from SEANet blocks.

    Parameters
    ----------
    model_cfg : ModelConfig
        ``n_filters``, ``ratios`` (hop = their product), ``latent_dim``,
        ``n_residual_layers``, ``lstm``, ``encoder_dim`` (SEANet's output
        channels, fed to the mean / log-variance heads).
    channels : int
        Audio channels (1 mono, 2 stereo).
    sample_rate : int
        Hz; only used for :attr:`frame_rate` and :attr:`compression_ratio`.
    """

    def __init__(self, model_cfg: ModelConfig, channels: int, sample_rate: int):
        super().__init__()
        seanet = compat.seanet()
        common = dict(channels=channels, n_filters=model_cfg.n_filters,
                      n_residual_layers=model_cfg.n_residual_layers, ratios=list(model_cfg.ratios),
                      lstm=model_cfg.lstm, true_skip=model_cfg.true_skip, compress=model_cfg.compress)
        self.cfg = model_cfg
        self.channels = int(channels)
        self.sample_rate = int(sample_rate)
        self.latent_dim = int(model_cfg.latent_dim)
        with warnings.catch_warnings():
            # encodec still calls torch.nn.utils.weight_norm: deprecated, but it works.
            warnings.simplefilter("ignore", FutureWarning)
            self.encoder = seanet.SEANetEncoder(dimension=model_cfg.encoder_dim, **common)
            self.decoder = seanet.SEANetDecoder(dimension=model_cfg.latent_dim, **common)
        self.mean_head = nn.Conv1d(model_cfg.encoder_dim, model_cfg.latent_dim, kernel_size=1)
        self.logvar_head = nn.Conv1d(model_cfg.encoder_dim, model_cfg.latent_dim, kernel_size=1)
        if model_cfg.logvar_init is not None:
            # Start as a nearly deterministic autoencoder (posterior std exp(logvar_init / 2)): with the
            # default init the decoder first trains on latents drowned in unit-variance noise, and Adam
            # lowers the log-variance by at most ~lr per step, so a short CPU run never gets rid of it.
            nn.init.zeros_(self.logvar_head.weight)
            nn.init.constant_(self.logvar_head.bias, float(model_cfg.logvar_init))

    # --- sizes -------------------------------------------------------------------------

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame (the product of ``ratios``)."""
        return int(np.prod(self.cfg.ratios))

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (Hz)."""
        return self.sample_rate / self.hop_length

    @property
    def compression_ratio(self) -> float:
        """Audio values per second divided by latent values per second (> 1 compresses)."""
        return (self.sample_rate * self.channels) / (self.frame_rate * self.latent_dim)

    def n_frames(self, n_samples: int) -> int:
        """Latent frames produced for ``n_samples`` of audio (SEANet pads the last frame full)."""
        return int(math.ceil(n_samples / self.hop_length))

    # --- the model -----------------------------------------------------------------------

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x).

        x : (batch, channels, samples) -> two (batch, latent_dim, frames) tensors.
        """
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(f"expected input of shape (batch, {self.channels}, samples), got {tuple(x.shape)}")
        h = self.encoder(x)  # (batch, encoder_dim, frames)
        logvar = self.logvar_head(h).clamp(*LOGVAR_RANGE)
        return self.mean_head(h), logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean: x (B, C, T) -> (B, latent_dim, frames); deterministic."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """z (B, latent_dim, frames) -> audio (B, C, frames * hop), or cropped/zero-padded to ``length``."""
        if z.dim() != 3 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latent of shape (batch, {self.latent_dim}, frames), got {tuple(z.shape)}")
        y = self.decoder(z)
        return y if length is None else fit_length(y, length)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, T) -> (recon (B, C, T), mean, logvar (B, latent_dim, frames)).

        While training, z is sampled with the reparameterisation trick
        (z = mean + exp(logvar / 2) * eps); in eval mode z is the mean.
        """
        mean, logvar = self.posterior(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if self.training else mean
        return self.decode(z, x.shape[-1]), mean, logvar


def fit_length(y: torch.Tensor, length: int) -> torch.Tensor:
    """Crop or zero-pad the last axis of ``y`` to ``length`` samples."""
    if y.shape[-1] >= length:
        return y[..., :length]
    return nn.functional.pad(y, (0, length - y.shape[-1]))


def describe(cfg: Config) -> dict:
    """Size facts of the preset's model: parameters, hop, frame rate (Hz), compression ratio."""
    model = SEANetVAE(cfg.model, cfg.data.channels, cfg.data.sample_rate)
    return {
        "preset": cfg.name,
        "params": int(sum(p.numel() for p in model.parameters())),
        "hop": model.hop_length,
        "frame_rate": model.frame_rate,
        "latent_dim": model.latent_dim,
        "compression": model.compression_ratio,
    }


# --- whole tracks, in chunks ---------------------------------------------------------------


def _chunks(model: SEANetVAE, n_frames: int, chunk_s: float, context_s: float):
    """Yield ``(f0, f1, a0, a1)``: keep frames ``f0:f1``, computed from frames ``a0:a1`` around them.

    Chunks are ``chunk_s`` long; ``context_s`` of extra input on each side lets
    the convolutions see past the chunk edges, so away from the track's ends a
    chunked result equals the unchunked one (exactly without LSTM layers, whose
    reach is unbounded, and closely with them).
    """
    chunk = max(1, int(round(chunk_s * model.frame_rate)))
    context = max(0, int(round(context_s * model.frame_rate)))
    for f0, f1 in audio_mod.chunk_bounds(n_frames, chunk, 0):
        yield f0, f1, max(0, f0 - context), min(n_frames, f1 + context)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_audio(model: SEANetVAE, audio: np.ndarray, chunk_s: float = 10.0,
                 context_s: float = 1.0) -> np.ndarray:
    """Posterior means of a whole track, encoded chunk by chunk.

    Parameters
    ----------
    audio : (channels, samples) float32
    chunk_s, context_s : seconds per chunk, and of the context added on each side.

    Returns
    -------
    frames : (n_frames, latent_dim) float32, ``n_frames = ceil(samples / hop)``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] != model.channels or audio.shape[1] == 0:
        raise ValueError(f"expected audio of shape ({model.channels}, samples > 0), got {audio.shape}")
    hop, n_frames = model.hop_length, model.n_frames(audio.shape[1])
    was_training = model.training
    model.eval()
    out = []
    for f0, f1, a0, a1 in _chunks(model, n_frames, chunk_s, context_s):
        x = torch.from_numpy(np.ascontiguousarray(audio[:, a0 * hop:a1 * hop])).to(_device(model))[None]
        z = model.encode(x)[0]  # (latent_dim, a1 - a0)
        out.append(z[:, f0 - a0:f1 - a0].cpu().numpy())
    model.train(was_training)
    return np.concatenate(out, axis=1).T.astype(np.float32)  # (n_frames, latent_dim)


@torch.no_grad()
def decode_frames(model: SEANetVAE, frames: np.ndarray, length: int, chunk_s: float = 10.0,
                  context_s: float = 1.0) -> np.ndarray:
    """Decode latent frames ``(n_frames, latent_dim)`` to audio ``(channels, length)``, chunk by chunk."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2 or frames.shape[1] != model.latent_dim:
        raise ValueError(f"expected frames of shape (n_frames, {model.latent_dim} latent values), "
                         f"got {frames.shape}")
    hop, n_frames = model.hop_length, frames.shape[0]
    was_training = model.training
    model.eval()
    z_all = np.ascontiguousarray(frames.T)  # (latent_dim, n_frames)
    out = []
    for f0, f1, a0, a1 in _chunks(model, n_frames, chunk_s, context_s):
        z = torch.from_numpy(np.ascontiguousarray(z_all[:, a0:a1])).to(_device(model))[None]
        y = model.decode(z)[0]  # (C, (a1 - a0) * hop)
        out.append(y[:, (f0 - a0) * hop:(f1 - a0) * hop].cpu().numpy())
    model.train(was_training)
    audio = np.concatenate(out, axis=1)  # (C, n_frames * hop)
    if audio.shape[1] < length:
        audio = np.pad(audio, ((0, 0), (0, length - audio.shape[1])))
    return audio[:, :length].astype(np.float32)


def reconstruct(model: SEANetVAE, audio: np.ndarray, chunk_s: float = 10.0,
                context_s: float = 1.0) -> np.ndarray:
    """Encode then decode a whole track: ``(channels, samples)`` -> same shape, float32."""
    audio = np.asarray(audio, dtype=np.float32)
    frames = encode_audio(model, audio, chunk_s, context_s)
    return decode_frames(model, frames, audio.shape[1], chunk_s, context_s)


def load_model(run_dir, which: str = "best", device: str = "cpu") -> tuple[SEANetVAE, Config]:
    """Load a trained autoencoder from ``run_dir`` (``best.pt`` or ``last.pt``) in eval mode.

    Returns ``(model, cfg)``; ``cfg`` is the run's configuration from ``config.json``.
    """
    run_dir = Path(run_dir)
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    ckpt_path, cfg_path = run_dir / f"{which}.pt", run_dir / "config.json"
    for path in (ckpt_path, cfg_path):
        if not path.is_file():
            from .errors import RunNotFoundError

            # default run folders are ae_<preset>_<hash> (autoencoder.ae_run_dir): name the preset to train
            preset = re.fullmatch(r"ae_(.+)_[0-9a-f]{10}", run_dir.name)
            how = f"--preset {preset.group(1)}" if preset else f"--run-dir {run_dir}"
            raise RunNotFoundError(f"{path} not found: the autoencoder has not been trained yet; "
                                   f"train it first: python -m mss_helpers train {how}")
    cfg = config_from_dict(json.loads(cfg_path.read_text())["config"])
    model = SEANetVAE(cfg.model, cfg.data.channels, cfg.data.sample_rate)
    state = torch.load(ckpt_path, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg
