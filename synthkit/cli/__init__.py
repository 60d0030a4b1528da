"""The `synthkit` command: one small argparse front end over the library.

    synthkit doctor            is this machine ready? (versions, backends, a real generation)
    synthkit start             open the course in JupyterLab
    synthkit bench             one-at-a-time vs batched tokens/s (--contended: shared cores; --ray: on Ray)
    synthkit cache             show or clear the generation cache
    synthkit assign|run|grade|progress   course machinery (instructors and students)
    synthkit report|feedback|essays|marks|export   the instructor's term after grading
    synthkit magpie|self-instruct|rejection-sample   make a dataset
    synthkit sft               fine-tune a model on a JSONL of records (--resume)
    synthkit cai | dpo         preference pairs from a constitution; DPO on them (--resume)
    synthkit textbooks | pretrain   a synthetic textbook corpus; a tiny LM from scratch on any text
    synthkit audit             provenance, personal data, copying and contamination checks on a JSONL
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import audit, constitutional, course, distill, pretrain, rejection, techniques, term, training

# the command groups, each a module of this package with a register(subparsers)
COMMANDS = (course, term, techniques, training, rejection, distill, constitutional, pretrain, audit)


def course_root(start: Path | None = None) -> Path:
    """The course folder: where course.toml is found (from `start` or cwd upwards, then the
    course remembered in $SYNTHKIT_HOME, then this package's checkout), else cwd."""
    from ..grading.course import find_course_file
    found = find_course_file(start)
    return found.parent.resolve() if found else (start or Path.cwd()).resolve()


# JupyterLab forgets a widget's state when a notebook is closed unless this setting is on:
# a reopened lab then shows "Error displaying widget: model not found" where its quiz and
# progress bars were. An overrides.d file in the lab's settings folder changes the default
# for this Python environment only (a user's own choice in Settings still wins). Installing
# synthkit puts the file there (pyproject's data-files); `start` writes it again if missing.
SETTINGS_SOURCE = Path(__file__).parent.parent / "data" / "lab-settings" / "synthkit.json"


def lab_settings_file() -> Path:
    return Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / "synthkit.json"


def ensure_widget_state_saved() -> bool:
    """Turn on 'Save Widget State Automatically' for this environment's JupyterLab;
    False if its settings folder is not writable (then say how to turn it on by hand)."""
    path = lab_settings_file()
    text = SETTINGS_SOURCE.read_text(encoding="utf-8")
    try:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return True
    except OSError:
        return False


def cmd_doctor(args) -> int:
    from ..doctor import run_doctor
    return run_doctor(generate=not args.no_generate, torch_backend=args.torch)


def cmd_bench(args) -> int:
    if args.ray:
        from ..bench import run_ray_bench
        run_ray_bench(n=args.n or 256, max_tokens=args.max_tokens, address=args.ray, json_out=args.json,
                      rounds=args.rounds)
        return 0
    from ..bench import run_bench
    backends = tuple(b.strip() for b in args.backends.split(","))
    run_bench(n=args.n or 32, max_tokens=args.max_tokens, backends=backends, json_out=args.json,
              contended=args.contended)
    return 0


def cmd_start(args) -> int:
    from ..grading.course import remember_course
    root = Path(args.dir).resolve() if args.dir else course_root()
    remember_course(root)  # so `synthkit progress` finds this course from any folder
    if not ensure_widget_state_saved():
        print(f"note: could not write {lab_settings_file()}; in JupyterLab turn on Settings > "
              f"Save Widget State Automatically, or reopened labs lose their quizzes", flush=True)
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if args.port:
        cmd.append(f"--port={args.port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI often run as root
    cmd += args.jupyter_args
    welcome = root / "labs" / "00_welcome.ipynb"
    print(f"starting JupyterLab on {root}" + (f"; begin with {welcome.relative_to(root)}" if welcome.exists() else ""),
          flush=True)
    os.execv(sys.executable, cmd)


def cmd_cache(args) -> int:
    from ..cache import GenerationCache, cache_enabled
    cache = GenerationCache()
    if args.clear:
        print(f"removed {cache.clear()} cached generations from {cache.path}")
    else:
        state = "on" if cache_enabled() else "off (SYNTHKIT_CACHE=off)"
        print(f"generation cache {cache.path}: {len(cache)} entries; caching is {state}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    p = argparse.ArgumentParser(prog="synthkit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"synthkit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("doctor", help="check this machine: versions, backends, device, a real generation")
    d.add_argument("--no-generate", action="store_true", help="skip the test generation")
    d.add_argument("--torch", action="store_true", help="also generate with the torch backend (~15 s load)")
    d.set_defaults(func=cmd_doctor)

    b = sub.add_parser("bench", help="tokens/s: one prompt at a time vs batched, per backend")
    b.add_argument("--n", type=int, help="number of Magpie prompts (default 32; 256 with --ray)")
    b.add_argument("--max-tokens", type=int, default=64, help="new tokens per prompt (default 64)")
    b.add_argument("--backends", default="llama.cpp,torch", help="comma-separated (default both)")
    b.add_argument("--json", help="also write the results to this JSON file")
    b.add_argument("--contended", action="store_true",
                   help="also generate beside a CPU-bound process and beside a second synthkit "
                        "process (started and stopped here); print each as a ratio to idle")
    b.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="instead: the local batched run against synthkit.scale on Ray (1 actor x all "
                        "threads, then one actor per core), each as a share of local (default: local)")
    b.add_argument("--rounds", type=int, default=3,
                   help="with --ray: run every row this many times and print the median (default 3)")
    b.set_defaults(func=cmd_bench)

    s = sub.add_parser("start", help="open the course in JupyterLab")
    s.add_argument("--no-browser", action="store_true", help="do not open a browser (headless machines)")
    s.add_argument("--port", type=int)
    s.add_argument("--dir", help="course folder (default: found from here)")
    s.add_argument("jupyter_args", nargs="*", help="other options are passed on to jupyter lab")
    s.set_defaults(func=cmd_start)

    c = sub.add_parser("cache", help="show or clear the generation cache")
    c.add_argument("--clear", action="store_true")
    c.set_defaults(func=cmd_cache)

    for commands in COMMANDS:
        commands.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # only `start` takes unknown options: they are JupyterLab's
        if getattr(args, "command", None) != "start":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.jupyter_args = extra + args.jupyter_args
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from ..errors import SynthkitError
    try:
        return int(args.func(args) or 0)
    except SynthkitError as e:
        print(f"synthkit: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
