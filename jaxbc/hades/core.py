"""HaDES behaviour distillation (Lupu et al., ICLR 2024): evolve a tiny synthetic dataset
whose fitness is the return of a policy trained on it by behavioural cloning.

The synthetic dataset is a pytree (the ES "solution"):

* continuous actions: ``{"obs": [D, *obs_shape], "action": [D, act_dim]}``, zeros at first;
* discrete actions: ``{"obs": [D, *obs_shape]}`` with fixed balanced labels
  ``arange(D) % n_actions`` (``D // n`` per action, the first ``D mod n`` actions one more),
  or with ``learn_labels`` also ``"logits": [D, n]`` (soft labels, evolved too).

One generation is ``ask -> vmap over the population (vmap over policy inits (train +
rollout)) -> tell``; several generations run as one ``lax.scan`` on device and only
per-generation summaries (best/mean/std return) come back. HaDES-F trains every member from
one fixed policy init for the whole run; HaDES-R draws ``num_inits`` fresh inits per
generation, shared by the whole population, and averages the fitness over them.

Usage::

    config = HadesConfig(env_id="CartPole-v1", dataset_size=4)
    hades = make_hades(config, make_strategy("SNES", 64, solution_template(config), sigma=0.5))
    state, summary = hades.run(jax.random.key(0), generations=50)

``make_hades`` accepts any object following evosax's ``init/ask/tell`` + ``default_params``
protocol; :class:`jaxbc.hades.strategies.HillClimber` is a complete example in a dozen lines.

Devices: the population axis is split over ``config.num_devices`` devices (default: all of
``jax.devices()``) with ``shard_map`` on a 1-D ``Mesh`` named ``"population"``; with one
device it is a plain ``vmap``. The population size must be a multiple of the device count.
For several hosts, call :func:`jaxbc.distributed.initialize` in every process before
anything else touches JAX; ``jax.devices()`` then lists every host's devices, every process
runs the same program on the same keys (so the ES state is replicated), and each device
evaluates its slice of the population (``tests/test_multihost.py``: 2 processes x 2 CPU
devices against 1 process x 4).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh, PartitionSpec

from jaxbc import envs
from jaxbc.bc.acting import ActionHead, Single, policy_function
from jaxbc.bc.losses import member_bc_loss
from jaxbc.bc.policies import Policy, PolicyConfig, make_policy
from jaxbc.bc.train import BCConfig, member_optimizer
from jaxbc.distributed import device_mesh
from jaxbc.envs import Box, Discrete, Env
from jaxbc.hades.strategies import strategy_key
from jaxbc.rollout import (
    WINDOW_EPISODES,
    PolicyFn,
    WindowScore,
    evaluate_fn,
    pooled,
    window_score_fn,
)
from jaxbc.training import fit
from jaxbc.validation import ConfigError, check_float, check_int

VARIANTS = ("F", "R")
FITNESS_EPISODES = ("first", *WINDOW_EPISODES)
POP_AXIS = "population"


def _default_policy() -> PolicyConfig:
    return PolicyConfig(hidden_sizes=(64, 64), activation="relu", torso="mlp", tanh_bounded=False)


@dataclass(frozen=True)
class HadesConfig:
    """Everything but the outer strategy. Defaults suit small classic-control problems;
    :func:`hades_preset` gives the paper's settings per env family."""

    env_id: str = "CartPole-v1"
    env_options: tuple[tuple[str, Any], ...] = ()
    dataset_size: int = 4  # D synthetic (state, action) pairs
    variant: str = "F"  # F: one fixed policy init; R: num_inits fresh inits per generation
    num_inits: int = 2  # HaDES-R inits per generation (shared by the population)
    learn_labels: bool = False  # discrete: evolve label logits too (else fixed balanced labels)
    label_init_logit: float = 2.0  # learned logits start at this x one_hot(balanced labels)
    policy: PolicyConfig = field(default_factory=_default_policy)  # kind auto: gaussian/categorical
    inner_steps: int = 64  # full-batch BC steps of the inner loop
    inner_lr: float = 0.03
    adam_eps: float = 1e-8
    max_grad_norm: float | None = 0.5  # None: no clipping
    num_envs: int = 4  # E envs per fitness evaluation
    eval_steps: int | None = None  # L rollout steps; None: env.max_episode_steps
    # which episodes make the fitness: "first" (each env's first episode) or, over the
    # L-step window of auto-resetting envs, "all" (every episode that ends in it; far less
    # noisy when episodes are short, e.g. MinAtar Breakout's 6-40 steps under a random
    # policy), "last" (each env's last finished one) or "recent" (each env's most recent
    # one, averaged over the window's steps): jaxbc.rollout.window_score_fn, pooled over inits
    fitness_episodes: Literal["first", "all", "last", "recent"] = "first"
    deterministic_eval: bool = True  # mode/mean actions in the fitness rollouts
    # observations as the policy sees them, and the space the synthetic states live in:
    # "none" (raw), "constant" (fixed per-env moments, jaxbc/envs/obs_stats/) or "running"
    # (moments of the fitness rollout's envs so far); see jaxbc.envs.normalization
    obs_normalization: Literal["none", "constant", "running"] = "none"
    num_devices: int | None = None  # devices the population is split over; None: all
    # members evaluated together (vmap inside a block, lax.map over blocks): each step's
    # batched matmuls then touch only a block's weights, which stay in cache on a CPU.
    # None: automatic (4 on CPU for policies of >= SMALL_POLICY_PARAMS parameters; else,
    # and on GPU/TPU, the whole local shard at once); 0: whole shard.
    member_block: int | None = None
    # members (and inits) trained together in the inner loop, the same way. 1: one at a time
    # with no vmap at all; None: automatic (on CPU 1 for policies of >= LARGE_POLICY_PARAMS,
    # where a vmapped inner loop's batched matmuls ran ~2x slower than plain ones even at
    # batch 1, 4 from SMALL_POLICY_PARAMS; else, and on GPU/TPU, the whole shard).
    train_block: int | None = None

    @property
    def inits_per_generation(self) -> int:
        return 1 if self.variant == "F" else self.num_inits

    def make_env(self) -> Env:
        """The env in the normalised observation space (its options record the mode, so a
        distilled dataset and the policies trained on it act in that space too)."""
        options = dict(self.env_options)
        if self.obs_normalization != "none":
            options["obs_normalization"] = self.obs_normalization
        return envs.make(self.env_id, **options)

    def __post_init__(self):
        self.validate()

    def validate(self) -> HadesConfig:
        for name in ("dataset_size", "num_inits", "inner_steps", "num_envs"):
            check_int(f"HadesConfig.{name}", getattr(self, name), 1)
        check_int("HadesConfig.eval_steps", self.eval_steps, 1, allow_none=True)
        check_int("HadesConfig.num_devices", self.num_devices, 1, allow_none=True)
        check_float("HadesConfig.inner_lr", self.inner_lr, 0.0, lo_open=True)
        check_float("HadesConfig.adam_eps", self.adam_eps, 0.0, lo_open=True)
        check_float(
            "HadesConfig.max_grad_norm", self.max_grad_norm, 0.0, lo_open=True, allow_none=True
        )
        check_float("HadesConfig.label_init_logit", self.label_init_logit)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown HaDES variant {self.variant!r}; choose from {VARIANTS}")
        for name in ("member_block", "train_block"):
            check_int(f"HadesConfig.{name}", getattr(self, name), 0, allow_none=True)
        if self.fitness_episodes not in FITNESS_EPISODES:
            raise ValueError(
                f"unknown fitness_episodes {self.fitness_episodes!r}; choose from {FITNESS_EPISODES}"
            )
        if self.obs_normalization not in envs.OBS_NORMALIZATIONS:
            raise ValueError(
                f"unknown HadesConfig.obs_normalization {self.obs_normalization!r}; choose from "
                f"{envs.OBS_NORMALIZATIONS}"
            )
        if "obs_normalization" in dict(self.env_options):
            raise ValueError(
                "set HadesConfig.obs_normalization, not env_options['obs_normalization']"
            )
        if self.policy.kind not in ("auto", "gaussian", "categorical", "deterministic"):
            raise ValueError(f"unknown policy kind {self.policy.kind!r}")
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["env_options"] = [list(kv) for kv in self.env_options]
        d["policy"]["hidden_sizes"] = list(self.policy.hidden_sizes)
        return d


