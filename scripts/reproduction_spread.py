"""How far a retrained model moves the report's trained rows: the measurement behind ``verify.BAND_DB``.

The cpu preset's autoencoder and MixIT separator are trained again with another seed
(``TrainConfig.seed`` and ``SeparatorConfig.seed`` = 1; the data, the steps and every other setting
unchanged), the trained rows of the report (latent-frame clustering, ``latent_nmf``, MixIT's groupings, the
autoencoder's reconstruction) are scored with them on the test split exactly as ``make reproduce`` scores
them, and each median is set against the committed one in ``results/``. A seed changes a model far more
than another processor or thread count does, so the spread it gives is an upper end of what a reader's
reproduction should see. One row per (method, decoding, k) goes to
``results/reproduction_spread_<preset>.csv``, with the largest |delta| printed at the end.

Usage (after ``make reproduce``; about 20 minutes on 2 cores)::

    .venv/bin/python scripts/reproduction_spread.py [--preset cpu] [--seed 1]
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from mss_helpers import autoencoder, evaluate, paths, separator
from mss_helpers.config import get_config

LATENT = ("kmeans", "agglomerative", "gmm", "spectral", "latent_nmf")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    cfg = get_config(args.preset)
    other = cfg.replace(train={"seed": args.seed}, separator={"seed": args.seed})
    out = paths.results_dir()
    ae_run = autoencoder.ensure_autoencoder(other)  # its own run folder: the seed is in the config hash
    separator.ensure_separator(other)
    recon = autoencoder.evaluate_reconstruction(other, ae_run, write=False)
    ks = [2, "n"]
    frames = evaluate.run_evaluation(other, run_dir=ae_run, methods=list(LATENT), ks=ks, write_results=False,
                                     out_dir=paths.runs_dir() / f"spread_{cfg.name}_frames", progress=False)
    mixit = evaluate.run_evaluation(other, run_dir=ae_run, methods=["mixit"], ks=ks, write_results=False,
                                    out_dir=paths.runs_dir() / f"spread_{cfg.name}_mixit", progress=False)
    committed = pd.concat([evaluate.summarize(pd.read_csv(out / f"separation_{cfg.name}.csv")),
                           evaluate.summarize(pd.read_csv(out / f"separation_mixit_{cfg.name}.csv"))])
    committed["k_label"] = committed["k_label"].astype(str)
    keys = ["method", "decoding", "k_label"]
    again = pd.concat([evaluate.summarize(frames), evaluate.summarize(mixit)])
    again["k_label"] = again["k_label"].astype(str)
    rows = again.merge(committed, on=keys, suffixes=("_seed", "_committed"))
    rows = rows[keys + ["si_sdri_db_committed", "si_sdri_db_seed"]].assign(
        delta_db=lambda d: d.si_sdri_db_seed - d.si_sdri_db_committed)
    ae = json.loads((out / f"autoencoder_{cfg.name}.json").read_text())["median"]["snr_db"]
    rows = pd.concat([rows, pd.DataFrame([{"method": "autoencoder", "decoding": "snr_db", "k_label": "-",
                                           "si_sdri_db_committed": ae, "si_sdri_db_seed": recon["median"]["snr_db"],
                                           "delta_db": recon["median"]["snr_db"] - ae}])], ignore_index=True)
    rows.insert(0, "seed", args.seed)
    path = out / f"reproduction_spread_{cfg.name}.csv"
    rows.round(4).to_csv(path, index=False)
    print(rows.round(2).to_string(index=False))
    print(f"largest |delta| {rows.delta_db.abs().max():.2f} dB over {len(rows)} trained medians; written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
