"""Import ``encodec`` and ``openunmix`` where torchaudio is missing or broken.

Both packages import torchaudio at module level (for file I/O, resampling and
their CLIs), but the parts this project uses -- encodec's SEANet modules and
Open-Unmix's model classes -- never call it. No torchaudio release works beside
the pinned torch here, so when ``import torchaudio`` fails we register a
placeholder module whose every attribute raises a clear error. Nothing else is
patched, and a working torchaudio is always preferred.
"""

from __future__ import annotations

import importlib
import sys
import types

_PLACEHOLDER_FLAG = "__mss_placeholder__"


class _TorchaudioPlaceholder(types.ModuleType):
    """Stands in for torchaudio; any use raises with the reason."""

    def __init__(self, reason: str):
        super().__init__("torchaudio")
        self.__dict__[_PLACEHOLDER_FLAG] = True
        self.__dict__["_reason"] = reason

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise RuntimeError(
            f"torchaudio.{name} was called, but torchaudio is not usable here "
            f"({self._reason}). mss_helpers only uses parts of encodec/openunmix "
            "that do not need it; load audio with mss_helpers.audio instead."
        )


def torchaudio_is_placeholder() -> bool:
    """True when the placeholder, not a real torchaudio, is registered."""
    module = sys.modules.get("torchaudio")
    return bool(module is not None and getattr(module, _PLACEHOLDER_FLAG, False))


def ensure_torchaudio_importable() -> None:
    """Make ``import torchaudio`` succeed: the real one if it works, else the placeholder."""
    if "torchaudio" in sys.modules:
        return
    try:
        importlib.import_module("torchaudio")
    except Exception as exc:  # ImportError, or OSError from a broken binary
        sys.modules.pop("torchaudio", None)
        sys.modules["torchaudio"] = _TorchaudioPlaceholder(f"{type(exc).__name__}: {exc}")


def seanet():
    """Return encodec's ``encodec.modules.seanet`` module (SEANetEncoder, SEANetDecoder)."""
    ensure_torchaudio_importable()
    return importlib.import_module("encodec.modules.seanet")


def openunmix_model():
    """Return ``openunmix.model`` (OpenUnmix, Separator)."""
    ensure_torchaudio_importable()
    return importlib.import_module("openunmix.model")


def openunmix():
    """Return the top-level ``openunmix`` package (hub loaders, utils)."""
    ensure_torchaudio_importable()
    return importlib.import_module("openunmix")
