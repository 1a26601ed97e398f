"""The results CSV of a screening script (``ae_search.py``, ``mixit_curve.py``): one row per configuration.

Rows are keyed by ``(config, steps)``; writing a row replaces the row with the same key and keeps the
others, under a lock file in ``lock_dir`` (not next to the CSV: ``results/`` is committed), so several
processes can screen different configurations side by side.
"""

from __future__ import annotations

import csv
import fcntl
import json
import time
from pathlib import Path

from mss_helpers.paths import atomic_write


def write_row(path: Path, row: dict, fields: list, lock_dir: Path, fix_row=None) -> None:
    """Insert or replace ``row`` in the CSV at ``path``; ``fix_row(r)`` may mend older rows in place."""
    path, lock_dir = Path(path), Path(lock_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{path.stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = []
        if path.is_file():
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh)
                        if (r["config"], str(r["steps"])) != (row["config"], str(row["steps"]))]
            for r in rows:
                if fix_row is not None:
                    fix_row(r)
        rows.append(row)

        def write(tmp):
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
                w.writeheader()
                w.writerows(rows)

        atomic_write(path, write)


def parser(description: str, configs: dict, default_steps: int):
    """The command line both screening scripts share: configuration names, --preset, --steps,
    --threads, --list (a script adds its own options to it)."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("names", nargs="*", help=f"configurations to run (default: all of {list(configs)})")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=default_steps, help="optimiser steps per configuration")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 side by side)")
    p.add_argument("--list", action="store_true", help="print the configurations and exit")
    return p


def check_names(args, configs: dict) -> list | None:
    """The configurations to run (all when none named); None after printing them for ``--list``."""
    if args.list:
        for name, changes in configs.items():
            print(f"{name}: {changes}")
        return None
    unknown = [n for n in args.names if n not in configs]
    if unknown:
        raise SystemExit(f"error: unknown configuration(s) {unknown}; see --list")
    return args.names or list(configs)


def training_run(run_dir: Path) -> tuple[dict, dict]:
    """A finished run's ``history.json`` and its row fields ``steps`` (optimiser steps) and ``minutes``
    (wall time of training), the same in every screening CSV."""
    history = json.loads((Path(run_dir) / "history.json").read_text())
    epochs = history["epochs"]
    return history, {"steps": sum(e["steps"] for e in epochs),
                     "minutes": round(sum(e["seconds"] for e in epochs) / 60, 2)}


def run_configs(args, configs: dict, out: Path, run_one, write, summary) -> None:
    """The main loop both screening scripts share: for each configuration named on the command line
    (all when none; nothing after ``--list``), ``row = run_one(name)``, ``write(out, row)``, and print
    ``"<name>: <summary(row)> (<minutes> min)"``."""
    import torch

    names = check_names(args, configs)
    if names is None:
        return
    torch.set_num_threads(args.threads)
    for name in names:
        t0 = time.monotonic()
        row = run_one(name)
        write(out, row)
        print(f"{name}: {summary(row)} ({(time.monotonic() - t0) / 60:.1f} min)", flush=True)
