"""Figures: what they draw, checked on synthetic data with known answers.

The UMAP maps must show every class (the old map was one blob in the colour of
the class drawn last); the statistical figures must draw the numbers they are
given (medians, reference lines, the chosen k); the HTML front page must hold
real tables, not Markdown.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mss_helpers import plots, reproduce  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _imbalanced(seed=0, sizes=(9000, 400, 300, 200, 100)):
    """Five overlapping blobs, the first 90 % of the frames (as synth_pad dominated the real map)."""
    rng = np.random.default_rng(seed)
    emb = np.concatenate([rng.normal(i, 1.5, (n, 2)) for i, n in enumerate(sizes)])
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
    return emb, labels


def _drawn_per_colour(collection) -> dict:
    colours = [tuple(np.round(c[:3], 4)) for c in collection.get_facecolors()]
    return pd.Series(colours).value_counts().to_dict()


# --- UMAP ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_points", [50, 500, 5000])
def test_balanced_sample_caps_every_class_and_shuffles_the_order(max_points):
    _, labels = _imbalanced()
    idx = plots.balanced_sample(labels, max_points=max_points, seed=0)
    counts = np.bincount(labels[idx], minlength=5)
    cap = max_points // 5
    assert counts.max() <= cap
    assert all(counts[c] == min(cap, (labels == c).sum()) for c in range(5))
    assert len(np.unique(idx)) == len(idx)
    # Drawing order: the last fifth drawn holds several classes, not one class on top.
    assert len(np.unique(labels[idx[-len(idx) // 5:]])) >= 3
    assert np.array_equal(idx, plots.balanced_sample(labels, max_points=max_points, seed=0))


def test_scatter_no_class_covers_more_than_its_share():
    emb, labels = _imbalanced()
    labels[:50] = -1  # a few silent frames: a class of their own
    names = ["pad", "lead", "piano", "organ", "brass"]
    fig = plots.scatter_2d(emb, labels, names, max_points=1200)
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # grey cloud, then the balanced, shuffled classes
    cloud, drawn = ax.collections
    assert len(cloud.get_offsets()) == min(len(emb), 4 * 1200)  # a uniform draw of all frames
    counts = _drawn_per_colour(drawn)
    n_classes = 6
    assert len(counts) == n_classes  # every class is visible, silence included
    # The pad class held 90 % of the frames; drawn, it holds no more than any other class.
    assert max(counts.values()) == 1200 // n_classes
    assert sorted(counts.values()) == [50, 100, 200, 200, 200, 200]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"none (silent)", *names}


def test_umap_panels_balance_each_colouring_on_its_own():
    emb, labels = _imbalanced()
    tracks = np.arange(len(labels)) % 7
    fig = plots.umap_panels(emb, {"instrument": (labels, None), "track": (tracks, None)}, max_points=700)
    assert len(fig.axes) == 2
    for ax, n_classes in zip(fig.axes, (5, 7)):
        counts = _drawn_per_colour(ax.collections[1])
        assert len(counts) == n_classes
        assert max(counts.values()) <= 700 // n_classes


def test_umap_by_instrument_highlights_each_instruments_frames():
    emb, labels = _imbalanced()
    names = ["pad", "lead", "piano", "organ", "brass"]
    fig = plots.umap_by_instrument(emb, labels, names, ncols=3, max_per_panel=250)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 5
    for i, ax in enumerate(visible):
        highlighted = ax.collections[1].get_offsets()
        assert len(highlighted) == min(250, (labels == i).sum())
        assert ax.get_title().startswith(f"{names[i]}: {(labels == i).sum()} frames")
        # the highlighted points are this instrument's frames, not a draw from all frames
        mine = {tuple(p) for p in emb[labels == i]}
        assert all(tuple(p) in mine for p in np.asarray(highlighted))


def test_scatter_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one label per row"):
        plots.scatter_2d(np.zeros((5, 2)), np.zeros(4, dtype=int))


# --- separation and ablation ---------------------------------------------------------------


def _separation_table(seed=0):
    """A run_evaluation-like table: 6 tracks x 3 instruments, known medians per setting."""
    rng = np.random.default_rng(seed)
    centre = {("mixture", "-", "n"): 0.0, ("oracle_irm", "-", "n"): 12.0, ("oracle_frames", "-", "n"): 2.0,
              ("nmf", "-", "n"): 1.0, ("nmf", "-", "2"): 1.5,
              ("kmeans", "hard", "n"): -5.0, ("kmeans", "soft", "n"): -1.0,
              ("kmeans", "hard", "2"): -3.0, ("kmeans", "soft", "2"): -2.0, ("kmeans", "soft", "3"): -0.5,
              ("dbscan", "hard", "auto"): -0.5, ("dbscan", "soft", "auto"): 0.0}
    rows = []
    for (method, decoding, k_label), c in centre.items():
        for t in range(6):
            for inst in ("brass", "organ", "piano"):
                rows.append({"track": f"t{t}", "method": method, "decoding": decoding, "k_label": k_label,
                             "instrument": inst, "estimate": 0.0,
                             "si_sdri_db": c + rng.uniform(-1, 1) + (3.0 if inst == "piano" else 0.0)})
        rows.append({"track": "t0", "method": method, "decoding": decoding, "k_label": k_label,
                     "instrument": "", "estimate": 1.0, "si_sdri_db": np.nan})  # an unmatched estimate
    for inst in ("brass", "organ", "piano"):  # a method that failed: every instrument missed
        rows.append({"track": "t0", "method": "hdbscan", "decoding": "hard", "k_label": "auto",
                     "instrument": inst, "estimate": np.nan, "si_sdri_db": np.nan})
    return pd.DataFrame(rows)


def test_method_comparison_marks_floor_ceilings_and_best_fixed_k():
    df = _separation_table()
    fig = plots.method_comparison(df, "si_sdri_db")
    left, right = fig.axes[:2]
    lines = {line.get_label().split(" (")[0]: line.get_xdata()[0] for line in left.get_lines()
             if line.get_label().startswith(("floor", "ceiling"))}
    matched = df[df.instrument != ""]
    for ref, text in [("mixture", "floor"), ("oracle_irm", "ceiling: oracle ratio mask"),
                      ("oracle_frames", "ceiling: best latent-frame assignment")]:
        expected = matched[matched.method == ref].si_sdri_db.median()
        key = next(k for k in lines if k.startswith(text))
        assert lines[key] == pytest.approx(expected)
    # one row per method (references are lines, not rows); kmeans soft is best at k=3, hard at k=2
    ticks = [t.get_text() for t in right.get_yticklabels()]
    assert [t.split("\n")[0] for t in ticks] == ["nmf", "kmeans", "dbscan", "hdbscan (no matched pair)"]
    assert "hard k=2" in ticks[1] and "soft k=3" in ticks[1] and "no fixed k" in ticks[2]
    assert [t.get_text() for t in left.get_yticklabels()] == ["nmf", "kmeans", "dbscan (auto)",
                                                              "hdbscan (no matched pair)"]


def test_instrument_results_annotates_each_median():
    df = _separation_table()
    fig = plots.instrument_results(df, "si_sdri_db")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 3 * 8  # 3 instruments x 8 settings at k = n or auto
    piano = df[(df.instrument == "piano") & (df.method == "oracle_irm")].si_sdri_db.median()
    assert f"{piano:.1f}" in texts
    assert [t.get_text() for t in ax.get_yticklabels()][2] == "piano (6 pairs)"


def test_ablation_bars_draw_the_given_values_and_chance():
    arms = {"kl_weight=0": {"snr_db": 4.5, "si_sdr_db": 2.7, "knn_purity": 0.28, "knn_chance": 0.16},
            "kl_weight=0.001": {"snr_db": 4.7, "si_sdr_db": 3.3, "knn_purity": 0.29, "knn_chance": 0.16}}
    fig = plots.ablation_bars(arms)
    recon, purity = fig.axes[:2]
    heights = sorted(round(p.get_height(), 3) for p in recon.patches if p.get_height() > 0)
    assert heights == [2.7, 3.3, 4.5, 4.7]
    assert sorted(round(p.get_height(), 3) for p in purity.patches if p.get_height() > 0) == [0.28, 0.29]
    assert any(line.get_ydata()[0] == pytest.approx(0.16) for line in purity.get_lines())
    only_recon = plots.ablation_bars({k: {"snr_db": v["snr_db"]} for k, v in arms.items()})
    assert len(only_recon.axes) == 1
    with pytest.raises(ValueError):
        plots.ablation_bars({"a": {"mse": 1.0}})


def test_save_figure_writes_a_png_with_a_stable_name(tmp_path, monkeypatch):
    monkeypatch.setenv("MSS_FIGURES_DIR", str(tmp_path))
    fig = plots.ablation_bars({"a": {"snr_db": 1.0}})
    path = plots.save_figure(fig, "99_test")
    assert path == tmp_path / "99_test.png" and path.read_bytes()[:4] == b"\x89PNG"


# --- HTML front page ------------------------------------------------------------------------


def test_index_page_renders_the_results_as_html_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("MSS_RESULTS_DIR", str(tmp_path))
    (tmp_path / "autoencoder_x.json").write_text(
        '{"median": {"mse": 0.0012, "snr_db": 9.87, "spectral_mse": 2.5, "cosine": 0.91, "si_sdr_db": 9.1}}')
    md = reproduce.results_markdown("x")
    assert "|---|" in md  # the input is Markdown ...
    page = reproduce.index_page(md, ['<li><a href="01_x.html">one</a></li>'])
    assert "<table>" in page and "<th>SNR dB</th>" in page and "<td>9.87 (1.79)</td>" in page
    assert "|---|" not in page and "| --- |" not in page and "**" not in page and "<pre>" not in page
    assert "<strong>Autoencoder reconstruction</strong>" in page and 'href="01_x.html"' in page


def test_data_curve_draws_only_the_training_audio_rows():
    from mss_helpers import plots_mixit

    curve = pd.DataFrame({
        "config": ["tracks8", "tracks30", "all", "clip0.5", "all"],
        "changes": ['{"train_tracks": 8}', '{"train_tracks": 30}', "{}", '{"clip_s": 0.5}', "{}"],
        "steps": [1000, 1000, 1000, 1000, 8000],
        "train_minutes": [1.3, 5.0, 20.0, 20.0, 20.0], "val_mom_snr_db": [8.0, 9.5, 10.2, 7.0, 11.0],
        "feature-grouped_si_sdri_db": [0.1, 0.5, 0.9, 3.0, 4.0],
        "oracle-grouped_si_sdri_db": [1.0, 2.0, 2.8, 9.0, 8.0]})
    fig = plots_mixit.data_curve(curve)
    left, right = fig.axes[0], fig.axes[1]
    ys = sorted(float(y) for line in left.lines for y in line.get_ydata() if len(line.get_xdata()) == 3)
    # neither the clip0.5 row (3.0 / 9.0) nor the longer run of all the audio (4.0 / 8.0) is on the curve
    assert ys == sorted([0.1, 0.5, 0.9, 1.0, 2.0, 2.8])
    assert sorted(float(y) for line in right.lines for y in line.get_ydata()) == [8.0, 9.5, 10.2]
    assert {t.get_text() for t in left.get_legend().get_texts()} >= {"feature-grouped", "oracle-grouped"}


def test_figures_of_the_sources_in_the_latent_space():
    """Notebook 08's figures: every (instruments, active) pair drawn once, every kind of row in the legend."""
    import pandas as pd

    from mss_helpers import plots_mixit

    counts = pd.DataFrame({"n_instruments": [2, 2, 3, 4, 4, 4], "n_active": [2, 2, 5, 3, 3, 6]})
    fig = plots_mixit.active_sources(counts, n_sources=6)
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == 4  # four distinct pairs, one disc each
    assert sorted(t.get_text() for t in ax.texts) == ["1", "1", "2", "2"]  # the track counts
    fig = plots_mixit.active_sources(counts[["n_active"]], n_sources=6)  # no instruments: counts per active k
    assert fig.axes
    kinds = list(plots_mixit.KIND_COLOURS)
    table = pd.DataFrame({"row": [f"r{i}" for i in range(len(kinds))], "kind": kinds,
                          "si_sdri_db": np.linspace(-1, 2, len(kinds))})
    fig = plots_mixit.kind_bars(table)
    assert len(fig.axes[0].patches) == len(kinds)
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == set(kinds)
    history = {"epochs": [{"step": s, "train": {"total": 1.0 / s, "active": 3}, "val": {"total": 1.2 / s, "active": 3},
                           } for s in (1, 2, 3)]}
    dc = {"epochs": [{"step": s, "train": {"affinity": 1.0 / s}, "val": {"affinity": 1.1 / s}} for s in (1, 2, 3)]}
    assert len(plots_mixit.sources_training(history, dc).axes) == 3
    assert len(plots_mixit.sources_training(history, None).axes) == 3
