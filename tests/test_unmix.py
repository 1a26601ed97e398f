"""The Open-Unmix first stage: loading, chunked separation, training, scoring (tiny, offline)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch

from mss_helpers import datasets, unmix, unmix_eval, unmix_train
from mss_helpers.config import get_config
from mss_helpers.errors import ConfigError, WeightsNotFoundError


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch, tmp_path):
    """Any attempt to download weights fails the test; the hub cache is an empty tmp folder."""
    def refuse(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.delenv(unmix.WEIGHTS_ENV, raising=False)
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(old)


def _random_separator(cfg, niter=0, seed=0):
    """A tiny random-weight separator whose mask really varies (eval-mode BN statistics randomised)."""
    torch.manual_seed(seed)
    sep = unmix.build_separator(cfg, niter=niter).eval()
    model = sep.target_models["other"]
    with torch.no_grad():
        for bn in (model.bn1, model.bn2, model.bn3):
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 2.0)
        model.output_scale.fill_(3.0)
        model.output_mean.fill_(0.5)
    return sep


def _sine(freq, seconds, rate, amp=0.3, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat((amp * np.sin(2 * np.pi * freq * t))[None], channels, axis=0).astype(np.float32)


# --- pretrained loading ------------------------------------------------------------


def test_weight_urls_come_from_the_installed_package():
    urls = unmix.weight_urls("umxhq")
    assert set(urls) == {"vocals", "drums", "bass", "other"}
    assert urls["other"].startswith("https://zenodo.org/") and urls["other"].endswith("other-b52fbbf7.pth")
    assert unmix.weight_urls("umxl")["other"].endswith("other-c8c5b3e6.pth")
    with pytest.raises(ConfigError, match="--model: unknown Open-Unmix model 'not_a_model'.*umxhq"):
        unmix.weight_urls("not_a_model")


def test_offline_without_weights_fails_at_once_naming_files_and_folders(tmp_path):
    empty = tmp_path / "weights"
    empty.mkdir()
    with pytest.raises(unmix.WeightsNotFoundError) as info:
        unmix.load_pretrained("umxhq", weights_dir=empty)
    msg = str(info.value)
    assert unmix.weight_urls("umxhq")["other"] in msg  # the file to fetch
    assert str(empty) in msg and "checkpoints" in msg  # where it looked
    assert "--weights" in msg and unmix.WEIGHTS_ENV in msg  # where to put them
    assert unmix.weight_urls("umxhq")["vocals"] not in msg  # only the files needed


def test_load_from_a_folder_in_the_package_layout(tmp_path):
    cfg = get_config("tiny")
    sep = _random_separator(cfg)
    unmix.export_separator(sep, tmp_path / "mine", cfg)
    loaded = unmix.load_pretrained("umxhq", weights_dir=tmp_path / "mine", niter=0)
    want = sep.target_models["other"].state_dict()
    got = loaded.target_models["other"].state_dict()
    assert set(want) == set(got)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    x = np.random.default_rng(0).normal(0, 0.1, (1, 8000)).astype(np.float32)
    np.testing.assert_allclose(unmix.separate_other(loaded, x, 16000), unmix.separate_other(sep, x, 16000),
                               atol=1e-5)


def test_load_published_file_names_from_a_folder_and_the_hub_cache(tmp_path):
    # umxse (mono 16 kHz, hidden 256) is the smallest published architecture.
    package_sep = unmix.compat.openunmix().umxse(targets=["speech"], pretrained=False)
    state = package_sep.target_models["speech"].state_dict()
    with torch.no_grad():
        state["input_mean"].normal_()
    file_name = unmix.weight_urls("umxse")["speech"].rsplit("/", 1)[-1]
    folder = tmp_path / "zenodo"
    folder.mkdir()
    torch.save(state, folder / file_name)
    sep = unmix.load_pretrained("umxse", weights_dir=folder, targets=("speech",))
    assert torch.equal(sep.target_models["speech"].input_mean, state["input_mean"])
    # The same file in the torch hub cache is found without a folder argument.
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (folder / file_name).rename(cache / file_name)
    sep = unmix.load_pretrained("umxse", targets=("speech",))
    assert torch.equal(sep.target_models["speech"].input_mean, state["input_mean"])


def test_weights_of_another_architecture_are_rejected(tmp_path):
    torch.save({"fc1.weight": torch.zeros(3, 3)}, tmp_path / "speech.pth")
    with pytest.raises(WeightsNotFoundError, match="speech.pth does not fit.*--model") as info:
        unmix.load_pretrained("umxse", weights_dir=tmp_path, targets=("speech",))
    assert str(tmp_path / "speech.pth") in str(info.value)
    torch.save({}, tmp_path / "speech.pth")  # loads, but every tensor is missing
    with pytest.raises(WeightsNotFoundError, match="missing"):
        unmix.load_pretrained("umxse", weights_dir=tmp_path, targets=("speech",))


# --- separation --------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [16000, 8000])
def test_separate_other_keeps_shape_rate_and_channels(channels, rate):
    sep = _random_separator(get_config("tiny"))
    x = np.random.default_rng(1).normal(0, 0.1, (channels, int(1.3 * rate))).astype(np.float32)
    y = unmix.separate_other(sep, x, rate, chunk_s=0.5)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.abs(y).max() > 0


def test_chunked_equals_unchunked_away_from_seams():
    cfg = get_config("tiny")
    sep = _random_separator(cfg)
    rate = 16000
    x = np.random.default_rng(2).normal(0, 0.1, (1, 8 * rate)).astype(np.float32)
    whole = unmix.separate_other(sep, x, rate, chunk_s=100.0)
    chunked = unmix.separate_other(sep, x, rate, chunk_s=2.0, overlap_s=0.5)
    assert np.abs(whole - x).max() > 0.05  # the random mask is far from identity
    # Chunks of 2 s overlapping by 0.5 s: seams are the overlaps [1.5k, 2k) s + margin.
    seams = np.zeros(x.shape[1], bool)
    for start in range(int(1.5 * rate), x.shape[1], int(1.5 * rate)):
        seams[max(start - rate // 4, 0):start + int(0.75 * rate)] = True
    err = np.abs(whole - chunked)[0]
    assert err[~seams].max() < 1e-4 * np.abs(whole).max()
    assert err[seams].max() < 0.05 * np.abs(whole).max()


def test_separate_other_handles_tracks_shorter_than_one_fft():
    sep = _random_separator(get_config("tiny"))  # n_fft 512
    for n in (1, 100, 512):
        x = np.full((2, n), 0.1, np.float32)
        assert unmix.separate_other(sep, x, 16000).shape == (2, n)
    x = np.random.default_rng(6).normal(0, 0.1, (1, 16000 + 7)).astype(np.float32)
    assert unmix.separate_other(sep, x, 16000, chunk_s=0.25, overlap_s=0.0).shape == x.shape


def test_separate_other_rejects_bad_input():
    sep = _random_separator(get_config("tiny"))
    with pytest.raises(ValueError, match="channels, samples"):
        unmix.separate_other(sep, np.zeros(100, np.float32), 16000)
    with pytest.raises(ValueError, match="Separator"):
        unmix.separate_other(sep.target_models["other"], np.zeros((1, 100), np.float32), 16000)
    with pytest.raises(ValueError, match="no 'vocals' target"):
        unmix.separate_other(sep, np.zeros((1, 100), np.float32), 16000, target="vocals")


# --- data and metrics --------------------------------------------------------------


def test_paired_clips_add_up_and_fixed_clips_repeat():
    rng = np.random.default_rng(3)
    pairs = [(rng.normal(size=(1, 900)).astype(np.float32), rng.normal(size=(1, 900)).astype(np.float32))
             for _ in range(3)]
    fixed = unmix_train.PairedClipDataset(pairs, 200, 5, seed=4, random=False)
    mix, other = fixed[2]
    assert mix.shape == other.shape == (1, 200)
    # Fixed clips: the mixture is exactly other + rest of the same track and position.
    rest = mix.numpy() - other.numpy()
    assert any(np.allclose(rest, p[1][:, s:s + 200], atol=1e-6) for p in pairs for s in range(701))
    again = unmix_train.PairedClipDataset(pairs, 200, 5, seed=4, random=False)[2]
    assert torch.equal(again[0], mix)
    torch.manual_seed(0)
    a = unmix_train.PairedClipDataset(pairs, 1200, 2, random=True)[0]  # longer than the tracks: zero-padded
    assert a[0].shape == (1, 1200) and torch.all(a[1][:, 900:] == 0)
    with pytest.raises(ValueError, match="at least one"):
        unmix_train.PairedClipDataset([], 200, 5)


def test_oracle_irm_separates_two_tones():
    rate = 8000
    other, rest = _sine(440, 2.0, rate), _sine(2500, 2.0, rate)
    est = unmix_eval.oracle_irm(other, rest, n_fft=512, hop=128)
    assert est.shape == other.shape
    inner = slice(512, -512)
    err = est[:, inner] - other[:, inner]
    assert 10 * np.log10(np.sum(other[:, inner] ** 2) / np.sum(err ** 2)) > 20


def test_bss_sdr_known_answers():
    rate = 8000
    rng = np.random.default_rng(5)
    other = rng.normal(0, 0.1, (1, 3 * rate)).astype(np.float32)
    rest = rng.normal(0, 0.1, (1, 3 * rate)).astype(np.float32)
    mix = other + rest
    perfect = unmix_eval.bss_sdr(other, other + 1e-4 * rest, mix, rate)
    floor = unmix_eval.bss_sdr(other, mix, mix, rate)  # equal-power independent noises: SDR ~ 0 dB
    assert perfect["SDR"] > 40
    assert abs(floor["SDR"]) < 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        unmix_eval.bss_sdr(other, other[:, :-1], mix, rate)


# --- training, estimates, evaluation, command line (tiny data set) -----------------


@pytest.fixture(scope="module")
def trained(tiny_cfg, tiny_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("unmix_run")
    unmix_train.train_unmix(tiny_cfg, root=tiny_root, run_dir=run_dir, progress=False)
    return run_dir


def test_train_unmix_writes_a_run_and_a_loadable_model(trained, tiny_cfg):
    for name in ("best.pt", "last.pt", "config.json", "history.json", "done.json",
                 "openunmix/separator.json", "openunmix/other.json", "openunmix/other.pth"):
        assert (trained / name).is_file(), name
    history = json.loads((trained / "history.json").read_text())
    assert len(history["epochs"]) == tiny_cfg.unmix.epochs
    assert np.isfinite(history["epochs"][0]["val"]["mse"])
    sep = unmix.load_unmix(trained)
    assert list(sep.target_models) == ["other"] and int(sep.sample_rate) == tiny_cfg.data.sample_rate
    # the exported model is the best checkpoint
    best = torch.load(trained / "best.pt", weights_only=False)["model"]
    assert torch.equal(sep.target_models["other"].fc1.weight, best["target_models.other.fc1.weight"])


def test_train_unmix_is_cached_and_resumes(trained, tiny_cfg, tiny_root, tmp_path):
    mtime = (trained / "best.pt").stat().st_mtime_ns
    assert unmix_train.train_unmix(tiny_cfg, root=tiny_root, run_dir=trained) == trained
    assert (trained / "best.pt").stat().st_mtime_ns == mtime  # finished run: not retrained
    # Copy the finished run, mark it unfinished and ask for one more epoch: it resumes.
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(trained, run)
    (run / "done.json").unlink()
    longer = tiny_cfg.replace(unmix={"epochs": tiny_cfg.unmix.epochs + 1})
    unmix_train.train_unmix(longer, root=tiny_root, run_dir=run, progress=False)
    before = json.loads((trained / "history.json").read_text())["epochs"]
    after = json.loads((run / "history.json").read_text())["epochs"]
    assert len(after) == len(before) + 1
    assert after[0] == before[0]  # the first epoch was kept, not redone
    assert after[-1]["step"] == before[-1]["step"] + tiny_cfg.unmix.steps_per_epoch


def test_an_interrupted_export_is_redone_not_reused(trained, tiny_cfg, tiny_root, tmp_path):
    import shutil

    run = tmp_path / "half_exported"
    shutil.copytree(trained, run)
    (run / "openunmix" / "separator.json").unlink()  # killed before the export's last file
    assert not unmix.export_complete(run)
    assert unmix_train.train_unmix(tiny_cfg, root=tiny_root, run_dir=run, progress=False) == run
    assert unmix.export_complete(run) and not list((run / "openunmix").glob(".*"))  # no temporary files left
    sep = unmix.load_unmix(run)
    assert torch.equal(sep.target_models["other"].fc1.weight,
                       unmix.load_unmix(trained).target_models["other"].fc1.weight)


def test_too_few_training_tracks_is_a_config_error(tiny_cfg, tiny_root, tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    for track in sorted(p for p in (root / "train").iterdir() if p.is_dir())[1:]:
        shutil.rmtree(track)
    with pytest.raises(ConfigError, match=r"at least 2 training tracks in .*train, found 1; add tracks"):
        unmix_train.train_unmix(tiny_cfg, root=root, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_names_an_unknown_model_in_one_line(tiny_root, tmp_path, capsys):
    from mss_helpers import cli

    code = cli.main(["unmix", "--root", str(tiny_root), "--weights", str(tmp_path), "--model", "nope",
                     "--preset", "tiny", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("error: --model: unknown Open-Unmix model 'nope'")


def test_default_run_dir_ignores_the_source_switch(tiny_cfg):
    run_dir = unmix_train.default_run_dir
    assert run_dir(tiny_cfg) == run_dir(tiny_cfg.replace(data={"source": "unmix"}))
    assert run_dir(tiny_cfg) != run_dir(tiny_cfg.replace(unmix={"hidden_size": 8}))


def test_write_estimates_and_estimate_path(trained, tiny_cfg, tiny_root):
    cfg = tiny_cfg.replace(data={"source": "unmix"})
    root = unmix_eval.write_estimates(cfg, run_dir=trained, root=tiny_root, splits=("test",))
    tracks = datasets.load_tracks(tiny_root, "test")
    for t in tracks:
        path = datasets.estimate_path(cfg, t)
        assert path.is_file() and path.is_relative_to(root)
        est = datasets.input_audio(t, cfg)
        mix = t.load("mixture", rate=cfg.data.sample_rate, channels=cfg.data.channels)
        assert est.shape == mix.shape
    missing = types.SimpleNamespace(subset="train", name="no_such_track")
    with pytest.raises(FileNotFoundError, match="write_estimates"):
        datasets.estimate_path(cfg, missing, must_exist=True)


def test_evaluate_unmix_writes_floor_model_and_ceiling(trained, tiny_cfg, tiny_root):
    from mss_helpers import paths

    sep = unmix.load_unmix(trained)
    result = unmix_eval.evaluate_unmix(tiny_cfg, separator=sep, root=tiny_root)
    written = json.loads((paths.results_dir() / "unmix_tiny.json").read_text())
    assert written["median"] == result["median"]
    assert set(result["median"]) == {"unmix", "mixture", "oracle_irm"}
    assert result["n_tracks"] == 2 and len(result["per_track"]) == 2
    med = {m: v["SDR"] for m, v in result["median"].items()}
    assert all(np.isfinite(v) for v in med.values())
    assert med["oracle_irm"] > med["mixture"] + 3  # the ceiling is well above the floor


def test_cli_writes_estimates_and_refuses_missing_weights(trained, tiny_root, tmp_path, monkeypatch, capsys):
    from mss_helpers import cli

    # --train reuses the cached run of the default run folder: point it at ours.
    monkeypatch.setattr(unmix_train, "default_run_dir", lambda cfg, root=None: trained)
    out = tmp_path / "out"
    assert cli.main(["unmix", "--root", str(tiny_root), "--split", "test", "--out", str(out),
                     "--train", "--preset", "tiny"]) == 0
    assert len(list(out.glob("*/other.wav"))) == 2
    # Without --out the estimates go where the pipeline reads them (data.source = "unmix").
    monkeypatch.setenv("MSS_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["unmix", "--root", str(tiny_root), "--split", "all", "--train", "--preset", "tiny"]) == 0
    cfg = get_config("tiny").replace(data={"source": "unmix"})
    tracks = datasets.load_tracks(tiny_root, "train") + datasets.load_tracks(tiny_root, "test")
    assert all(datasets.estimate_path(cfg, t).is_relative_to(tmp_path / "data") for t in tracks)
    assert all(datasets.input_audio(t, cfg).shape[1] > 0 for t in tracks)
    empty = tmp_path / "no_weights"
    empty.mkdir()
    refused = ["unmix", "--root", str(tiny_root), "--out", str(out), "--weights", str(empty),
               "--preset", "tiny"]
    capsys.readouterr()
    assert cli.main(refused) == 1  # a user's mistake: one line naming the files to fetch, no traceback
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "other-b52fbbf7.pth" in err and "Traceback" not in err
    with pytest.raises(unmix.WeightsNotFoundError, match="other-b52fbbf7.pth"):
        cli.main(refused + ["--debug"])
