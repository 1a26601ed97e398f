"""mss_helpers: the thin helper package behind the unsupervised MSS report notebooks."""

__version__ = "0.1.0"
