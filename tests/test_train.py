"""The generic loop (fit), the autoencoder run and its reconstruction report."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mss_helpers import autoencoder, train
from mss_helpers.config import ModelConfig, TrainConfig
from mss_helpers.losses import vae_loss
from mss_helpers.model import SEANetVAE

TINY = ModelConfig(n_filters=4, ratios=(4, 4, 2), latent_dim=8, lstm=0, encoder_dim=16)


def regression_setup(n=32, batch=8):
    """A linear model y = w x with a known answer, and its loaders."""
    torch.manual_seed(0)
    x = torch.randn(n, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True)
    model = torch.nn.Linear(3, 1)

    def loss_fn(m, b, step):
        loss = torch.mean((m(b[0]) - b[1]) ** 2)
        return loss, {"mse": float(loss.detach())}

    return model, loss_fn, loader


def run_fit(model, loss_fn, loader, run_dir, epochs, resume=False, **kw):
    return train.fit(model, loss_fn, loader, loader, run_dir, epochs=epochs, steps_per_epoch=4, lr=0.05,
                     weight_decay=0.0, grad_clip=1.0, seed=0, config={"test": True}, resume=resume,
                     progress=False, device="cpu", **kw)


def test_fit_writes_run_files_and_learns(tmp_path):
    model, loss_fn, loader = regression_setup()
    history = run_fit(model, loss_fn, loader, tmp_path, epochs=3)
    for name in ("config.json", "history.json", "best.pt", "last.pt", "done.json"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "history.json").read_text())
    assert len(saved["epochs"]) == 3 and saved["epochs"][-1]["step"] == 12
    assert set(saved["epochs"][0]["val"]) == {"total", "mse"}
    assert history["epochs"][-1]["val"]["total"] < history["epochs"][0]["val"]["total"]
    assert json.loads((tmp_path / "config.json").read_text())["config"] == {"test": True}
    state = torch.load(tmp_path / "best.pt", weights_only=False)
    assert state["epoch"] == history["best_epoch"]
    assert state["best_val"] == pytest.approx(min(e["val"]["total"] for e in history["epochs"]))


def test_resume_continues_from_last_checkpoint(tmp_path):
    model, loss_fn, loader = regression_setup()
    straight = run_fit(model, loss_fn, loader, tmp_path / "a", epochs=3)
    w_straight = model.weight.detach().clone()

    model, loss_fn, loader = regression_setup()
    run_fit(model, loss_fn, loader, tmp_path / "b", epochs=2)
    model, loss_fn, loader = regression_setup()  # a fresh process would rebuild everything
    resumed = run_fit(model, loss_fn, loader, tmp_path / "b", epochs=3, resume=True)
    assert [e["step"] for e in resumed["epochs"]] == [4, 8, 12] == [e["step"] for e in straight["epochs"]]
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["step"] == 12
    # same RNG and data order after resuming: the same weights as the uninterrupted run
    torch.testing.assert_close(model.weight.detach(), w_straight)


def test_nan_loss_raises_naming_the_step_and_saves_nothing(tmp_path):
    model, _, loader = regression_setup()

    def loss_fn(m, b, step):
        loss = torch.mean((m(b[0]) - b[1]) ** 2)
        if step == 6:
            loss = loss * float("nan")
        return loss, {}

    with pytest.raises(FloatingPointError, match="step 6"):
        run_fit(model, loss_fn, loader, tmp_path, epochs=3)
    state = torch.load(tmp_path / "last.pt", weights_only=False)  # from epoch 1, untouched
    assert state["step"] == 4 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (tmp_path / "done.json").exists()


def test_atomic_checkpoint_leaves_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    train.save_checkpoint(path, {"step": 1})

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train.save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"step": 1}  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # and no temp file left


def test_tiny_vae_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = SEANetVAE(TINY, 1, 8000)
    t = torch.arange(2048) / 8000
    x = (0.5 * torch.sin(2 * np.pi * torch.tensor([[220.0], [550.0]]) * t))[:, None]  # (2, 1, 2048)
    tcfg = TrainConfig(kl_weight=1e-3, kl_warmup_steps=0, stft_sizes=(128, 256))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(20):
        recon, mean, logvar = model(x)
        loss, _ = vae_loss(recon, x, mean, logvar, step, tcfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3])


def test_train_autoencoder_caches_and_reports(tiny_run, tiny_cfg, tiny_root):
    from mss_helpers import paths

    assert (tiny_run / "done.json").is_file()
    mtime = (tiny_run / "best.pt").stat().st_mtime_ns
    again = autoencoder.train_autoencoder(tiny_cfg, root=tiny_root, run_dir=tiny_run, progress=False)
    assert again == tiny_run and (tiny_run / "best.pt").stat().st_mtime_ns == mtime  # reused, not retrained
    result = autoencoder.evaluate_reconstruction(tiny_cfg, tiny_run, root=tiny_root)
    keys = {"mse", "snr_db", "spectral_mse", "cosine", "si_sdr_db"}
    assert set(result["median"]) == keys and len(result["per_track"]) == 2
    assert all(np.isfinite(v) for v in result["median"].values())
    saved = json.loads((paths.results_dir() / "autoencoder_tiny.json").read_text())
    assert saved["per_track"][0]["track"] == result["per_track"][0]["track"]


def test_lr_factor_schedules():
    from mss_helpers.errors import ConfigError

    assert [train.lr_factor(s, 100) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    cos = [train.lr_factor(s, 100, "cosine", warmup_steps=10) for s in range(100)]
    assert cos[0] == pytest.approx(0.1) and cos[9] == pytest.approx(1.0)  # linear warm-up
    assert all(a >= b for a, b in zip(cos[9:], cos[10:]))  # then never rises
    assert cos[-1] == pytest.approx(0.01)  # and ends at 1 % of the peak
    one = [train.lr_factor(s, 100, "onecycle") for s in range(100)]
    assert one[0] < 0.1 and max(one) == pytest.approx(1.0) and int(np.argmax(one)) == 24
    assert one[-1] == pytest.approx(0.01 / 25)
    with pytest.raises(ConfigError, match="lr_schedule"):
        train.lr_factor(0, 10, "linear")


def test_fit_follows_the_schedule_and_resumes_on_it(tmp_path):
    def halving(step):
        return 0.5 ** step

    model, loss_fn, loader = regression_setup()
    straight = run_fit(model, loss_fn, loader, tmp_path / "a", epochs=3, lr_schedule=halving)
    # the lr of each epoch's last step (steps 3, 7, 11), times the peak 0.05
    assert [e["lr"] for e in straight["epochs"]] == pytest.approx([0.05 * 0.5**s for s in (3, 7, 11)])
    w_straight = model.weight.detach().clone()
    model, loss_fn, loader = regression_setup()
    run_fit(model, loss_fn, loader, tmp_path / "b", epochs=1, lr_schedule=halving)
    model, loss_fn, loader = regression_setup()
    resumed = run_fit(model, loss_fn, loader, tmp_path / "b", epochs=3, resume=True, lr_schedule=halving)
    assert [e["lr"] for e in resumed["epochs"]] == [e["lr"] for e in straight["epochs"]]
    torch.testing.assert_close(model.weight.detach(), w_straight)


def _script(name: str, monkeypatch):
    """Import ``scripts/<name>.py`` as a module (its folder on sys.path, as when it runs as a script)."""
    import importlib.util

    from mss_helpers import paths

    monkeypatch.syspath_prepend(str(paths.PROJ_ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, paths.PROJ_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_search_configs_are_the_issue3_base_plus_their_changes(monkeypatch):
    from mss_helpers.config import get_config

    search = _script("ae_search", monkeypatch)
    base = search.search_config("cpu", "base", 400)
    assert base.model.latent_dim == 16 and base.train.lr_schedule == "constant"
    assert autoencoder.train_clip_s(base) == 1.0
    assert (base.train.epochs, base.train.steps_per_epoch, base.train.max_minutes) == (4, 100, None)
    lat = search.search_config("cpu", "lat32_cos_lv_clip0.5", 800)
    assert (lat.model.latent_dim, lat.model.logvar_init, autoencoder.train_clip_s(lat)) == (32, -10.0, 0.5)
    assert lat.train.lr_schedule == "cosine" and lat.train.epochs == 8
    preset = search.search_config("cpu", "preset", 3200)
    assert preset.model == get_config("cpu").model and preset.data == get_config("cpu").data


def test_the_cpu_preset_is_the_screened_configuration_it_names(monkeypatch):
    """The row the cpu preset's comment cites (round 4's res0) trains the same network with the same loss."""
    import dataclasses

    from mss_helpers.config import get_config
    from mss_helpers.model import SEANetVAE

    search = _script("ae_search", monkeypatch)
    cpu = get_config("cpu")
    row = search.search_config("cpu", "lat32_cos_lv_clip0.5_skip_c1_r88_stft0_res0", 9600)
    shapes = [{k: v.shape for k, v in SEANetVAE(c.model, 1, 16000).state_dict().items()} for c in (cpu, row)]
    assert shapes[0] == shapes[1]  # true_skip and compress build nothing without residual blocks
    skip = {"true_skip", "compress"}
    assert {k: v for k, v in dataclasses.asdict(cpu.model).items() if k not in skip} == \
        {k: v for k, v in dataclasses.asdict(row.model).items() if k not in skip}
    budget = {"epochs", "steps_per_epoch", "max_minutes", "clip_s"}
    assert {k: v for k, v in dataclasses.asdict(cpu.train).items() if k not in budget} == \
        {k: v for k, v in dataclasses.asdict(row.train).items() if k not in budget}
    assert cpu.train.epochs * cpu.train.steps_per_epoch == 9600
    assert autoencoder.train_clip_s(cpu) == autoencoder.train_clip_s(row) == 0.5


def test_mixit_curve_configs_change_only_what_they_name(monkeypatch):
    from mss_helpers.config import get_config

    curve = _script("mixit_curve", monkeypatch)
    preset = get_config("cpu")
    few = curve.curve_config("cpu", "tracks8", 1000)
    assert few.separator.train_tracks == 8 and few.data == preset.data.__class__(**{
        **preset.data.__dict__, "extra_train": 0})
    assert (few.separator.epochs, few.separator.max_minutes, few.separator.lr) == (10, None, preset.separator.lr)
    extra = curve.curve_config("cpu", "extra200", 1000)
    assert extra.data.extra_train == 200 and extra.separator.train_tracks is None
    assert extra.data.resolved_root() != few.data.resolved_root()


def test_mixit_student_configs_change_only_the_student(monkeypatch):
    from mss_helpers.config import get_config

    student = _script("mixit_student", monkeypatch)
    preset = get_config("cpu")
    k4 = student.student_config("cpu", "k4", 1000)
    assert (k4.student.pseudo_k, k4.student.epochs, k4.student.max_minutes) == (4, 10, None)
    assert (k4.data, k4.separator) == (preset.data, preset.separator)  # the teacher is the preset's
    latent = student.student_config("cpu", "latent_auto", 250)
    assert (latent.student.grouping, latent.student.pseudo_k, latent.student.epochs) == ("latent", None, 3)
    assert student.student_config("cpu", "teacher", 1000).student.pseudo_k is None


def test_search_csv_replaces_a_rows_key_and_keeps_the_others(tmp_path, monkeypatch):
    import csv

    search_csv = _script("search_csv", monkeypatch)
    out, fields = tmp_path / "r.csv", ["config", "steps", "x"]
    search_csv.write_row(out, {"config": "a", "steps": 10, "x": 1}, fields, tmp_path / "lock")
    search_csv.write_row(out, {"config": "b", "steps": 10, "x": 2}, fields, tmp_path / "lock")
    search_csv.write_row(out, {"config": "a", "steps": 10, "x": 3}, fields, tmp_path / "lock")
    search_csv.write_row(out, {"config": "a", "steps": 20, "x": 4}, fields, tmp_path / "lock")
    rows = list(csv.DictReader(open(out)))
    assert [(r["config"], r["steps"], r["x"]) for r in rows] == [("b", "10", "2"), ("a", "10", "3"), ("a", "20", "4")]


def test_search_csv_runs_the_named_configurations_or_only_lists_them(tmp_path, monkeypatch, capsys):
    search_csv = _script("search_csv", monkeypatch)
    configs = {"a": {"x": 1}, "b": {"x": 2}, "c": {"x": 3}}
    parser = search_csv.parser("test", configs, 10)
    written = []
    before = torch.get_num_threads()
    try:
        search_csv.run_configs(parser.parse_args(["c", "a", "--threads", "1"]), configs, tmp_path / "r.csv",
                               lambda name: {"config": name, "x": configs[name]["x"]},
                               lambda out, row: written.append((out.name, row["config"])),
                               lambda row: f"x={row['x']}")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert written == [("r.csv", "c"), ("r.csv", "a")]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("c: x=3 (") and printed[1].startswith("a: x=1 (")
    search_csv.run_configs(parser.parse_args(["--list"]), configs, tmp_path / "r.csv",
                           lambda name: pytest.fail("--list ran a configuration"), None, None)
    assert capsys.readouterr().out.splitlines() == ["a: {'x': 1}", "b: {'x': 2}", "c: {'x': 3}"]


def test_train_autoencoder_trains_on_its_threads_and_gives_them_back(tiny_cfg, tiny_root, tmp_path, monkeypatch):
    seen = []

    def spy_fit(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise RuntimeError("stop here")

    monkeypatch.setattr(autoencoder, "fit", spy_fit)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="stop here"):  # even when training fails
            autoencoder.train_autoencoder(tiny_cfg.replace(train={"torch_threads": 1}), root=tiny_root,
                                    run_dir=tmp_path, progress=False)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_search_csv_reads_a_runs_steps_and_minutes(tmp_path, monkeypatch):
    search_csv = _script("search_csv", monkeypatch)
    history = {"epochs": [{"steps": 100, "seconds": 30.0}, {"steps": 40, "seconds": 12.6}], "best_val": 1.0}
    (tmp_path / "history.json").write_text(json.dumps(history))
    read, timing = search_csv.training_run(tmp_path)
    assert read == history and timing == {"steps": 140, "minutes": 0.71}


def test_the_safety_net_caps_a_run_records_it_and_resume_finishes_every_step(tmp_path):
    """A wall-clock cap is a safety net: the run is recorded as capped, and --resume ends on all its steps."""
    torch.manual_seed(0)
    x = torch.randn(32, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)  # the same batches every epoch

    def loss_fn(m, b, step):
        loss = torch.mean((m(b[0]) - b[1]) ** 2)
        return loss, {"mse": float(loss.detach())}

    torch.manual_seed(1)
    straight_model = torch.nn.Linear(3, 1)
    run_fit(straight_model, loss_fn, loader, tmp_path / "straight", epochs=3)

    torch.manual_seed(1)
    model = torch.nn.Linear(3, 1)
    history = run_fit(model, loss_fn, loader, tmp_path / "capped", epochs=3, max_minutes=1e-9)
    assert history["capped"] == {"max_minutes": 1e-9, "step": 1, "planned_steps": 12}
    assert train.capped(tmp_path / "capped") == history["capped"]
    assert train.capped(tmp_path / "straight") is None
    note = train.cap_note(tmp_path / "capped", "python -m mss_helpers train --resume")
    assert "step 1 of 12" in note and "--resume" in note
    assert train.cap_note(tmp_path / "straight", "x") is None

    assert not train.finished_run(tmp_path / "capped", resume=True)  # a capped run is not finished for --resume
    torch.manual_seed(1)
    model = torch.nn.Linear(3, 1)
    resumed = run_fit(model, loss_fn, loader, tmp_path / "capped", epochs=3, resume=True)
    assert resumed["capped"] is None and resumed["resumed_after_caps"][0]["step"] == 1
    assert [(e["epoch"], e["steps"]) for e in resumed["epochs"]] == [(1, 4), (2, 4), (3, 4)]
    assert json.loads((tmp_path / "capped" / "done.json").read_text())["step"] == 12
    assert torch.allclose(model.weight, straight_model.weight, atol=1e-6)  # the batches it had were replayed


def test_the_safety_net_is_not_part_of_a_runs_name():
    from mss_helpers.config import config_hash, get_config

    cfg = get_config("cpu")
    longer = cfg.replace(train={"max_minutes": 400.0}, separator={"max_minutes": None})
    assert config_hash(longer, "data", "model", "train") == config_hash(cfg, "data", "model", "train")
    assert config_hash(longer, "data", "separator") == config_hash(cfg, "data", "separator")
    assert config_hash(longer) == config_hash(cfg)
    more_steps = cfg.replace(train={"epochs": cfg.train.epochs + 1})
    assert config_hash(more_steps, "data", "model", "train") != config_hash(cfg, "data", "model", "train")


def test_cpu_score_times_a_fixed_number_of_steps():
    score = autoencoder.cpu_score(steps=2)
    assert score["seconds"] > 0 and "2 training steps" in score["what"]


def test_torch_threads_gives_the_setting_back():
    import torch

    from mss_helpers.train import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):  # None: as it is
        assert torch.get_num_threads() == before
    try:
        with torch_threads(1):
            raise KeyError("inside")
    except KeyError:
        pass
    assert torch.get_num_threads() == before  # given back after an error too
