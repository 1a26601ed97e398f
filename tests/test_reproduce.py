import json

from mss_helpers import reproduce


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
    readme.write_text(f"intro\n{reproduce.README_START}\nold numbers\n{reproduce.README_END}\noutro\n")
    (tmp_path / "autoencoder_x.json").write_text(json.dumps(
        {"median": {"mse": 0.0012, "snr_db": 9.87, "spectral_mse": 2.5, "cosine": 0.91, "si_sdr_db": 9.1}}))
    assert reproduce.update_readme("x", readme=readme)
    text = readme.read_text()
    assert "old numbers" not in text and "9.87" in text
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert not reproduce.update_readme("x", readme=readme)  # unchanged the second time
