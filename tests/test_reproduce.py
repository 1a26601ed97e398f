import json

from mss_helpers import report_pages, reproduce


def test_results_block_is_built_from_results_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MSS_RESULTS_DIR", str(tmp_path))
    assert "No results yet" in reproduce.results_markdown("x")
    (tmp_path / "autoencoder_x.json").write_text(json.dumps(
        {"median": {"mse": 0.0012, "snr_db": 9.87, "spectral_mse": 2.5, "cosine": 0.91, "si_sdr_db": 9.1}}))
    (tmp_path / "unmix_x.json").write_text(json.dumps({"median": {"unmix": {"SDR": 6.54}, "mixture": {"SDR": 2.1}}}))
    text = reproduce.results_markdown("x")
    assert "9.87 (1.79)" in text and "| unmix | 6.54 |" in text


def test_update_readme_replaces_only_the_marked_block(tmp_path, monkeypatch):
    monkeypatch.setenv("MSS_RESULTS_DIR", str(tmp_path))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report_pages.README_START}\nold numbers\n{report_pages.README_END}\noutro\n")
    (tmp_path / "autoencoder_x.json").write_text(json.dumps(
        {"median": {"mse": 0.0012, "snr_db": 9.87, "spectral_mse": 2.5, "cosine": 0.91, "si_sdr_db": 9.1}}))
    assert reproduce.update_readme("x", readme=readme)
    text = readme.read_text()
    assert "old numbers" not in text and "9.87" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert not reproduce.update_readme("x", readme=readme)  # unchanged the second time


def test_reproduce_record_says_whether_it_started_from_nothing(tmp_path, monkeypatch):
    """The record counts the install (``started``), each step, and whether data or runs existed."""
    for var, sub in (("MSS_RESULTS_DIR", "results"), ("MSS_RUNS_DIR", "runs"), ("MSS_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    (nb_dir / "01_do_thing.py").write_text("# %%\nx = 1\n")
    built = []
    monkeypatch.setattr(reproduce, "numbered_notebooks", lambda: sorted(nb_dir.glob("*.py")))
    monkeypatch.setattr(reproduce, "execute_notebook", lambda nb, ipynb=None, env=None: built.append(nb.name))
    import mss_helpers.datasets as datasets

    monkeypatch.setattr(datasets, "ensure_dataset", lambda cfg: cfg.data.resolved_root().mkdir(parents=True, exist_ok=True))
    monkeypatch.setattr(reproduce, "update_readme", lambda preset: False)
    monkeypatch.setattr(reproduce, "machine_record", lambda: {"cpu_model": "test cpu", "cpu_count": 2})
    import time

    first = reproduce.reproduce("tiny", started=time.time() - 5)
    assert first["from_nothing"] is True and built == ["01_do_thing.py"]
    assert first["seconds"]["setup"] >= 5 and first["total_seconds"] >= first["seconds"]["setup"]
    saved = json.loads((tmp_path / "results" / "reproduce_tiny.json").read_text())
    assert saved["from_nothing"] is True and set(saved["seconds"]) == {"setup", "data", "01_do_thing"}
    assert saved["capped_runs"] == [] and saved["machine"]["cpu_model"] == "test cpu"
    (tmp_path / "runs" / "ae_tiny_0123456789").mkdir(parents=True)
    second = reproduce.reproduce("tiny")
    assert second["from_nothing"] is False and second["reused_runs"] == ["ae_tiny_0123456789"]
    third = reproduce.reproduce("tiny", force=True)  # --force deletes the preset's data and runs first
    assert third["from_nothing"] is True
    assert "from nothing" in reproduce.timing_markdown(third)


def test_a_capped_run_is_recorded_and_reproduce_exits_non_zero_naming_it(tmp_path, monkeypatch, capsys):
    """The safety net fired: the record lists the run, and the command says how to continue it."""
    from mss_helpers import cli, train
    from mss_helpers.config import get_config

    monkeypatch.setenv("MSS_RUNS_DIR", str(tmp_path / "runs"))
    cfg = get_config("tiny")
    ae = reproduce.report_runs(cfg)[0]
    ae.mkdir(parents=True)
    cap = {"max_minutes": 40.0, "step": 8009, "planned_steps": 9600}
    (ae / "done.json").write_text(json.dumps({"step": 8009, "stopped_early": True, "capped": cap}))
    (ae / "last.pt").write_bytes(b"")
    assert reproduce.capped_runs(cfg) == [{"run": ae.name, **cap}]

    def fake(preset, **kw):
        if kw["resume"]:  # --resume: the capped run is no longer finished, its checkpoint is kept
            for d in reproduce.report_runs(cfg):
                train.finished_run(d, resume=True)
        return {"capped_runs": reproduce.capped_runs(cfg)}

    monkeypatch.setattr(reproduce, "reproduce", fake)
    monkeypatch.setattr(reproduce, "verify_line", lambda preset: "verify: (skipped)")
    assert cli.main(["reproduce", "--preset", "tiny"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run {ae.name} stopped at its 40.0-minute safety net at step 8009 of 9600")
    assert err.endswith("reproduce --preset tiny --resume (the checkpoint is kept)") and "\n" not in err
    assert cli.main(["reproduce", "--preset", "tiny", "--resume"]) == 0
    assert (ae / "last.pt").is_file() and not (ae / "done.json").exists()


def test_machine_record_names_the_cpu_and_threads():
    record = reproduce.machine_record(score=False)
    assert record["cpu_count"] >= 1 and record["torch_threads"] >= 1 and record["cpu_model"]
