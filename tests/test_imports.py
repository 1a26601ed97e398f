"""The package's house plan, checked: imports flow one way and every module fits in a head.

The graph is read from the source with ``ast`` (nothing is imported), counting
imports at module level AND inside functions: a lazy import is an edge too.
``LAYERS`` below is the floor plan: a module may import only from modules on a
lower floor. A new module must be given a floor here; choose the lowest floor
that sits above everything it imports and below everything that imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "mss_helpers"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / PACKAGE
MAX_LINES = 450

# module -> floor. Imports go from a higher floor to a strictly lower one, never
# sideways or up (architecture.md, "Data flow").
LAYERS = {
    # 0: facts that import nothing of the package
    "__init__": 0, "errors": 0, "paths": 0, "compat": 0,
    "separator_config": 0,  # the learned separators' config sections (dataclasses only)
    # 1: configuration, audio I/O, and numpy helpers that several stages share
    "config": 1, "audio": 1,
    "frames": 1,  # energy per frame and per-frame instrument labels (datasets, latents, separate)
    "synth": 1,  # soundfont synthesis of note lists
    "room": 1,  # a simulated room and two microphones per track, loudness levelling, per-stem effects
    "textures": 1,  # accompaniment textures from a harmony (chords, strums, pads, arpeggios), tempo drift
    "verify": 1,  # a reproduction's numbers against the committed report's, within declared tolerances
    # 2-3: the embedded data set
    "scores": 2,  # music21 scores and arrangements
    "render": 3,
    "datacard": 2,  # how hard a set's "other" is: polyphony, inter-channel level spread, RT60, registers
    # 4: reading any data set, and where the Open-Unmix estimates are cached
    "datasets": 4,
    "standin": 4,  # songs written as MUSDB18 ships them (.stem.mp4), for tests and benchmarks
    # 5: models, their losses, and the signal metrics training reports
    "model": 5, "losses": 5,
    "clips": 5,  # the autoencoder's training clips (a user's songs mapped from their decode cache)
    "metrics": 5,  # reconstruction: MSE, SNR, spectral MSE, cosine, SI-SDR (numpy only)
    "unmix": 5,  # the Open-Unmix wrapper (pretrained weights, chunked separation)
    "mixit_data": 5,  # MixIT's mixtures of mixtures (other.wav only) and its objective's oracle ceiling
    "spatial": 5,  # pan clustering of a stereo signal (DUET-style)
    # 6: the generic training loop
    "train": 6,
    "autoencoder": 7,  # the SEANet VAE's runs, reconstruction report, KL ablation, `train` command
    # 7: what is trained on top of it, and latent frames of a trained model
    "latents": 7, "unmix_train": 7, "separator": 7,
    "deep_clustering": 7,  # deep clustering, the LABELLED reference (+ `train-deepclustering`)
    "vaebss": 7,  # VAE-BSS: a VAE whose latent space is made of sources (+ `train-vaebss`)
    # 8: the first stage's scores and estimates; clustering
    "unmix_eval": 8, "cluster": 8,
    "provenance": 8,  # what a reproduction records: the machine, the runs a safety net capped
    # 9-10: clusters (or references) -> audio
    "separate": 9,
    "nmf": 10, "separator_group": 10,
    # 11: scoring separations, the listening examples the evaluation writes, the MixIT student
    "separation_metrics": 11, "cluster_metrics": 11, "examples": 11,
    "separator_student": 11,  # a MixIT teacher's grouped outputs, or pan clusters, as a student's targets
    # 12: the method table: every method's family, model and how it separates one input
    "methods": 12,
    # 13-14: the evaluation
    "evaluate_track": 13,
    "evaluate": 14,
    # 15-16: the whole report: its README block and HTML build, then the one command that runs it
    "report_pages": 15,
    "reproduce": 16,
    # 17-19: leaves for the notebooks (only other leaves import them)
    "plots_umap": 17, "mushra": 17,
    "plots": 18, "listen": 18,
    "plots_mixit": 19,
    # 20-21: the command line, which reaches every command through importlib
    "cli": 20, "__main__": 21,
}
LEAVES = {"plots", "plots_umap", "plots_mixit", "listen", "mushra"}


# --- reading the graph ----------------------------------------------------------------------


def imported_modules(source: str, package: str = PACKAGE) -> set[str]:
    """Top-level modules of ``package`` that ``source`` (a module directly inside it) imports.

    Counts ``from . import x``, ``from .x import y``, ``from .x.y import z``,
    ``import package.x``, ``from package import x`` and ``from package.x import y``,
    wherever they appear (module level, functions, classes, branches).
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # relative to the package itself
                found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif node.level == 0 and node.module and node.module.split(".")[0] == package:
                parts = node.module.split(".")
                found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == package and len(parts) > 1:
                    found.add(parts[1])
    return found


