"""Runs are keyed by their data: a model trained on one root is never reused for, or overwritten by, another."""

from __future__ import annotations

import json
import os
import shutil

from mss_helpers import autoencoder, cli, datasets, separator, separator_student, unmix_train


def test_the_presets_own_set_keeps_its_run_names_and_another_root_gets_its_own(tiny_cfg, tiny_root, tmp_path):
    assert datasets.data_key(tiny_cfg) == datasets.data_key(tiny_cfg, tiny_root) == ""
    other = tmp_path / "other_root"
    shutil.copytree(tiny_root, other)
    key = datasets.data_key(tiny_cfg, other)
    assert key.startswith("_data") and len(key) == 13
    for run_dir in (autoencoder.ae_run_dir, separator.separator_run_dir, separator_student.student_run_dir,
                    unmix_train.default_run_dir):
        own, theirs = run_dir(tiny_cfg), run_dir(tiny_cfg, other)
        assert run_dir(tiny_cfg, tiny_root) == own and theirs != own and theirs.name == own.name + key
    # a root whose files changed is another data set
    wav = next(other.glob("train/*/other.wav"))
    os.utime(wav, ns=(wav.stat().st_atime_ns, wav.stat().st_mtime_ns + 10**9))
    assert datasets.data_key(tiny_cfg, other) != key
    # a user-given DataConfig.root is keyed by its files too
    assert datasets.data_key(tiny_cfg.replace(data={"root": str(other)})) == datasets.data_key(tiny_cfg, other)


def test_training_on_another_root_neither_reuses_nor_overwrites_the_presets_run(tiny_cfg, tiny_root, tiny_run,
                                                                                 tmp_path, capsys, monkeypatch):
    own_done = (tiny_run / "done.json").stat().st_mtime_ns
    other = tmp_path / "other_root"
    shutil.copytree(tiny_root, other)
    results = tmp_path / "results"
    monkeypatch.setenv("MSS_RESULTS_DIR", str(results))
    assert cli.main(["train", "--preset", "tiny", "--root", str(other)]) == 0
    run = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("run: "))
    assert run.endswith(datasets.data_key(tiny_cfg, other))
    assert (autoencoder.ae_run_dir(tiny_cfg, other) / "done.json").is_file()  # trained, not the preset's reused
    assert (tiny_run / "done.json").stat().st_mtime_ns == own_done  # the preset's run untouched
    assert not (results / "autoencoder_tiny.json").exists()  # another root never writes the report's file
    # and the other way round: the preset's own run is what the preset's data finds
    assert autoencoder.ensure_autoencoder(tiny_cfg, root=tiny_root) == tiny_run
    assert cli.main(["train", "--preset", "tiny"]) == 0
    assert json.loads((results / "autoencoder_tiny.json").read_text())["run_dir"] == str(tiny_run)


def test_weights_named_by_the_environment_name_their_own_estimates(monkeypatch):
    """Estimates of pretrained weights given by $MSS_UNMIX_WEIGHTS never share the small model's cache."""
    from mss_helpers import datasets
    from mss_helpers.config import get_config

    cfg = get_config("tiny")
    monkeypatch.delenv("MSS_UNMIX_WEIGHTS", raising=False)
    small = datasets.estimates_root(cfg)
    monkeypatch.setenv("MSS_UNMIX_WEIGHTS", "/some/umxhq")
    assert datasets.estimates_root(cfg) != small
    assert datasets.estimates_root(cfg) == datasets.estimates_root(cfg.replace(unmix={"weights_dir": "/some/umxhq"}))
