"""``python -m mss_helpers <command> ...``: one entry point for every stage.

Each command lives in the module named below, which provides
``add_arguments(parser)`` and ``run(args) -> int | None``. Modules are imported
only when their command runs, so ``render`` never pays for torch.

This is the one place where errors meet people: a :class:`errors.UserError`
(and the predictable foreign errors in :func:`user_message`) becomes one line
``error: ...`` on stderr and exit code 1; ``--debug`` (anywhere on the command
line) or ``MSS_DEBUG=1`` re-raises it with its traceback. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from pathlib import Path

COMMANDS = {
    "render": ("render", "render the embedded data set (music21 scores + General MIDI soundfont)"),
    "train": ("autoencoder", "train the SEANet VAE on the 'other' stems"),
    "train-separator": ("separator", "train the MixIT separator (M outputs) on mixtures of 'other' excerpts"),
    "train-student": ("separator_student", "train a mono student on pan clusters of the stereo 'other'"),
    "train-vaebss": ("vaebss", "train VAE-BSS (K latent sources, one shared decoder) on the 'other' stems only"),
    "train-deepclustering": ("deep_clustering",
                             "train deep clustering on the instruments' masks (the LABELLED reference)"),
    "evaluate": ("evaluate", "cluster latents, separate 'other' and score it against ground truth"),
    "unmix": ("unmix_eval", "Open-Unmix first stage: estimate 'other' from full mixtures"),
    "listen-export": ("listen", "write listening examples (wav + metrics.json) to a folder"),
    "reproduce": ("reproduce", "build data, train, run every notebook, write figures and results"),
    "html": ("reproduce", "export the executed notebooks to self-contained HTML"),
    "verify": ("verify", "compare every number in results/ with the committed report, within declared tolerances"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mss_helpers", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(f"mss_helpers.{module_name}")
        adder = getattr(module, f"add_{name.replace('-', '_')}_arguments", None) or module.add_arguments
        adder(sp)
        sp.set_defaults(_module=module_name, _command=name)
    return parser


# Operating-system errors a user fixes outside the program (disk, permissions),
# by errno: what to tell them. Anything else from the OS is left to be a bug.
_OS_ADVICE = {
    errno.ENOSPC: ("no space left on the device",
                   "free some disk space (or point MSS_DATA_DIR / MSS_RUNS_DIR elsewhere) and run the command "
                   "again; files already written are complete and kept"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or point MSS_DATA_DIR / MSS_RUNS_DIR elsewhere"),
    errno.EACCES: ("permission denied", "check the folder's permissions or choose another output folder"),
    errno.EPERM: ("operation not permitted", "check the folder's permissions or choose another output folder"),
    errno.EROFS: ("read-only file system", "choose an output folder on a writable disk"),
    errno.ENOTDIR: ("a file is where a folder is needed", "choose another output folder or move the file"),
    errno.EEXIST: ("a file is where a folder is needed", "choose another output folder or move the file"),
}


def user_message(exc: BaseException) -> str | None:
    """The one-line message for an error a user can cause, or None for a bug.

    A :class:`errors.UserError` says what is wrong itself; a full disk, a
    read-only disk or a permission problem (``OSError`` with one of the errnos
    above) is named with the file it hit.
    """
    from .errors import UserError

    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in _OS_ADVICE:
        what, advice = _OS_ADVICE[exc.errno]
        where = ""
        if exc.filename:
            # paths.atomic_write writes to a hidden temporary file first: name the folder it was going into
            path = Path(str(exc.filename))
            where = f" while writing into {path.parent}" if path.name.startswith(".") else f" at {path}"
        return f"{what}{where}; {advice}"
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = os.environ.get("MSS_DEBUG", "") not in ("", "0") or "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        print("error: interrupted; finished steps are kept and a rerun resumes from them", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - sorted into user errors and bugs below
        message = user_message(exc)
        if message is None or debug:
            raise
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        return 1


def _dispatch(argv: list[str]) -> int:
    # Build only the parser of the command asked for, so a broken optional stage
    # cannot stop the others from running.
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module_name, help_text = COMMANDS[name]
        module = importlib.import_module(f"mss_helpers.{module_name}")
        parser = argparse.ArgumentParser(prog=f"python -m mss_helpers {name}", description=help_text)
        parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
        adder = getattr(module, f"add_{name.replace('-', '_')}_arguments", None) or module.add_arguments
        adder(parser)
        args = parser.parse_args(argv[1:])
        runner = getattr(module, f"run_{name.replace('-', '_')}", None) or module.run
        code = runner(args)
        return int(code or 0)
    build_parser().parse_args(argv)  # prints usage / help / the error
    return 2
