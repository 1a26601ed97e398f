"""A teacher-student round on the MixIT separator, one row per student configuration.

The teacher is the preset's MixIT separator (the one of the table: ``train-separator --preset <preset>``,
trained here first if it is not cached). Each configuration in :data:`CONFIGS` changes a few
:class:`~mss_helpers.config.StudentConfig` fields: how the teacher's outputs on the training tracks are
grouped into pseudo-sources (``grouping``; ``pseudo_k`` groups, or k = auto by silhouette) and the
student's number of outputs. The student (:mod:`mss_helpers.separator_student`) is trained for
``--steps`` steps, then scored on the test split exactly like the rows of ``mixit_curve.py``
(Hungarian SI-SDRi at k = n: feature-grouped, oracle-grouped and the ungrouped outputs), with the count
of instruments each decoding left without an estimate: a student that learnt two pseudo-sources per
track has at most two active outputs, so at k = n it misses instruments.

Rows ``pan_*`` take their pseudo-sources from pan clustering of the stereo "other" instead
(``StudentConfig.teacher = "pan"``, no MixIT run needed), and ``stems5`` is an ABLATION that uses labels:
the true instruments as targets, the ceiling of this network and budget.

The ``teacher`` row scores the teacher itself with the same function, for the comparison (its numbers
are the table's ``mixit`` rows at k = n, as it is the same run).

One row per configuration goes to ``results_dir()/mixit_student_<preset>.csv`` (keyed by configuration
and steps; other rows are kept).

Usage::

    python scripts/mixit_student.py --list
    OMP_NUM_THREADS=1 python scripts/mixit_student.py --steps 1000 auto k4
"""

from __future__ import annotations

import json
from pathlib import Path

import search_csv  # scripts/search_csv.py (this folder is on sys.path when run as a script)
from mixit_curve import DECODINGS, score_test

from mss_helpers import datasets, paths
from mss_helpers.config import config_hash, get_config
from mss_helpers.separator import ensure_separator, load_separator
from mss_helpers.separator_student import load_student, train_student

# name -> StudentConfig fields changed from the preset ("teacher": no student, the teacher itself).
# Keep the names stable: they key the CSV rows.
CONFIGS: dict[str, dict | None] = {
    "teacher": None,
    # k = auto (silhouette over 2..4) on the MFCC statistics of the teacher's outputs, 4 student outputs
    "auto": {},
    # always four pseudo-sources per track (the teacher's 8 outputs in 4 groups)
    "k4": {"pseudo_k": 4},
    # the grouping in the VAE's latent space instead (the autoencoder of the preset; trained if missing)
    "latent_auto": {"grouping": "latent"},
    # pseudo-sources from the stereo image instead of the MixIT teacher: pan clustering of the stereo
    # "other" (k = auto), a student started from scratch that hears only the mono downmix
    "pan_auto": {"teacher": "pan", "init_from_teacher": False},
    # the same with 5 outputs (k = auto over 2..5 pan clusters): room for every instrument of a track
    "pan_auto5": {"teacher": "pan", "init_from_teacher": False, "n_outputs": 5},
    # ABLATION, uses labels: the true instruments as targets (a supervised student, 5 outputs, from
    # scratch): what this network learns in this budget when the targets are right
    "stems5": {"teacher": "stems", "init_from_teacher": False, "n_outputs": 5},
}

FIELDS = (["config", "changes", "n_outputs", "steps", "minutes", "pseudo_sources_per_track", "val_pit_db"]
          + [f"{d}_si_sdri_db" for d in DECODINGS] + [f"{d}_missed" for d in DECODINGS] + ["pairs"])


def student_config(preset: str, name: str, steps: int, steps_per_epoch: int = 100):
    """The preset with ``CONFIGS[name]`` applied to its student, ``steps`` steps long, no time cap."""
    cfg = get_config(preset)
    epochs = max(1, -(-steps // steps_per_epoch))
    return cfg.replace(student={**(CONFIGS[name] or {}), "epochs": epochs, "steps_per_epoch": steps_per_epoch,
                                "max_minutes": None})


def run_one(preset: str, name: str, steps: int) -> dict:
    cfg = student_config(preset, name, steps)
    root = datasets.ensure_dataset(cfg)
    needs_teacher = CONFIGS[name] is None or cfg.student.teacher == "mixit" or cfg.student.init_from_teacher
    teacher_run = ensure_separator(cfg, root=root) if needs_teacher else None
    base = {"config": name, "changes": json.dumps(CONFIGS[name], sort_keys=True)}
    if CONFIGS[name] is None:
        scores = score_test(cfg, load_separator(cfg, run_dir=teacher_run), root)
        return {**base, "n_outputs": cfg.separator.n_outputs, "steps": "", "minutes": "", **scores}
    vae = None
    if cfg.student.grouping == "latent":
        from mss_helpers.autoencoder import ensure_autoencoder
        from mss_helpers.model import load_model

        vae = load_model(ensure_autoencoder(cfg, root=root))[0]
    key = config_hash(cfg, "data", "separator", "student")
    run_dir = paths.runs_dir() / "mixit_student" / f"{name}_{key}"
    train_student(cfg, root=root, teacher_run=teacher_run, run_dir=run_dir, vae=vae)
    run = json.loads((run_dir / "config.json").read_text())
    history, timing = search_csv.training_run(run_dir)
    return {**base, "n_outputs": cfg.student.n_outputs, **timing,
            "pseudo_sources_per_track": json.dumps(run["config"]["pseudo_sources_per_track"]),
            "val_pit_db": round(history["epochs"][-1]["val"]["pit"], 3),
            **score_test(cfg, load_student(cfg, run_dir=run_dir), root)}


def write_row(path: Path, row: dict) -> None:
    search_csv.write_row(path, row, FIELDS, paths.runs_dir() / "mixit_student")


def main(argv=None) -> None:
    args = search_csv.parser(__doc__.splitlines()[0], CONFIGS, 1000).parse_args(argv)
    search_csv.run_configs(
        args, CONFIGS, paths.results_dir() / f"mixit_student_{args.preset}.csv",
        lambda name: run_one(args.preset, name, args.steps), write_row,
        lambda row: (f"feature-grouped {row['feature-grouped_si_sdri_db']:+.2f} dB "
                     f"({row['feature-grouped_missed']} of {row['pairs']} missed), oracle-grouped "
                     f"{row['oracle-grouped_si_sdri_db']:+.2f} dB"))


if __name__ == "__main__":
    main()