# the official runs' dataset sizes (D), per family
PAPER_DATASET_SIZE = {"brax": 64, "minatar": 16}


def hades_preset(env_id: str, **overrides: Any) -> HadesConfig:
    """The official implementation's settings per env family, read from its code and stored
    runs (the README's settings audit gives each with its source); small nets for classic
    control. Where ours differs on purpose, the config field names it.

    * Both paper families sample actions in the fitness rollouts.
    * Brax: every finished episode scores; observations z-scored with the rollout's running
      moments at D=64 and with constant moments (the zoo expert's PPO normaliser) at D=4,
      as the official runs.
    * MinAtar: constant per-env moments; the "recent" window fitness of the stored runs;
      1024 rollout steps; ``D // n`` states per action: the official code labels
      ``n * (D // n)`` states and never trains on the rest, so the preset's D is that
      (15 for Breakout's 3 actions at the paper's 16); Adam's eps ``1e-5 * n`` because the
      official loss is the cross-entropy divided by ``n`` (Adam is scale-free but for eps).
    """
    family = envs.family_of(env_id)
    if family == "brax":
        d = overrides.get("dataset_size", PAPER_DATASET_SIZE["brax"])
        base = dict(
            policy=PolicyConfig(
                kind="gaussian",
                hidden_sizes=(512, 512),
                activation="tanh",
                torso="mlp",
                tanh_bounded=False,
            ),
            inner_steps=200 if env_id == "brax/hopper" else 400,
            inner_lr=5e-3,
            adam_eps=1e-5,
            max_grad_norm=0.5,
            num_envs=4,
            eval_steps=1024,
            dataset_size=d,
            fitness_episodes="all",
            deterministic_eval=False,
            obs_normalization="constant" if d <= 4 else "running",
        )
    elif family == "minatar":
        n = envs.make(env_id).action_space.n
        paper_d = PAPER_DATASET_SIZE["minatar"]
        base = dict(
            policy=PolicyConfig(hidden_sizes=(512, 512), activation="relu", torso="mlp"),
            inner_steps=64,
            inner_lr=0.03,
            adam_eps=1e-5 * n,
            max_grad_norm=None,
            num_envs=8,
            eval_steps=1024,
            dataset_size=n * max(1, paper_d // n),
            fitness_episodes="recent",
            deterministic_eval=False,
            obs_normalization="constant",
        )
    else:
        base = dict(
            policy=_default_policy(), inner_steps=64, inner_lr=0.03, num_envs=4, dataset_size=4
        )
    return HadesConfig(env_id=env_id, **{**base, **overrides}).validate()


def balanced_labels(dataset_size: int, num_actions: int) -> jax.Array:
    """``arange(D) % n``: every action ``D // n`` times (the first ``D mod n`` once more)."""
    return jnp.arange(dataset_size, dtype=jnp.int32) % num_actions


def solution_template(config: HadesConfig, env: Env | None = None) -> dict[str, jax.Array]:
    """The initial synthetic dataset (the ES mean at generation 0); its shapes define the
    solution every strategy must be built for."""
    env = env or config.make_env()
    d = config.dataset_size
    data = {"obs": jnp.zeros((d, *env.observation_shape), jnp.float32)}
    if isinstance(env.action_space, Box):
        data["action"] = jnp.zeros((d, *env.action_space.shape), jnp.float32)
    elif d < env.action_space.n and not config.learn_labels:
        raise ConfigError(
            f"HadesConfig.dataset_size must be >= {env.action_space.n} (the number of actions of {env.id}) "
            f"with fixed balanced labels, got {d}: some actions would never be taught; use a larger "
            "dataset_size or learn_labels=True",
            "dataset_size",
        )
    elif config.learn_labels:
        n = env.action_space.n
        data["logits"] = config.label_init_logit * jax.nn.one_hot(
            balanced_labels(d, n), n, dtype=jnp.float32
        )
    return data


def episode_returns(
    env: Env, policy_fn: PolicyFn, params: Any, key: jax.Array, num_envs: int, num_steps: int
) -> jax.Array:
    """Return of each env's first episode within ``num_steps`` steps, shape ``[num_envs]``
    (an episode still running at the end counts its return so far)."""
    return evaluate_fn(env, policy_fn, num_envs, num_steps)(params, key).returns


class Summary(NamedTuple):
    """Per-generation statistics of the population's returns (leading axis: generations)."""

    best: jax.Array
    mean: jax.Array
    std: jax.Array


class GenerationInfo(NamedTuple):
    """Everything about one generation (only ``summary`` leaves a multi-generation scan)."""

    summary: Summary
    returns: jax.Array  # [P] fitness as returns (higher is better)
    population: Any  # synthetic datasets, leading axis P
    inits: Any  # policy params used, leading axis k
    eval_key: jax.Array  # rollout key shared by the population (common random numbers)


class HadesState(struct.PyTreeNode):
    es_state: Any
    key: jax.Array
    fixed_init: Any  # HaDES-F policy init (None for HaDES-R)
    best_data: Any  # best synthetic dataset seen so far (by its noisy fitness)
    best_fitness: jax.Array
    generation: jax.Array


def _strong(tree: Any) -> Any:
    """Every array leaf strongly typed: a state that leaves a generation with the types it
    entered with keeps one compiled scan for every chunk (a weak-typed leaf recompiles it)."""
    return jax.tree.map(lambda x: jnp.asarray(x, x.dtype) if _is_array(x) else x, tree)


def _is_array(x: Any) -> bool:
    return isinstance(x, jax.Array) and not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _sanitize(returns: jax.Array) -> jax.Array:
    """Non-finite returns (a diverged member) become the population's worst finite return."""
    ok = jnp.isfinite(returns)
    worst = jnp.min(jnp.where(ok, returns, jnp.inf))
    return jnp.where(ok, returns, jnp.where(jnp.isfinite(worst), worst, 0.0))


def make_policy_for(config: HadesConfig, env: Env) -> Policy:
    kind = config.policy.kind
    if kind == "auto":
        kind = "categorical" if isinstance(env.action_space, Discrete) else "gaussian"
    return make_policy(
        dataclasses.replace(config.policy, kind=kind),
        env.action_space,
        tuple(env.observation_shape),
    )


def make_mesh(num_devices: int | None) -> Mesh | None:
    """A 1-D mesh over the first ``num_devices`` devices (all if None); None for one device."""
    n = jax.device_count() if num_devices is None else num_devices
    return None if n == 1 else device_mesh(n, POP_AXIS)


# the inner loop's numbers: traced data in the compiled programs (changing them reuses them)
HYPER_FIELDS = ("inner_lr", "adam_eps", "max_grad_norm")


# The automatic blocks on CPU, by policy size (benchmarks/results/hades_speed_small/):
# below SMALL_POLICY_PARAMS one vmap (tiny nets are bound by per-op overhead, which batching
# all members amortises: CartPole 2x64, 4.6k parameters); from there rollouts in blocks of 4
# and the inner loop in blocks of 4 (Breakout 2x64, 30k); from LARGE_POLICY_PARAMS the inner
# loop one member at a time with no vmap (2x512 nets: XLA:CPU's batched matmuls ran ~2x
# slower than plain ones; hades_speed_cpu.json).
SMALL_POLICY_PARAMS = 16_384
LARGE_POLICY_PARAMS = 131_072


def _block(configured: int | None, policy_params: int, large: int, medium: int) -> int:
    """A configured block size, or the default for a policy of ``policy_params`` parameters:
    ``large`` / ``medium`` on CPU from :data:`LARGE_POLICY_PARAMS` /
    :data:`SMALL_POLICY_PARAMS`, else 0 (the whole shard at once; always off CPU)."""
    if configured is not None:
        return configured
    if jax.default_backend() != "cpu" or policy_params < SMALL_POLICY_PARAMS:
        return 0
    return large if policy_params >= LARGE_POLICY_PARAMS else medium


def map_members(f: Callable[[Any], Any], members: Any, block: int) -> Any:
    """``f`` over the leading (member) axis of ``members``: one ``vmap`` when ``block`` is 0
    or covers them all, a plain ``lax.map`` (no vmap) when it is 1, else ``lax.map`` over
    blocks of ``block`` with ``vmap`` inside (each block's weights stay in cache). The values
    agree to float rounding (batched and plain matmuls may round differently)."""
    size = jax.tree.leaves(members)[0].shape[0]
    if block == 1 and size == 1:  # (a vmap of size 1 would bring the batched matmuls back)
        return jax.tree.map(lambda y: y[None], f(jax.tree.map(lambda x: x[0], members)))
    if block == 1:
        return jax.lax.map(f, members)
    if block == 0 or block >= size:
        return jax.vmap(f)(members)
    return jax.lax.map(f, members, batch_size=block)


@dataclass(frozen=True, eq=False)
class Hades:
    """Pure HaDES pieces for one env/config/strategy; see the module docstring.

    Two ``Hades`` are equal when their structure is (config up to :data:`HYPER_FIELDS`, the
    strategy's :func:`strategy_key`, env, mesh): the jitted entry points
    (:meth:`initial_state`, :meth:`step_generations`, :meth:`evaluate_data`) are keyed by that
    and take the inner loop's numbers and the strategy's ``params`` as data, so a re-made
    ``Hades`` or one with another ``inner_lr`` or SNES ``std_init`` reuses their programs.
    """

    config: HadesConfig
    strategy: Any
    env: Env
    policy: Policy
    template: Any
    mesh: Mesh | None
    es_params: Any = None  # the strategy's params inside a program (traced); None: its default

    @property
    def params(self) -> Any:
        """The strategy's params (evosax's ``params``), passed to init/ask/tell."""
        return self.strategy.default_params if self.es_params is None else self.es_params

    @functools.cached_property
    def structure(self) -> tuple:
        cfg = self.config
        placeholders = {k: 1.0 for k in HYPER_FIELDS if getattr(cfg, k) is not None}
        return (
            dataclasses.replace(cfg, **placeholders),
            strategy_key(self.strategy),
            self.env,
            self.mesh,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Hades) and self.structure == other.structure

    def __hash__(self) -> int:
        return hash(self.structure)

    def hyperparams(self) -> dict:
        """The numbers a program takes as data: the inner loop's and the strategy's params."""
        cfg = self.config
        inner = {k: getattr(cfg, k) for k in HYPER_FIELDS if getattr(cfg, k) is not None}
        return {"inner": inner, "es": self.params}

    def with_hyperparams(self, hyper: dict) -> Hades:
        """This structure with ``hyper`` (possibly traced) in place of its numbers."""
        config = dataclasses.replace(self.config, **hyper["inner"])
        return dataclasses.replace(self, config=config, es_params=hyper["es"])

    @property
    def eval_steps(self) -> int:
        return self.config.eval_steps or self.env.max_episode_steps

    # --- inner loop --------------------------------------------------------------------
    def labels(self, data: dict) -> jax.Array:
        """Hard action labels of a synthetic dataset (argmax of learned logits)."""
        if isinstance(self.env.action_space, Box):
            return data["action"]
        if "logits" in data:
            return jnp.argmax(data["logits"], -1).astype(jnp.int32)
        return balanced_labels(self.config.dataset_size, self.env.action_space.n)

    def targets(self, data: dict) -> jax.Array:
        """What the inner loop fits: the labels, or the softmax of learned label logits."""
        if "logits" in data:
            return jax.nn.softmax(data["logits"], -1)
        return self.labels(data)

    def train(self, data: dict, init_params: Any) -> Any:
        """Train a policy from ``init_params`` on ``data`` with the BC recipe
        :meth:`bc_config` (its full-batch steps, loss and optimiser; no keys: deterministic)."""
        chex.assert_shape(data["obs"], (self.config.dataset_size, *self.env.observation_shape))
        policy, recipe = self.policy, self.bc_config()

        def loss(params, batch, _key):
            obs, targets = batch
            return member_bc_loss(policy, policy.apply(params, obs), targets), {}

        batch = (data["obs"], self.targets(data))
        params, _, _ = fit(loss, member_optimizer(recipe), init_params, batch, None, recipe.steps)
        return params

    def bc_config(self) -> BCConfig:
        """The BC trainer's config that trains exactly like this inner loop (one member, full
        batch, no z-scoring of its own (observation normalisation belongs to the env, whose
        options the dataset keeps), the same Adam and clipping): ``make_bc_train(hades.bc_config())``
        on the distilled dataset reproduces :meth:`train` (stored with distilled datasets,
        and the default of ``jaxbc bc`` on them)."""
        cfg = self.config
        return BCConfig(
            policy=dataclasses.replace(cfg.policy, kind=self.policy.kind),
            members=1,
            steps=cfg.inner_steps,
            full_batch=True,
            lr=cfg.inner_lr,
            max_grad_norm=cfg.max_grad_norm,
            adam_eps=cfg.adam_eps,
            normalize_obs=False,
            normalize_actions=False,
        )

    def policy_fn(self) -> PolicyFn:
        """The fitness rollouts' :func:`~jaxbc.bc.acting.policy_function`: one network on
        params ``{"net": ...}``, no normaliser of its own (the env's options normalise), the
        mode/mean if ``deterministic_eval`` else a sample clipped to the action bounds."""
        policy = self.policy
        return policy_function(
            Single(policy),
            ActionHead(policy.kind, self.env.action_space),
            self.config.deterministic_eval,
        )

    def score(self, params: Any, key: jax.Array) -> WindowScore:
        """The fitness rollout of one trained policy (``num_envs`` envs, ``eval_steps`` steps)
        in poolable parts: their first episodes (one score per env), or a window fitness
        (``"all"``, ``"last"``, ``"recent"``: :func:`~jaxbc.rollout.window_score_fn`)."""
        cfg = self.config
        if cfg.fitness_episodes != "first":
            return window_score_fn(
                self.env, self.policy_fn(), cfg.num_envs, self.eval_steps, cfg.fitness_episodes
            )({"net": params}, key)
        first = episode_returns(
            self.env, self.policy_fn(), {"net": params}, key, cfg.num_envs, self.eval_steps
        )
        return WindowScore(first.sum(), jnp.asarray(cfg.num_envs, jnp.float32), first.mean())

    def train_inits(self, data: dict, inits: Any) -> Any:
        """Policies trained on ``data`` from each of the ``k`` stacked ``inits`` (``[k, ...]``),
        mapped like the population (:attr:`train_block`)."""
        return map_members(lambda init: self.train(data, init), inits, self.train_block)

    def mean_return(self, trained: Any, key: jax.Array) -> jax.Array:
        """The fitness of ``k`` stacked trained policies (keys split ``k`` ways): the mean
        return of all their scored episodes pooled, as the official HaDES-R does (with
        ``"all"`` an init whose policy falls often weighs more; the other modes score a fixed
        number per init, so this is the mean over inits)."""
        k = jax.tree.leaves(trained)[0].shape[0]
        return pooled(jax.vmap(self.score)(trained, jax.random.split(key, k)))

    def fitness(self, data: dict, inits: Any, key: jax.Array) -> jax.Array:
        """Return of policies trained on ``data`` from each of the ``k`` stacked ``inits``, pooled
        (:meth:`mean_return`)."""
        return self.mean_return(self.train_inits(data, inits), key)

    @property
    def member_block(self) -> int:
        """Members evaluated together per device (0: all of the local shard)."""
        return _block(self.config.member_block, self.policy_params, large=4, medium=4)

    @property
    def train_block(self) -> int:
        """Members (and inits) trained together per device (0: all; 1: one at a time)."""
        return _block(self.config.train_block, self.policy_params, large=1, medium=4)

    @functools.cached_property
    def policy_params(self) -> int:
        """Parameters of one policy (decides the automatic blocks)."""
        shapes = jax.eval_shape(self.policy.init, jax.random.key(0))
        return sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))

    def evaluate_population(self, population: dict, inits: Any, key: jax.Array) -> jax.Array:
        """``[P]`` fitness; the population axis is split over the mesh's devices, and each
        device trains its members in blocks of :attr:`train_block`, then evaluates them in
        blocks of :attr:`member_block` (the same values as :meth:`fitness` member by member)."""

        def evaluate(population, inits, key):
            trained = map_members(
                lambda d: self.train_inits(d, inits), population, self.train_block
            )
            return map_members(lambda t: self.mean_return(t, key), trained, self.member_block)

        if self.mesh is None:
            return evaluate(population, inits, key)
        size = jax.tree.leaves(population)[0].shape[0]
        n = self.mesh.devices.size
        if size % n:
            raise ValueError(
                f"population size {size} is not a multiple of the {n} devices it is split over; "
                f"use a multiple of {n} or set HadesConfig.num_devices"
            )
        sharded = jax.shard_map(
            evaluate,
            mesh=self.mesh,
            in_specs=(PartitionSpec(POP_AXIS), PartitionSpec(), PartitionSpec()),
            out_specs=PartitionSpec(POP_AXIS),
            check_vma=False,
        )
        return sharded(population, inits, key)

    def generation_inits(self, state: HadesState, key: jax.Array) -> Any:
        """Policy inits of a generation, stacked on a leading axis of size ``k``."""
        if self.config.variant == "F":
            return jax.tree.map(lambda x: x[None], state.fixed_init)
        return jax.vmap(self.policy.init)(jax.random.split(key, self.config.num_inits))

    # --- outer loop --------------------------------------------------------------------
    def init(self, key: jax.Array) -> HadesState:
        k_es, k_policy, k_run = jax.random.split(key, 3)
        es_state = self.strategy.init(k_es, self.template, self.params)
        fixed = self.policy.init(k_policy) if self.config.variant == "F" else None
        state = HadesState(
            es_state,
            k_run,
            fixed,
            self.template,
            jnp.asarray(-jnp.inf, jnp.float32),
            jnp.zeros((), jnp.int32),
        )
        return _strong(state)

    def generation(self, state: HadesState) -> tuple[HadesState, GenerationInfo]:
        """ask -> evaluate the population -> tell (fitness ``-returns``: evosax minimises)."""
        key, k_ask, k_init, k_eval, k_tell = jax.random.split(state.key, 5)
        params = self.params
        population, es_state = self.strategy.ask(k_ask, state.es_state, params)
        leaves = jax.tree.leaves(population)
        chex.assert_tree_shape_prefix(population, (leaves[0].shape[0],))
        chex.assert_trees_all_equal_structs(jax.tree.map(lambda x: x[0], population), self.template)
        inits = self.generation_inits(state, k_init)
        returns = _sanitize(self.evaluate_population(population, inits, k_eval).astype(jnp.float32))
        es_state, _ = self.strategy.tell(k_tell, population, -returns, es_state, params)
        es_state = _strong(es_state)  # e.g. Open_ES's tell makes `std` weak-typed
        i = jnp.argmax(returns)
        better = returns[i] > state.best_fitness
        best_data = jax.tree.map(
            lambda p, b: jnp.where(better, p[i], b), population, state.best_data
        )
        new = HadesState(
            es_state,
            key,
            state.fixed_init,
            best_data,
            jnp.maximum(returns[i], state.best_fitness),
            state.generation + 1,
        )
        summary = Summary(returns.max(), returns.mean(), returns.std())
        return new, GenerationInfo(summary, returns, population, inits, k_eval)

    def scan_generations(
        self, state: HadesState, num_generations: int
    ) -> tuple[HadesState, Summary]:
        """``num_generations`` generations as one ``lax.scan`` (pure; jit it)."""

        def body(s, _):
            s, info = self.generation(s)
            return s, info.summary

        return jax.lax.scan(body, state, None, length=num_generations)

    def initial_state(self, key: jax.Array) -> HadesState:
        """Jitted :meth:`init` (one compile per structure)."""
        return _init_program(self, self.hyperparams(), key)

    def step_generations(
        self, state: HadesState, num_generations: int
    ) -> tuple[HadesState, Summary]:
        """Jitted :meth:`scan_generations` (one compile per structure and distinct
        ``num_generations``)."""
        if num_generations < 1:
            raise ValueError(f"num_generations must be >= 1, got {num_generations}")
        return _scan_program(self, self.hyperparams(), state, num_generations)

    def run(self, key: jax.Array, generations: int) -> tuple[HadesState, Summary]:
        """Initialise and run ``generations`` generations in one scan."""
        return self.step_generations(self.initial_state(key), generations)

    def mean_data(self, state: HadesState) -> dict:
        """The strategy's current mean dataset (needs ``strategy.get_mean``)."""
        get_mean = getattr(self.strategy, "get_mean", None)
        if get_mean is None:
            raise ValueError(
                f"{type(self.strategy).__name__} has no get_mean(state); use the best dataset instead"
            )
        return get_mean(state.es_state)

    def evaluate_data(self, state: HadesState, data: dict, key: jax.Array) -> jax.Array:
        """Fitness of one synthetic dataset with this variant's inits (HaDES-R: fresh ones)."""
        return _fitness_program(self, self.hyperparams(), state, data, key)


