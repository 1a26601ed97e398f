"""The teacher-student round of the MixIT separator: the loss, the clips, training without stems, errors."""

import itertools
import json

import numpy as np
import pytest
import torch

from mss_helpers import separator as sp
from mss_helpers import separator_student as ss
from mss_helpers.errors import ConfigError, RunNotFoundError


def _pit_bruteforce(out, src, valid, snr_max_db=30.0):
    """Every permutation, every row by hand."""
    tau = 10 ** (-snr_max_db / 10)
    losses = []
    for b in range(out.shape[0]):
        x = src[b].sum(0).flatten()
        best = np.inf
        for perm in itertools.permutations(range(out.shape[1])):
            c = 0.0
            for j, i in enumerate(perm):
                o, s = out[b, i].flatten(), src[b, j].flatten()
                if valid[b, j]:
                    c += float(10 * torch.log10(((s - o) ** 2).sum() + tau * (s ** 2).sum() + 1e-8)
                               - 10 * torch.log10((s ** 2).sum() + 1e-8))
                else:
                    c += float(10 * torch.log10((o ** 2).sum() + tau * (x ** 2).sum() + 1e-8)
                               - 10 * torch.log10((x ** 2).sum() + 1e-8))
            best = min(best, c)
        losses.append(best)
    return float(np.mean(losses))


def test_pit_loss_matches_brute_force_and_finds_the_permutation():
    torch.manual_seed(0)
    valid = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1.0]])
    src = torch.randn(3, 4, 1, 300) * valid[:, :, None, None]
    order = torch.tensor([2, 0, 3, 1])
    out = src[:, order] + 0.01 * torch.randn(3, 4, 1, 300)  # output i holds source order[i]
    loss, perm = ss.pit_loss(out, src, valid)
    assert float(loss) == pytest.approx(_pit_bruteforce(out, src, valid), abs=1e-4)
    # source j is at the output i with order[i] == j (rows that are empty may swap among themselves)
    expected = torch.argsort(order)
    for b in range(3):
        for j in range(int(valid[b].sum())):
            assert int(perm[b, j]) == int(expected[j])


def test_pit_loss_asks_empty_rows_for_silence():
    torch.manual_seed(1)
    src = torch.zeros(1, 3, 1, 500)
    src[0, 0] = torch.randn(1, 500)
    valid = torch.tensor([[1.0, 0, 0]])
    quiet = torch.stack([src[0, 0], 0 * src[0, 0], 0 * src[0, 0]])[None]
    noisy = torch.stack([src[0, 0], 0.3 * torch.randn(1, 500), 0 * src[0, 0]])[None]
    good, _ = ss.pit_loss(quiet, src, valid)
    bad, _ = ss.pit_loss(noisy, src, valid)
    assert float(good) == pytest.approx(-90.0, abs=0.1)  # three rows, each at the 30 dB cap
    assert float(bad) > float(good) + 15


def test_clips_pad_to_the_outputs_and_check_their_input():
    rng = np.random.default_rng(0)
    sources = [rng.standard_normal((2, 1, 4000)).astype(np.float32),
               rng.standard_normal((3, 1, 5000)).astype(np.float32)]
    ds = ss.PseudoSourceClips(sources, n_outputs=4, clip=1000, n_items=20, seed=0)
    counts = set()
    for i in range(len(ds)):
        clip, valid = ds[i]
        assert clip.shape == (4, 1, 1000)
        n = int(valid.sum())
        counts.add(n)
        assert torch.all(clip[n:] == 0) and torch.all(clip[:n].abs().sum(dim=(1, 2)) > 0)
    assert counts == {2, 3}
    fixed = ss.PseudoSourceClips(sources, 4, 1000, 4, seed=1, random=False)
    first, drawn = fixed[2][0], ds[2][0]
    fixed.set_epoch(1)
    ds.set_epoch(1)
    assert torch.equal(fixed[2][0], first)  # validation clips do not change with the epoch
    assert not torch.equal(ds[2][0], drawn)  # training clips are drawn again
    with pytest.raises(ValueError, match="more pseudo-sources"):
        ss.PseudoSourceClips(sources, n_outputs=2, clip=1000, n_items=1)
    with pytest.raises(ValueError, match="shorter than one clip"):
        ss.PseudoSourceClips(sources, n_outputs=4, clip=4500, n_items=1)


