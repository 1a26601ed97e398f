"""`make bench`: every benchmark script, one after the other; each prints a table and writes results/bench_*.json.

Speed and memory are measured here, never in timed tests.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--only", nargs="*", help="bench_<name>.py files to run (default: all)")
    args = parser.parse_args(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if any(o in s.stem for o in args.only)]
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        t = time.time()
        try:
            _load(script).main(args.preset)
        except Exception as exc:  # report every benchmark, then fail at the end
            print(f"{script.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(script.name)
        print(f"== {script.name}: {time.time() - t:.0f} s", flush=True)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
