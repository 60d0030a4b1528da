"""Options that several commands share, each declared once.

A command asks for the ones it takes (`generation(p)` for anything that samples from a
model, `training(p)` for anything that trains one); the names, defaults and help texts are
then the same everywhere, so `--no-cache` means one thing in `magpie` and in `cai`.
"""
from __future__ import annotations

import contextlib

BACKENDS = ("llama.cpp", "torch")
MODEL_HELP = "a GGUF file or HF checkpoint directory (default: the embedded teacher)"


def out(p, help: str, required: bool = True) -> None:
    p.add_argument("--out", required=required, help=help)


def seed(p, default: int = 0) -> None:
    p.add_argument("--seed", type=int, default=default, help=f"run seed (default {default})")


def generation(p, *, temperature: float | None = None, max_tokens: int | None = None,
               max_tokens_help: str | None = None, backend_help: str | None = None) -> None:
    """--model, --backend, --seed and --no-cache; --temperature and --max-tokens when the
    command gives their defaults."""
    if temperature is not None:
        p.add_argument("--temperature", type=float, default=temperature,
                       help=f"sampling temperature (default {temperature})")
    if max_tokens is not None:
        p.add_argument("--max-tokens", type=int, default=max_tokens,
                       help=max_tokens_help or f"most new tokens per reply (default {max_tokens})")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--backend", default="llama.cpp", choices=BACKENDS,
                   help=backend_help or "which backend generates (default llama.cpp)")
    seed(p)
    p.add_argument("--no-cache", action="store_true", help="do not read or write the generation cache")


def training(p, *, model: bool = True) -> None:
    """--model (the starting weights), --device and --seed for a command that trains."""
    if model:
        p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: CUDA when present")
    seed(p)


def scale(p) -> None:
    """--ray, --actors and --shard-size: generate on a Ray cluster (`synthkit.scale`).
    Without --ray nothing changes, and Ray is not even imported."""
    g = p.add_argument_group("on a Ray cluster (pip install \"synthkit[ray]\")")
    g.add_argument("--ray", metavar="ADDRESS",
                   help="generate on Ray: local (start a cluster on this machine's cores), auto (the "
                        "cluster `ray start` made here), HOST:PORT or ray://HOST:PORT. Finished shards "
                        "go to OUT.shards/ and a rerun skips them")
    g.add_argument("--actors", type=int, metavar="N",
                   help="model actors (default: one one-thread actor per core, as many as each "
                        "node's memory holds at 1.5 GB apiece; given N, they share the cores; one "
                        "per GPU for --backend torch on GPU nodes)")
    g.add_argument("--shard-size", type=int, metavar="N",
                   help="sequences per shard, the unit of resuming (default 64)")


@contextlib.contextmanager
def open_model(args, **kwargs):
    """The model a command generates with: `load_model` here, or, with --ray, a
    `synthkit.scale.RayModel` on that cluster, with its shards beside --out. A cluster this
    command started is stopped when the command ends, however it ends."""
    from ..errors import SynthkitError
    ray_address = getattr(args, "ray", None)
    if not ray_address:
        for flag in ("actors", "shard_size"):
            if getattr(args, flag, None) is not None:
                raise SynthkitError(f"--{flag.replace('_', '-')} applies to a Ray run; add --ray local "
                                    f"(or auto, or a cluster's address)")
        from ..models import load_model
        yield load_model(args.model, backend=args.backend, **kwargs)
        return
    from .. import scale as on_ray
    for flag in ("actors", "shard_size"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise SynthkitError(f"--{flag.replace('_', '-')} must be at least 1; got {value}")
    started = on_ray.connect(ray_address)
    try:
        model = on_ray.RayModel(args.model, backend=args.backend, actors=args.actors,
                                shards=f"{args.out}.shards",
                                shard_size=args.shard_size or on_ray.SHARD_SIZE, **kwargs)
        print(f"ray: {model.actors} {model.backend} actor(s) x "
              f"{'1 GPU' if model.gpu else f'{model.threads} CPU(s)'}; shards of "
              f"{model.shard_size} sequences in {args.out}.shards/", flush=True)
        yield model
        print(f"ray: {model.shards_made} shards made, {model.shards_reused} reused from "
              f"{args.out}.shards/", flush=True)
    finally:
        on_ray.shutdown(started)
