"""Shared fixtures: the tiny preset, a rendered tiny data set, and output folders in tmp.

The tiny data set is rendered once per test session (a few seconds). Figures and
result tables written by tests go to a temporary folder, never over the
committed report outputs.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MSS_PRESET", "tiny")


def pytest_addoption(parser):
    parser.addoption("--run-notebooks", action="store_true", default=False,
                     help="also execute every numbered notebook through a Jupyter kernel")


def pytest_configure(config):
    config.addinivalue_line("markers", "notebooks: executes notebooks through a kernel (make test-notebooks)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-notebooks"):
        return
    skip = pytest.mark.skip(reason="kernel execution runs under `make test-notebooks`")
    for item in items:
        if "notebooks" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _outputs_in_tmp(tmp_path_factory, monkeypatch):
    out = tmp_path_factory.getbasetemp() / "outputs"
    monkeypatch.setenv("MSS_FIGURES_DIR", str(out / "figures"))
    monkeypatch.setenv("MSS_RESULTS_DIR", str(out / "results"))


@pytest.fixture(scope="session")
def session_dirs(tmp_path_factory):
    """Data and runs folders shared by the whole session (set as MSS_DATA_DIR / MSS_RUNS_DIR)."""
    base = tmp_path_factory.getbasetemp()
    data, runs = base / "data", base / "runs"
    os.environ["MSS_DATA_DIR"] = str(data)
    os.environ["MSS_RUNS_DIR"] = str(runs)
    return data, runs


@pytest.fixture(scope="session")
def tiny_cfg(session_dirs):
    from mss_helpers.config import get_config

    return get_config("tiny")


@pytest.fixture(scope="session")
def tiny_root(tiny_cfg):
    """The tiny embedded set: 4 train + 2 test tracks of 4 s, rendered once per session."""
    from mss_helpers.render import render_dataset

    return render_dataset(tiny_cfg, progress=False)


@pytest.fixture(scope="session")
def tiny_clean_root(tiny_cfg):
    """The tiny set in the clean render style (monophonic lines, dry point-source pans), once per session."""
    from mss_helpers.render import render_dataset

    return render_dataset(tiny_cfg.replace(data={"style": "clean"}), progress=False)


@pytest.fixture(scope="session")
def tiny_run(tiny_cfg, tiny_root):
    """The tiny autoencoder, trained once per session into the session's runs folder.

    It uses the default (config-hashed) run folder, so notebooks run by the tests reuse it.
    """
    from mss_helpers.autoencoder import train_autoencoder

    return train_autoencoder(tiny_cfg, root=tiny_root, progress=False)


@pytest.fixture
def stemless_root(tiny_root, tmp_path, monkeypatch):
    """A copy of the tiny set without ``other_stems/``, and the list of every audio file read from then on.

    Returns ``(root, read)``: MixIT training (teacher or student) must read only ``other.wav`` files.
    """
    import shutil

    from mss_helpers import audio as audio_io

    root = tmp_path / "stemless"
    shutil.copytree(tiny_root, root)
    shutil.rmtree(root / "other_stems")
    read = []
    real = audio_io.read_audio
    monkeypatch.setattr(audio_io, "read_audio", lambda p, *a, **k: (read.append(str(p)), real(p, *a, **k))[1])
    return root, read