# module-level programs keyed by a Hades's structure; its numbers arrive as data
@functools.partial(jax.jit, static_argnums=0)
def _init_program(hades: Hades, hyper: dict, key: jax.Array) -> HadesState:
    return hades.with_hyperparams(hyper).init(key)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _scan_program(
    hades: Hades, hyper: dict, state: HadesState, num_generations: int
) -> tuple[HadesState, Summary]:
    return hades.with_hyperparams(hyper).scan_generations(state, num_generations)


@functools.partial(jax.jit, static_argnums=0)
def _fitness_program(
    hades: Hades, hyper: dict, state: HadesState, data: dict, key: jax.Array
) -> jax.Array:
    h = hades.with_hyperparams(hyper)
    k_init, k_eval = jax.random.split(key)
    return h.fitness(data, h.generation_inits(state, k_init), k_eval)


def make_hades(config: HadesConfig, strategy: Any, env: Env | None = None) -> Hades:
    """HaDES for ``config`` with any evosax-protocol ``strategy`` (built for
    :func:`solution_template`). ``env`` overrides ``config.make_env()``."""
    config.validate()
    for attr in ("init", "ask", "tell", "default_params"):
        if not hasattr(strategy, attr):
            raise ValueError(
                f"strategy {type(strategy).__name__} lacks {attr!r}; it needs evosax's "
                "default_params / init(key, mean, params) / ask / tell protocol"
            )
    env = env or config.make_env()
    if isinstance(env.action_space, Box) and config.learn_labels:
        raise ValueError("learn_labels applies to discrete actions only")
    policy = make_policy_for(config, env)
    if (policy.kind == "categorical") != isinstance(env.action_space, Discrete):
        raise ValueError(
            f"policy kind {policy.kind} does not fit the action space {env.action_space}"
        )
    return Hades(
        config, strategy, env, policy, solution_template(config, env), make_mesh(config.num_devices)
    )
