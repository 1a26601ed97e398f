"""Training: one generic loop (:func:`fit`) with checkpoints, resume, LR schedules and NaN stops.

:func:`fit` serves every model of the project (the SEANet VAE in
:mod:`mss_helpers.autoencoder`, the small Open-Unmix model in
:mod:`mss_helpers.unmix_train`, the MixIT separator in :mod:`mss_helpers.separator`).
A run directory holds::

    config.json    the run's configuration + git commit + device
    history.json   per epoch: train and validation totals and each loss term
    last.pt        model, optimiser, epoch, step, best_val, RNG states (every epoch)
    best.pt        the same, at the epoch with the lowest validation loss
    done.json      written when training finished: all its steps, or capped by the safety net

Checkpoints and JSON files are written atomically (temp file + ``os.replace``),
so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import math
import random
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, NonFiniteLossError
from .paths import atomic_write
from .config import git_commit, seed_everything

CHECKPOINT_FILES = ("best.pt", "last.pt", "history.json", "done.json")


# --- atomic files ------------------------------------------------------------------------



def add_run_arguments(parser, run: str, root_help: str = "data set root (default: the preset's embedded set)") -> None:
    """The arguments every train command shares: ``--preset --root --run-dir --resume --force``.

    ``run`` names the default run folder in the help (``runs/<run>_<preset>_<hash>``).
    """
    parser.add_argument("--preset", default=None, help="tiny, cpu or paper (default: $MSS_PRESET or cpu)")
    parser.add_argument("--root", default=None, help=root_help)
    parser.add_argument("--run-dir", default=None, help=f"run folder (default: runs/{run}_<preset>_<hash>)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last.pt")
    parser.add_argument("--force", action="store_true", help="train again even if a finished run exists")

@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch intra-op threads (None or 0: as they are), then give the
    process-wide setting back. Small recurrent networks step frame after frame: one thread each keeps
    two processes steady on two cores."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

def save_checkpoint(path, state: dict) -> Path:
    """``torch.save(state)`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def write_json(path, data) -> Path:
    """Write JSON atomically (indented, keys in insertion order)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def _rng_states() -> dict:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _mean_terms(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


# --- the generic loop ----------------------------------------------------------------------


def _non_finite(what: str, epoch: int, step: int, last_path: Path) -> NonFiniteLossError:
    """The error for a NaN/infinite value in 0-based ``epoch``: what is kept and what to do."""
    # Checkpoints are written at the end of each epoch, so last.pt holds the epochs before this one.
    kept = (f"the last good checkpoint {last_path} (epoch {epoch}) is kept" if epoch > 0 and last_path.is_file()
            else "no checkpoint had been written yet")
    return NonFiniteLossError(f"{what} at epoch {epoch + 1}, step {step}; nothing from this step was saved and "
                              f"{kept}. Lower the learning rate (TrainConfig.lr) or check the data for NaN, then "
                              "train again (--resume continues from the checkpoint)")


def fit(model, loss_fn, train_loader, val_loader, run_dir, *, epochs: int, steps_per_epoch: int | None,
        lr: float, weight_decay: float, grad_clip: float | None, seed: int, config: dict,
        resume: bool = False, max_minutes: float | None = None, device=None,
        progress: bool = True, lr_schedule=None) -> dict:
    """Train ``model`` with AdamW, validating and checkpointing after every epoch.

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable ``(model, batch, step) -> (loss tensor, dict of floats)``
        ``step`` is the number of optimiser steps taken so far. Validation calls
        it under ``torch.no_grad()`` with the model in eval mode; the dict's
        terms are averaged and recorded in the history (``"total"`` is added).
    train_loader, val_loader : iterables of batches (tensors, or tuples/dicts of tensors)
        ``train_loader`` is restarted whenever it runs out, so an epoch is
        exactly ``steps_per_epoch`` steps (``None``: one pass over the loader).
    run_dir : folder for config.json, history.json, last.pt, best.pt, done.json
    epochs, lr, weight_decay, grad_clip (None or 0: no clipping), seed
    config : JSON-ready dict saved in config.json (with the git commit and device)
    resume : continue from ``run_dir/last.pt`` (model, optimiser, step, RNG states, history);
        without a last.pt it starts from scratch. A run stopped inside an epoch by
        ``max_minutes`` continues inside that epoch (its batches are replayed up to
        where it stopped, untrained), so a resumed capped run ends with all its steps.
    max_minutes : a wall-clock safety net, not the budget: stop after this much wall
        time (checked after each step), validate and checkpoint the partial epoch and
        record the run as capped (``history["capped"]`` and ``done.json``: the minutes,
        the step reached and the steps planned). :func:`capped` reads it back.
    device : default ``"cuda"`` when available, else ``"cpu"``
    progress : show a tqdm bar per epoch
    lr_schedule : None (constant ``lr``) or a callable ``step -> factor``; the
        learning rate of optimiser step ``step`` is ``lr * factor``. It depends
        on the step count only, so a resumed run follows the same schedule.

    Returns
    -------
    history : dict ``{"epochs": [per-epoch dicts], "best_val", "best_epoch", "stopped_early", "capped"}``;
        each epoch dict holds ``epoch, step, steps, seconds, train, val`` where
        ``train``/``val`` map ``total`` and each loss term to its epoch mean.

    Raises
    ------
    errors.NonFiniteLossError (a FloatingPointError)
        When a loss (or gradient norm) is NaN or infinite; it names the epoch
        and step, and nothing from that step is saved.
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seed_everything(seed)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    history = {"epochs": [], "best_val": math.inf, "best_epoch": None, "stopped_early": False, "capped": None}
    start_epoch, step, skip = 0, 0, 0
    last_path = run_dir / "last.pt"
    if resume and last_path.is_file():
        # map to the CPU: RNG states must stay CPU tensors; load_state_dict copies onto the device
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step, history = state["epoch"], state["step"], state["history"]
        skip = int(state.get("partial_steps", 0))  # steps already taken inside epoch `start_epoch`
        if skip:
            history["epochs"] = [r for r in history["epochs"] if r["epoch"] <= start_epoch]
            _best_of(history)
        if history.get("capped"):  # a capped run resumes with a fresh time budget; the cap stays on record
            history.setdefault("resumed_after_caps", []).append(history["capped"])
        history["stopped_early"], history["capped"] = False, None
        _set_rng_states(state["rng"])
    write_json(run_dir / "config.json", {"config": config, "git_commit": git_commit(),
                                          "device": str(device), "torch": torch.__version__})

    n_steps = steps_per_epoch if steps_per_epoch is not None else len(train_loader)
    if n_steps <= 0 or epochs <= 0:
        raise ValueError(f"need epochs > 0 and steps_per_epoch > 0, got {epochs} and {n_steps}")
    deadline = time.monotonic() + 60 * max_minutes if max_minutes else None

    for epoch in range(start_epoch, epochs):
        t0, c0 = time.monotonic(), time.process_time()
        model.train()
        # New random clips every epoch (ClipDataset.set_epoch), and a fresh iterator per
        # epoch, so a resumed run sees exactly the batches an uninterrupted one would.
        set_epoch = getattr(getattr(train_loader, "dataset", None), "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        batches = iter(train_loader)
        for _ in range(skip if epoch == start_epoch else 0):  # replay the batches a capped epoch trained on
            try:
                next(batches)
            except StopIteration:
                batches = iter(train_loader)
                next(batches)
        done_before = skip if epoch == start_epoch else 0
        rows = []
        bar = tqdm(range(done_before, n_steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                   leave=False)
        for _ in bar:
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(train_loader)
                batch = next(batches)
            if lr_schedule is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr * float(lr_schedule(step))
            loss, terms = loss_fn(model, _to_device(batch, device), step)
            if not torch.isfinite(loss):
                terms_text = ", ".join(f"{k} {float(v):.4g}" for k, v in terms.items())
                raise _non_finite(f"the training loss is {float(loss.detach())} ({terms_text})", epoch, step,
                                  last_path)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                if not torch.isfinite(norm):
                    raise _non_finite(f"the gradient norm is {float(norm)}", epoch, step, last_path)
            optimizer.step()
            step += 1
            rows.append({"total": float(loss.detach()), **terms})
            bar.set_postfix(loss=f"{rows[-1]['total']:.4f}")
            if deadline is not None and time.monotonic() > deadline and done_before + len(rows) < n_steps:
                history["stopped_early"] = True
                history["capped"] = {"max_minutes": max_minutes, "step": step, "planned_steps": epochs * n_steps}
                break
        bar.close()

        val = evaluate_loss(model, loss_fn, val_loader, step, device)
        if not math.isfinite(val["total"]):
            raise _non_finite(f"the validation loss is {val['total']}", epoch, step, last_path)
        record = {"epoch": epoch + 1, "step": step, "steps": done_before + len(rows),
                  "seconds": round(time.monotonic() - t0, 2),
                  "cpu_seconds": round(time.process_time() - c0, 2), "lr": optimizer.param_groups[0]["lr"],
                  "train": _mean_terms(rows), "val": val}
        history["epochs"].append(record)
        partial = done_before + len(rows) < n_steps  # the safety net stopped this epoch
        if val["total"] < history["best_val"] and not partial:
            history["best_val"], history["best_epoch"] = val["total"], epoch + 1
        # A partial epoch is checkpointed as "epoch not finished": resume replays its batches and goes on.
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "epoch": epoch if partial else epoch + 1, "partial_steps": done_before + len(rows) if partial else 0,
                 "step": step, "best_val": history["best_val"], "history": history, "rng": _rng_states()}
        if history["best_epoch"] == epoch + 1 and not partial:
            save_checkpoint(run_dir / "best.pt", state)
        save_checkpoint(last_path, state)
        write_json(run_dir / "history.json", history)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: train {record['train']['total']:.4f} "
                  f"val {val['total']:.4f} ({record['seconds']:.0f} s)", flush=True)
        if history["stopped_early"]:
            break

    write_json(run_dir / "done.json", {"epochs": len(history["epochs"]), "step": step,
                                        "best_epoch": history["best_epoch"], "best_val": history["best_val"],
                                        "stopped_early": history["stopped_early"], "capped": history["capped"]})
    return history


def _best_of(history: dict) -> None:
    """Set ``best_val``/``best_epoch`` from the finished epochs in ``history`` (after a partial one is dropped)."""
    finished = [r for r in history["epochs"] if math.isfinite(r["val"]["total"])]
    best = min(finished, key=lambda r: r["val"]["total"], default=None)
    history["best_val"] = best["val"]["total"] if best else math.inf
    history["best_epoch"] = best["epoch"] if best else None


@torch.no_grad()
def evaluate_loss(model, loss_fn, loader, step: int, device) -> dict:
    """Mean of ``loss_fn`` (total and each term) over ``loader``, in eval mode, without gradients."""
    model.eval()
    rows = []
    for batch in loader:
        loss, terms = loss_fn(model, _to_device(batch, device), step)
        rows.append({"total": float(loss), **terms})
    model.train()
    if not rows:
        raise ValueError("the validation loader is empty")
    return _mean_terms(rows)


# --- learning-rate schedules --------------------------------------------------------------

LR_SCHEDULES = ("constant", "cosine", "onecycle")


def lr_factor(step: int, total_steps: int, schedule: str = "constant", warmup_steps: int = 0,
              final: float = 0.01) -> float:
    """Multiplier of the peak learning rate at optimiser ``step`` (0-based) of ``total_steps``.

    - ``constant``: 1 (after an optional linear warm-up over ``warmup_steps``);
    - ``cosine``: linear warm-up, then a half cosine from 1 down to ``final``
      at the last step (SGDR without restarts);
    - ``onecycle``: the one-cycle policy's shape (Smith & Topin 2019, as
      ``torch.optim.lr_scheduler.OneCycleLR`` with cosine annealing): up from
      1/25 over the first 25 % of the steps (or ``warmup_steps`` when given),
      then a cosine down to ``final / 25``.

    A pure function of the step, so a resumed run continues on the same curve.
    """
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    total = max(1, int(total_steps))
    start, floor = 0.0, final
    if schedule == "onecycle":
        warmup_steps = warmup_steps or int(round(0.25 * total))
        start, floor = 1.0 / 25, final / 25
    if step < warmup_steps:
        return start + (1.0 - start) * (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total - 1 - warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def finished_run(run_dir, force: bool = False, resume: bool = False) -> bool:
    """True when ``run_dir`` holds a finished run to reuse; with ``force``, delete its checkpoints first.

    With ``resume``, a run the safety net capped is not finished: its ``done.json`` is removed
    so that training continues from ``last.pt`` to the end of its steps.
    """
    run_dir = Path(run_dir)
    if force:
        for name in CHECKPOINT_FILES:
            (run_dir / name).unlink(missing_ok=True)
    if resume and capped(run_dir):
        (run_dir / "done.json").unlink()
    return (run_dir / "done.json").is_file()


def interrupted(run_dir) -> bool:
    """True when ``run_dir`` holds a checkpoint but no ``done.json``: a run stopped midway, to resume."""
    run_dir = Path(run_dir)
    return (run_dir / "last.pt").is_file() and not (run_dir / "done.json").is_file()


def capped(run_dir) -> dict | None:
    """The cap record of a finished run the safety net stopped (``{"max_minutes", "step",
    "planned_steps"}``), or None for a run that took all its steps (or is not finished)."""
    done = Path(run_dir) / "done.json"
    if not done.is_file():
        return None
    record = json.loads(done.read_text())
    if record.get("capped"):
        return record["capped"]
    # runs from before the cap was recorded say only stopped_early
    return {"max_minutes": None, "step": record.get("step"), "planned_steps": None} if record.get(
        "stopped_early") else None


def cap_note(run_dir, resume_command: str) -> str | None:
    """One sentence for a report when the safety net capped ``run_dir`` (None when it took all its steps).

    ``resume_command`` is the command that continues it, e.g.
    ``python -m mss_helpers train --preset cpu --resume``.
    """
    cap = capped(run_dir)
    if cap is None:
        return None
    limit = f"its {cap['max_minutes']:g}-minute safety net" if cap.get("max_minutes") else "a time limit"
    of = f" of {cap['planned_steps']}" if cap.get("planned_steps") else ""
    return (f"CAPPED RUN: {Path(run_dir).name} was stopped by {limit} at step {cap['step']}{of}, so it is not "
            f"the preset's model and its numbers are not the report's. Continue it with `{resume_command}` "
            "(the checkpoint is kept), then run this notebook again.")


__all__ = ["fit", "torch_threads", "add_run_arguments", "finished_run", "interrupted", "capped", "cap_note", "evaluate_loss", "save_checkpoint", "write_json", "lr_factor", "LR_SCHEDULES",
           "CHECKPOINT_FILES"]
