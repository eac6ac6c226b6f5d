"""Run the official HaDES code (FLAIROx/behaviour-distillation) for one (env, variant, seed).

Runs in the pinned venv of ``requirements-hades-official.txt`` (old evosax/gymnax/brax API),
never in jaxbc's environment, and imports nothing from jaxbc. It drives the official
script's own ``parse_arguments -> make_configs -> main`` (their generation loop, training,
evaluation, fitness and ES update), with:

* the settings of the stored paper run for that env family and variant
  (``results/ICLR/.../seed0/data_final.pkl`` ``config`` / ``es_config``: HaDES-F is the
  ``overfit`` run, HaDES-R the ``distill`` run), changed only in population, generations,
  seed and (optionally) observation normalisation and HaDES-F's init seed; after ``make_configs`` every other stored
  setting is checked to be reproduced exactly;
* wandb disabled (``WANDB_MODE=disabled``; their ``main`` logs to it unconditionally);
* their per-generation pickles (``save_interval=1``) in ``--work-dir``.

It then writes ``--out`` (JSON): the population-mean and best fitness of every generation
as their loop records them (``fitness_over_gen`` / ``max_fitness_over_gen``), plus the
settings and versions.

    /tmp/hades_official_venv/bin/python benchmarks/peers/hades_official.py \\
        --official-repo /tmp/bd_official --env Breakout-MinAtar --variant F \\
        --popsize 64 --generations 20 --seed 0 --out /tmp/bd_runs/breakout_F_s0.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

MINATAR_ENVS = ("Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "SpaceInvaders-MinAtar")
NORMALIZATIONS = ("stored", "none", "constant", "running")
VERSIONED = ("jax", "jaxlib", "flax", "optax", "chex", "distrax", "evosax", "gymnax", "brax")
VERSIONED += ("mujoco", "numpy", "wandb")

# stored config key -> (command-line flag of the official script, kind)
CONFIG_FLAGS = {
    "NET": ("--net", "value"),
    "LR": ("--lr", "value"),
    "NUM_ENVS": ("--eval_envs", "value"),
    "NUM_STEPS": ("--num_steps", "value"),
    "UPDATE_EPOCHS": ("--epochs", "value"),
    "ACTIVATION": ("--activation", "value"),
    "WIDTH": ("--width", "value"),
    "FFWD_LAYERS": ("--ffwd_layers", "value"),
    "ENV_NAME": ("--env", "value"),
    "GREEDY_ACT": ("--greedy_act", "flag"),
    "DATA_NOISE": ("--data_noise", "value"),
    "CONST_NORMALIZE_OBS": ("--const_normalize_obs", "int"),
    "NORMALIZE_OBS": ("--normalize_obs", "int"),
    "NORMALIZE_REWARD": ("--normalize_reward", "int"),
    "OVERFIT": ("--overfit", "flag"),
    "OVERFIT_SEED": ("--overfit_seed", "value"),
}
ES_FLAGS = {
    "dataset_size": ("--dataset_size", "value"),
    "rollouts_per_candidate": ("--rollouts", "value"),
    "sigma_init": ("--sigma_init", "value"),
    "sigma_limit": ("--sigma_limit", "value"),
    "sigma_decay": ("--sigma_decay", "value"),
    "lrate_init": ("--lrate_init", "value"),
    "lrate_decay": ("--lrate_decay", "value"),
    "learn_labels": ("--learn_labels", "flag"),
    "strategy": ("--es_strategy", "value"),
    "temperature": ("--temperature", "value"),
}
# flags only the MinAtar script defines (the Brax script hard-codes NUM_STEPS, GREEDY_ACT, ...)
MINATAR_ONLY = {"--net", "--num_steps", "--ffwd_layers", "--greedy_act", "--sigma_limit"}
MINATAR_ONLY |= {"--lrate_decay", "--learn_labels", "--es_strategy", "--temperature"}
# settings this script changes on purpose or that name logging; NUM_UPDATES is set by their
# make_train (= UPDATE_EPOCHS). Normalisation is checked against the chosen --normalization.
CHANGED = {"SEED", "FOLDER", "PROJECT", "DEBUG", "NUM_UPDATES"}
ES_CHANGED = {"popsize", "n_generations", "save_interval", "log_interval"}


def family(env: str) -> str:
    return "minatar" if env in MINATAR_ENVS or env.endswith("-MinAtar") else "brax"


def stored_run_dir(repo: Path, env: str, variant: str) -> Path:
    """The paper run whose settings are replayed (seed 0's; seeds differ only in SEED)."""
    kind = "overfit" if variant == "F" else "distill"
    if family(env) == "minatar":
        return (
            repo / f"results/ICLR/minatar/virtual_batch_norm/{kind}/{env}/D16/greedy_actFalse/seed0"
        )
    return repo / f"results/ICLR/brax/no_virtual_batch_norm/{kind}/{env}/D64/seed0"


def load_stored(repo: Path, env: str, variant: str) -> tuple[dict, dict, str]:
    rel = stored_run_dir(repo, env, variant).relative_to(repo) / "data_final.pkl"
    path = repo / rel
    if not path.exists():  # checkouts may skip the results pickles: read it from git
        blob = subprocess.run(
            ["git", "-C", str(repo), "show", f"HEAD:{rel}"], check=True, capture_output=True
        ).stdout
        data = pickle.loads(blob)
    else:
        with open(path, "rb") as f:
            data = pickle.load(f)
    config = {k: v for k, v in data["config"].items() if k not in ("OBS_MEAN", "OBS_VAR")}
    return config, dict(data["es_config"]), str(rel)


def normalization_flags(fam: str, normalization: str, stored: dict) -> dict:
    if normalization == "stored":
        return {
            "CONST_NORMALIZE_OBS": stored["CONST_NORMALIZE_OBS"],
            "NORMALIZE_OBS": stored["NORMALIZE_OBS"],
        }
    if normalization == "running" and fam == "minatar":
        # distill_minatar.make_train applies only CONST_NORMALIZE_OBS
        raise SystemExit("the official MinAtar code has no running observation normalisation")
    return {  # off means off: running statistics are skipped when constant ones are on
        "CONST_NORMALIZE_OBS": normalization == "constant",
        "NORMALIZE_OBS": normalization == "running",
    }


def build_argstring(fam: str, config: dict, es_config: dict, args) -> str:
    parts: list[str] = []
    for table, src in ((CONFIG_FLAGS, config), (ES_FLAGS, es_config)):
        for key, (flag, kind) in table.items():
            if key not in src or (fam == "brax" and flag in MINATAR_ONLY):
                continue
            value = src[key]
            if kind == "flag":
                if value:
                    parts.append(flag)
            elif kind == "int":
                parts += [flag, str(int(bool(value)))]
            else:
                parts += [flag, str(value)]
    parts += ["--popsize", str(args.popsize), "--generations", str(args.generations)]
    parts += ["--seed", str(args.seed), "--folder", str(args.work_dir)]
    parts += ["--save_interval", "1", "--log_interval", "1"]
    return " ".join(parts)


def check_reproduced(stored: dict, made: dict, changed: set, what: str) -> None:
    for key, value in stored.items():
        if key in changed:
            continue
        if key not in made or made[key] != value:
            raise SystemExit(
                f"{what}[{key!r}]: stored run has {value!r}, rebuilt config has {made.get(key)!r}"
            )


def versions() -> dict:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--official-repo", type=Path, required=True)
    p.add_argument("--env", required=True, help="Breakout-MinAtar, hopper, ...")
    p.add_argument("--variant", choices=("F", "R"), required=True)
    p.add_argument("--popsize", type=int, required=True)
    p.add_argument("--generations", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--normalization", choices=NORMALIZATIONS, default="stored")
    p.add_argument(
        "--fixed-init",
        choices=("stored", "run-seed"),
        default="stored",
        help="HaDES-F's policy init: the stored runs' OVERFIT_SEED (420, one init for every "
        "seed) or the run's --seed (a different init per seed)",
    )
    p.add_argument("--work-dir", type=Path, help="their pickles; default: next to --out")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    repo = args.official_repo.resolve()
    args.out = args.out.resolve()
    args.work_dir = (args.work_dir or args.out.with_suffix("")).resolve()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    fam = family(args.env)
    stored_config, stored_es, stored_from = load_stored(repo, args.env, args.variant)
    stored_config.update(normalization_flags(fam, args.normalization, stored_config))
    if args.fixed_init == "run-seed":
        stored_config["OVERFIT_SEED"] = args.seed

    os.environ["WANDB_MODE"] = "disabled"
    os.chdir(repo / "policy_distillation")  # their code loads ../normalize_params, imports ..
    sys.path.insert(0, str(repo / "policy_distillation"))
    sys.path.insert(0, str(repo))
    module = importlib.import_module("distill_minatar" if fam == "minatar" else "distill_brax")

    argstring = build_argstring(fam, stored_config, stored_es, args)
    config, es_config = module.make_configs(module.parse_arguments(argstring))
    check_reproduced(stored_config, config, CHANGED, "config")
    check_reproduced(stored_es, es_config, ES_CHANGED, "es_config")

    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    start = time.perf_counter()
    module.main(config, es_config)  # their loop: ask -> train + evaluate -> tell, per generation
    seconds = time.perf_counter() - start

    with open(args.work_dir / "data_final.pkl", "rb") as f:
        final = pickle.load(f)
    mean = [float(x) for x in final["fitness_over_gen"]]
    best = [float(x) for x in final["max_fitness_over_gen"]]
    import jax

    result = {
        "side": "official",
        "env": args.env,
        "variant": args.variant,
        "seed": args.seed,
        "popsize": args.popsize,
        "generations": args.generations,
        "normalization": args.normalization,
        "fixed_init": args.fixed_init,
        "overfit_seed": config.get("OVERFIT_SEED"),
        "mean": mean,
        "best": best,
        "seconds": seconds,
        "argstring": argstring,
        "config": {k: v for k, v in config.items() if k not in ("OBS_MEAN", "OBS_VAR")},
        "es_config": es_config,
        "stored_settings_from": stored_from,
        "official_commit": commit,
        "versions": versions(),
        "python": platform.python_version(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"jax devices {[str(d) for d in jax.devices()]}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(args.out)
    print(f"wrote {args.out}: mean fitness {mean[0]:.2f} -> {mean[-1]:.2f} in {seconds:.0f}s")


if __name__ == "__main__":
    main()
