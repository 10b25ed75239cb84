"""Run the benchmarks: every bench/bench_*.py in turn, each in its own process.

Each script prints one JSON object per metric on stdout ({"metric", "value", "unit", ...}); this
runner passes those lines through to its stdout and sends anything else to stderr, so
`bench/run.py > results.jsonl` keeps only the figures. It exits non-zero if any script fails.

    .venv/bin/python bench/run.py                 # all of them, full size
    .venv/bin/python bench/run.py --quick         # smaller sizes, for a smoke run
    .venv/bin/python bench/run.py --only search   # bench_search.py alone
"""

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def scripts(only: str | None) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if only is None:
        return found
    wanted = only.removesuffix(".py").removeprefix("bench_")
    return [s for s in found if s.stem.removeprefix("bench_") == wanted]


def run_one(script: Path, *, quick: bool, timeout: float) -> bool:
    """Run one benchmark script; True when it exits 0 within the time limit."""
    command = [sys.executable, str(script), *(["--quick"] if quick else [])]
    print(f"== {script.name}", file=sys.stderr, flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdout is not None
    # SIGTERM on overrun: the scripts stop their servers in `finally` blocks.
    timer = threading.Timer(timeout, proc.terminate)
    timer.start()
    try:
        for line in proc.stdout:
            try:
                is_metric = isinstance(json.loads(line), dict)
            except ValueError:
                is_metric = False
            print(line, end="", file=sys.stdout if is_metric else sys.stderr, flush=True)
        returncode = proc.wait()
    finally:
        timed_out = not timer.is_alive() and proc.returncode != 0
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - started
    if timed_out and elapsed >= timeout:
        print(f"!! {script.name} took longer than {timeout:.0f} s", file=sys.stderr)
        return False
    status = "ok" if returncode == 0 else f"FAILED (exit {returncode})"
    print(f"== {script.name} {status} in {elapsed:.1f} s", file=sys.stderr, flush=True)
    return returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="NAME", help="run one script: search, api, import...")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, passed to each script")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="seconds allowed per script (default 3600)"
    )
    args = parser.parse_args()
    selected = scripts(args.only)
    if not selected:
        names = ", ".join(s.stem.removeprefix("bench_") for s in scripts(None))
        print(f"No benchmark named {args.only!r}; there are: {names}", file=sys.stderr)
        return 2
    failed = [s.name for s in selected if not run_one(s, quick=args.quick, timeout=args.timeout)]
    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