def package_graph(folder: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for every ``*.py`` directly in ``folder``."""
    modules = {p.stem: p for p in sorted(folder.glob("*.py"))}
    return {name: (imported_modules(path.read_text()) & set(modules)) - {name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None when the graph is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def upward_edges(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """Every import of a module on the same floor or a higher one, as readable lines."""
    return [f"{a} (floor {layers[a]}) imports {b} (floor {layers[b]})"
            for a in sorted(graph) for b in sorted(graph[a])
            if a in layers and b in layers and layers[b] >= layers[a]]


# --- the checks that can fail: toy inputs with known answers --------------------------------


def test_imported_modules_sees_every_form_and_lazy_imports():
    source = (
        "from . import audio as audio_io, paths\n"
        "from .config import Config\n"
        "import numpy as np\n"
        "import mss_helpers.render\n"
        "from mss_helpers import cluster\n"
        "from mss_helpers.model import SEANetVAE\n"
        "from sklearn.metrics import silhouette_score\n"
        "def f():\n"
        "    from .latents import frame_labels\n"
        "    if True:\n"
        "        from . import unmix\n"
        "class C:\n"
        "    def m(self):\n"
        "        import mss_helpers.metrics as m\n"
    )
    assert imported_modules(source) == {"audio", "paths", "config", "render", "cluster", "model",
                                        "latents", "unmix", "metrics"}


def test_find_cycle_on_toy_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y"}}) == ["y", "y"]
    cycle = find_cycle({"evaluate": {"examples"}, "examples": {"evaluate"}, "paths": set()})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"evaluate", "examples"}


def test_upward_edges_on_a_toy_plan():
    layers = {"paths": 0, "datasets": 1, "latents": 2}
    assert upward_edges({"datasets": {"paths"}, "latents": {"datasets"}}, layers) == []
    assert upward_edges({"datasets": {"latents"}, "latents": set()}, layers) == [
        "datasets (floor 1) imports latents (floor 2)"]
    assert upward_edges({"latents": {"latents2"}, "latents2": set()}, {**layers, "latents2": 2}) == [
        "latents (floor 2) imports latents2 (floor 2)"]


# --- the package ------------------------------------------------------------------------------


def test_every_module_has_a_floor():
    modules = {p.stem for p in PACKAGE_DIR.glob("*.py")}
    assert not (modules - set(LAYERS)), (
        f"give these modules a floor in tests/test_imports.py LAYERS: {sorted(modules - set(LAYERS))}")
    stale = sorted(set(LAYERS) - modules)
    assert not stale, f"LAYERS names modules that do not exist: {stale}"
    assert not [p for p in PACKAGE_DIR.iterdir() if p.is_dir() and (p / "__init__.py").is_file()], (
        "a sub-package appeared: extend package_graph to walk it")


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_only_go_down():
    bad = upward_edges(package_graph(), LAYERS)
    assert not bad, "imports against the floor plan (move the fact down or let the caller pass it in):\n" + \
        "\n".join(bad)


def test_plots_and_listen_are_leaves():
    graph = package_graph()
    users = {f"{m} imports {leaf}" for m, deps in graph.items() if m not in LEAVES for leaf in deps & LEAVES}
    assert not users, f"only notebooks (and other leaves) may import the leaves: {sorted(users)}"
    assert all(LAYERS[leaf] > LAYERS["reproduce"] for leaf in LEAVES)


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_module_fits_in_a_head(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.name} has {n} lines (at most {MAX_LINES}): split it along a seam"
