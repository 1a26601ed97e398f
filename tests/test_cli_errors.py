"""A user's mistake gives one line ``error: ...`` and a non-zero exit, never a traceback (issue 10).

Each bad input is built in a temporary folder. The rows of issue 10's table run
the real command line in subprocesses (started together, so the file stays
fast); the other cases call ``cli.main`` in this process, which is the same
code path minus the interpreter start. A bug must keep its traceback, and
``--debug`` must show one.
"""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from mss_helpers import cli

RATE = 16000
STEMS = ("mixture", "vocals", "drums", "bass", "other")


def _track(folder, seconds=1.0, channels=1, rate=RATE, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for stem in STEMS:
        x = 0.1 * rng.standard_normal((int(rate * seconds), channels))
        sf.write(folder / f"{stem}.wav", x.astype(np.float32), rate, subtype="FLOAT")
    return folder


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """Data roots, good and bad: name -> Path."""
    base = tmp_path_factory.mktemp("roots")
    out = {}
    good = base / "good"
    for i, name in enumerate(("a", "b", "c")):
        _track(good / "train" / name, seed=i)
    _track(good / "test" / "d", seed=3)
    out["good"] = good
    for name in ("corrupt_mixture", "corrupt_other", "nan", "silent", "short", "three_channels", "rate_22k"):
        kw = {"short": {"seconds": 0.01}, "three_channels": {"channels": 3}, "rate_22k": {"rate": 22050}}
        out[name] = base / name
        _track(out[name] / "test" / "x", **kw.get(name, {}))
    junk = np.random.default_rng(0).bytes(4000)
    (out["corrupt_mixture"] / "test" / "x" / "mixture.wav").write_bytes(junk)
    (out["corrupt_other"] / "test" / "x" / "other.wav").write_bytes(junk)
    sf.write(out["nan"] / "test" / "x" / "other.wav", np.full((RATE, 1), np.nan, np.float32), RATE, subtype="FLOAT")
    sf.write(out["silent"] / "test" / "x" / "other.wav", np.zeros((RATE, 1), np.float32), RATE, subtype="FLOAT")
    (base / "corrupt_mp4" / "test").mkdir(parents=True)
    (base / "corrupt_mp4" / "test" / "song.stem.mp4").write_bytes(junk)
    out["corrupt_mp4"] = base / "corrupt_mp4"
    out["one_train"] = base / "one_train"
    _track(out["one_train"] / "train" / "a")
    (base / "empty").mkdir()
    out["empty"] = base / "empty"
    out["a_file"] = base / "a_file.txt"
    out["a_file"].write_text("not a folder")
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment of a command: tiny preset, every output folder in tmp, no debug."""
    base = tmp_path_factory.mktemp("cli_env")
    e = {k: v for k, v in os.environ.items() if k not in ("MSS_DEBUG", "MSS_SOUNDFONT", "MSS_UNMIX_WEIGHTS")}
    e.update(MSS_PRESET="tiny", MSS_DATA_DIR=str(base / "data"), MSS_RUNS_DIR=str(base / "runs"),
             MSS_RESULTS_DIR=str(base / "results"), MSS_FIGURES_DIR=str(base / "figures"))
    return e


# The bug case: a command that divides by zero, run through the real entry point.
BUG = ("import sys; import mss_helpers.evaluate as e; e.run = lambda args: 1 / 0; "
       "from mss_helpers.cli import main; sys.exit(main(['evaluate']))")


def _cases(roots, tmp):
    """name -> (argv after `python`, extra env, strings the message must name)."""
    ev = ["-m", "mss_helpers", "evaluate"]
    return {
        "empty_root": (ev + ["--root", str(roots["empty"])], {}, [str(roots["empty"]), "empty"]),
        "not_audio": (ev + ["--root", str(roots["corrupt_mixture"]), "--methods", "mixture"], {},
                      [str(roots["corrupt_mixture"] / "test" / "x" / "mixture.wav"), "not a readable audio"]),
        "nan_track": (ev + ["--root", str(roots["nan"]), "--methods", "nmf"], {},
                      ["track 'x'", "stem 'other'", "NaN"]),
        "bogus_method": (ev + ["--methods", "bogus"], {}, ["--methods", "bogus", "kmeans"]),
        "k_zero": (ev + ["--k", "0"], {}, ["--k", "'0'"]),
        "unknown_preset": (["-m", "mss_helpers", "train", "--preset", "nope"], {}, ["'nope'", "tiny"]),
        "kmeans_untrained": (ev + ["--methods", "kmeans", "--root", str(roots["good"])], {},
                             ["python -m mss_helpers train --preset tiny"]),
        "soundfont": (["-m", "mss_helpers", "render"], {"MSS_SOUNDFONT": "/nonexistent.sf2"},
                      ["MSS_SOUNDFONT", "/nonexistent.sf2"]),
        "weights": (["-m", "mss_helpers", "unmix", "--weights", "/nonexistent", "--out", str(tmp / "unmix_out"),
                     "--root", str(roots["good"])], {}, ["/nonexistent", "other-", "--train"]),
        "debug": (ev + ["--root", str(roots["empty"]), "--debug"], {}, []),
        "bug": (["-c", BUG], {}, []),
    }


@pytest.fixture(scope="module")
def runs(roots, env, tmp_path_factory):
    """Every subprocess case, run a few at a time: name -> (returncode, stderr)."""
    cases = _cases(roots, tmp_path_factory.mktemp("cli_out"))
    pending, running, done = list(cases.items()), {}, {}
    while pending or running:
        while pending and len(running) < 4:
            name, (argv, extra, _) = pending.pop(0)
            running[name] = subprocess.Popen([sys.executable] + argv, env={**env, **extra}, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                _, err = proc.communicate()
                done[name] = (proc.returncode, err)
                del running[name]
        time.sleep(0.05)
    return {name: (*done[name], cases[name][2]) for name in cases}


def _assert_one_line_error(code, err, names):
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("error: "), err
    for name in names:
        assert name in last, (name, last)
    return last


@pytest.mark.parametrize("name", ["empty_root", "not_audio", "nan_track", "bogus_method", "k_zero",
                                  "unknown_preset", "kmeans_untrained", "soundfont", "weights"])
def test_issue_table_row_gives_one_line(runs, name):
    code, err, names = runs[name]
    _assert_one_line_error(code, err, names)


def test_debug_shows_the_traceback(runs):
    code, err, _ = runs["debug"]
    assert code != 0 and "Traceback" in err and "DataRootError" in err, err


def test_a_bug_keeps_its_traceback(runs):
    code, err, _ = runs["bug"]
    assert code != 0 and "Traceback" in err and "ZeroDivisionError" in err, err
    assert not any(line.startswith("error: ") for line in err.splitlines()), err


# --- in-process: the same handler, without an interpreter start per case -------------------


@pytest.fixture
def main(env, monkeypatch, capsys):
    """``main(*argv) -> (exit code, stderr)`` with the test environment."""
    for key in ("MSS_DEBUG", "MSS_SOUNDFONT", "MSS_UNMIX_WEIGHTS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        if key.startswith("MSS_"):
            monkeypatch.setenv(key, value)

    def run(*argv):
        capsys.readouterr()
        code = cli.main([str(a) for a in argv])
        return code, capsys.readouterr().err

    return run


@pytest.mark.parametrize("root, names", [
    ("a_file", ["a_file.txt", "not a folder"]),
    ("corrupt_other", ["track 'x', stem 'other'", "other.wav", "not a readable audio"]),
    ("corrupt_mp4", ["song.stem.mp4", "not a readable .stem.mp4"]),
    ("silent", ["track 'x', stem 'other'", "silent"]),
    ("short", ["track 'x', stem 'other'", "s long", "at least"]),
])
def test_bad_data_gives_one_line(main, roots, root, names):
    code, err = main("evaluate", "--root", roots[root], "--methods", "mixture,nmf", "--k", "2")
    _assert_one_line_error(code, err, names)


def test_three_channels_are_an_error_where_stereo_is_expected(main, roots):
    code, err = main("evaluate", "--preset", "paper", "--root", roots["three_channels"], "--methods", "mixture")
    _assert_one_line_error(code, err, ["track 'x'", "3 channels", "2"])


def test_another_sample_rate_is_resampled_not_an_error(main, roots, tmp_path):
    code, err = main("evaluate", "--root", roots["rate_22k"], "--methods", "mixture", "--out", tmp_path / "ev")
    assert code == 0, err
    assert (tmp_path / "ev" / "separation.csv").is_file()


@pytest.mark.parametrize("argv, names", [
    (["evaluate", "--k", "abc"], ["--k", "'abc'"]),
    (["evaluate", "--k", "2,-1"], ["--k", "'-1'"]),
    (["evaluate", "--max-tracks", "0"], ["--max-tracks"]),
    (["listen-export", "--tracks", "0", "--out", "x"], ["--tracks"]),
    (["render", "--preset", "nope"], ["'nope'"]),
    (["unmix", "--preset", "nope", "--out", "x"], ["'nope'"]),
    (["evaluate", "--preset", "nope"], ["'nope'"]),
])
def test_bad_options_give_one_line(main, argv, names):
    _assert_one_line_error(*main(*argv), names)


def test_too_few_training_tracks_for_validation(main, roots, tmp_path):
    code, err = main("train", "--root", roots["one_train"], "--run-dir", tmp_path / "run", "--no-eval")
    _assert_one_line_error(code, err, ["n_val=1", "training tracks (1)"])


def test_output_folder_that_is_a_file(main, roots):
    code, err = main("evaluate", "--root", roots["good"], "--methods", "mixture", "--out", roots["a_file"])
    _assert_one_line_error(code, err, ["a file is where a folder is needed", str(roots["a_file"])])


def test_unknown_preset_from_the_environment_says_so(main, monkeypatch):
    monkeypatch.setenv("MSS_PRESET", "huge")
    _assert_one_line_error(*main("train"), ["'huge'", "$MSS_PRESET"])


def test_mss_debug_reraises_the_error(main, roots, monkeypatch):
    from mss_helpers.errors import DataRootError

    monkeypatch.setenv("MSS_DEBUG", "1")
    with pytest.raises(DataRootError, match="is empty"):
        main("evaluate", "--root", roots["empty"])


def test_argparse_errors_keep_their_usage_line(main):
    with pytest.raises(SystemExit) as exc:
        main("evaluate", "--split", "validation")
    assert exc.value.code == 2


def test_open_unmix_run_missing_names_the_command(tmp_path):
    from mss_helpers.errors import RunNotFoundError
    from mss_helpers.unmix import load_unmix

    with pytest.raises(RunNotFoundError) as exc:
        load_unmix(tmp_path / "no_run")
    message = cli.user_message(exc.value)
    assert str(tmp_path / "no_run") in message and "python -m mss_helpers unmix --train" in message


def test_more_clusters_than_frames_is_a_user_error():
    from mss_helpers.cluster import ClusterError, cluster_frames

    frames = np.random.default_rng(0).standard_normal((5, 4))
    with pytest.raises(ClusterError) as exc:  # evaluate keeps it as the setting's note; the CLI as one line
        cluster_frames(frames, "kmeans", 10)
    message = cli.user_message(exc.value)
    assert message is not None and "k=10" in message and "5 frames" in message


def test_nan_loss_names_the_step_and_keeps_the_checkpoint(main, roots, tmp_path, monkeypatch):
    import torch

    from mss_helpers import autoencoder

    real = autoencoder.vae_loss_fn

    def nan_after_first_epoch(cfg):
        loss_fn = real(cfg)
        steps = cfg.train.steps_per_epoch

        def wrapped(model, batch, step):
            loss, terms = loss_fn(model, batch, step)
            return (loss * float("nan"), terms) if model.training and step >= steps else (loss, terms)

        return wrapped

    monkeypatch.setattr(autoencoder, "vae_loss_fn", nan_after_first_epoch)
    run_dir = tmp_path / "run"
    last = _assert_one_line_error(*main("train", "--root", roots["good"], "--run-dir", run_dir, "--no-eval"),
                                  ["epoch 2", "step", str(run_dir / "last.pt"), "is kept"])
    assert "nan" in last.lower()
    state = torch.load(run_dir / "last.pt", weights_only=False)  # epoch 1, untouched by the NaN step
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize("err_no, words", [(errno.ENOSPC, "no space left"), (errno.EACCES, "permission denied")])
def test_full_disk_or_no_permission_while_writing(main, roots, tmp_path, monkeypatch, err_no, words):
    out = tmp_path / "ev"

    def refuse(self, *args, **kwargs):
        raise OSError(err_no, os.strerror(err_no), str(self))

    monkeypatch.setattr(pathlib.Path, "write_text", refuse)
    last = _assert_one_line_error(*main("evaluate", "--root", roots["good"], "--methods", "mixture",
                                        "--out", out), [words, str(out)])
    assert "Traceback" not in last
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary file left behind
