"""``python -m mss_helpers <command> ...``: one entry point for every stage.

Each command lives in the module named below, which provides
``add_arguments(parser)`` and ``run(args) -> int | None``. Modules are imported
only when their command runs, so ``render`` never pays for torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "render": ("render", "render the embedded data set (music21 scores + General MIDI soundfont)"),
    "train": ("train", "train the SEANet VAE on the 'other' stems"),
    "evaluate": ("evaluate", "cluster latents, separate 'other' and score it against ground truth"),
    "unmix": ("unmix", "Open-Unmix first stage: estimate 'other' from full mixtures"),
    "listen-export": ("examples", "write listening examples (wav + metrics.json) to a folder"),
    "reproduce": ("reproduce", "build data, train, run every notebook, write figures and results"),
    "html": ("reproduce", "export the executed notebooks to self-contained HTML"),
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the command asked for, so a broken optional stage
    # cannot stop the others from running.
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module_name, help_text = COMMANDS[name]
        module = importlib.import_module(f"mss_helpers.{module_name}")
        parser = argparse.ArgumentParser(prog=f"python -m mss_helpers {name}", description=help_text)
        adder = getattr(module, f"add_{name.replace('-', '_')}_arguments", None) or module.add_arguments
        adder(parser)
        args = parser.parse_args(argv[1:])
        runner = getattr(module, f"run_{name.replace('-', '_')}", None) or module.run
        code = runner(args)
        return int(code or 0)
    build_parser().parse_args(argv)  # prints usage / help / the error
    return 2