def test_student_trains_from_a_teacher_without_reading_the_stems(tiny_cfg, stemless_root, tmp_path):
    """Teacher and student on a copy of the tiny set without other_stems/, every file read spied on."""
    root, read = stemless_root
    cfg = tiny_cfg.replace(student={"n_outputs": 3, "epochs": 2, "steps_per_epoch": 2, "batch_size": 2,
                                    "clip_s": 1.0, "val_clips": 2, "max_minutes": None})
    teacher = sp.train_separator(cfg, root=root, run_dir=tmp_path / "teacher", progress=False)
    run = ss.train_student(cfg, root=root, teacher_run=teacher, run_dir=tmp_path / "student", progress=False)
    assert read and all(p.endswith("other.wav") for p in read), read
    assert (run / "done.json").is_file()
    saved = json.loads((run / "config.json").read_text())["config"]
    per_track = saved["pseudo_sources_per_track"]
    assert all(1 <= int(k) <= 3 for k in per_track) and sum(per_track.values()) >= 2
    student = ss.load_student(cfg, run_dir=run)
    assert student.n_outputs == 3 and not student.training
    # started from the teacher: 4 Adam steps of lr 1e-3 move a weight by at most ~0.004
    first = sp.load_separator(cfg, run_dir=teacher)
    assert (student.inp[0].weight - first.inp[0].weight).abs().max() < 0.01
    x = 0.1 * torch.randn(1, 1, 4000)
    with torch.no_grad():
        y = student(x)
    assert y.shape == (1, 3, 1, 4000)
    assert torch.allclose(y.sum(1), x, atol=1e-4)  # mixture-consistent, like the teacher
    mtime = (run / "last.pt").stat().st_mtime_ns
    ss.train_student(cfg, root=root, teacher_run=teacher, run_dir=run, progress=False)  # finished: a cache
    assert (run / "last.pt").stat().st_mtime_ns == mtime


def test_student_errors_are_clear(tiny_cfg, tiny_root, tmp_path):
    with pytest.raises(RunNotFoundError, match="train-separator --preset tiny"):
        ss.train_student(tiny_cfg, root=tiny_root, teacher_run=tmp_path / "no_teacher", run_dir=tmp_path / "s")
    with pytest.raises(RunNotFoundError, match="mixit_student.py --preset tiny"):
        ss.load_student(tiny_cfg, run_dir=tmp_path / "nothing")
    with pytest.raises(ConfigError, match="between 2 and 6"):
        ss.train_student(tiny_cfg.replace(student={"n_outputs": 7}), root=tiny_root, run_dir=tmp_path / "s")
    with pytest.raises(ConfigError, match="needs the trained autoencoder"):
        ss.train_student(tiny_cfg.replace(student={"grouping": "latent"}), root=tiny_root,
                         run_dir=tmp_path / "s")


def test_pan_student_learns_from_the_stereo_image_without_reading_the_stems(tiny_cfg, stemless_root, tmp_path):
    """Teacher "pan": pseudo-sources from pan clustering of the stereo other.wav; no MixIT run, no stem read."""
    root, read = stemless_root
    cfg = ss.pan_student_config(tiny_cfg).replace(student={"n_outputs": 3, "epochs": 1, "steps_per_epoch": 2,
                                                           "batch_size": 2, "clip_s": 1.0, "val_clips": 2,
                                                           "max_minutes": None})
    run = ss.train_student(cfg, root=root, run_dir=tmp_path / "pan_student", progress=False)
    assert read and all(p.endswith("other.wav") for p in read), read
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["teacher_run"] == ""  # no MixIT teacher was loaded
    per_track = saved["pseudo_sources_per_track"]
    assert all(2 <= int(k) <= 3 for k in per_track)  # k = auto over 2..n_outputs pan clusters
    student = ss.load_student(cfg, run_dir=run)
    x = 0.1 * torch.randn(1, 1, 4000)  # it hears mono
    with torch.no_grad():
        assert student(x).shape == (1, 3, 1, 4000)


def test_pan_pseudo_sources_are_parts_of_the_downmix(tiny_cfg, tiny_root):
    from mss_helpers import datasets

    track = datasets.load_tracks(tiny_root, "train")[0]
    x = track.load("other", rate=tiny_cfg.data.sample_rate, channels=2)
    parts = ss.pan_pseudo_sources(x, ss.pan_student_config(tiny_cfg))
    assert parts.shape[1:] == (1, x.shape[1]) and 2 <= len(parts) <= 5
    assert np.allclose(parts.sum(0)[0], x.mean(0), atol=1e-4)  # they re-sum to what the student hears


def test_pan_student_errors_are_clear(tiny_cfg, tmp_path):
    from mss_helpers.errors import AudioError

    with pytest.raises(RunNotFoundError, match="train-student --preset tiny"):
        ss.load_pan_student(tiny_cfg.replace(student={"seed": 99}))  # a student nobody trained
    with pytest.raises(ConfigError, match="student.teacher must be one of"):
        ss.train_student(tiny_cfg.replace(student={"teacher": "nope"}), run_dir=tmp_path / "s")
    mono = np.tile(0.1 * np.sin(np.arange(8000, dtype=np.float32) / 5), (2, 1))
    with pytest.raises(AudioError, match="track 'x'.*no stereo image"):
        ss.pan_pseudo_sources(mono, ss.pan_student_config(tiny_cfg), "track 'x'")
