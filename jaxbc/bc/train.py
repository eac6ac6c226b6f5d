"""The BC trainer: ``make_bc_train(config, loss_fn)`` -> ``train(key, dataset) -> BCResult``.

The whole optimisation (normalisation, member initialisation, minibatch sampling, optax
with schedule and clipping, periodic evaluation) is one traced function: ``jit`` it,
``vmap`` it over seeds, or build it inside a ``vmap`` over hyperparameters::

    def run(key, tau, lr):
        cfg = dataclasses.replace(base, lr=lr)
        return make_bc_train(cfg, partial(swarm_bc_loss, tau=tau))(key, data)
    jax.jit(jax.vmap(run))(keys, taus, lrs)      # one compiled program for the sweep
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxbc import envs
from jaxbc.artifact import SPEC_FILE, ArtifactError, read_spec, read_state, save_artifact
from jaxbc.bc.acting import ActionHead, Ensemble, ObsNormalizer, policy_function
from jaxbc.bc.losses import Batch, bc_loss
from jaxbc.bc.policies import Policy, PolicyConfig, init_ensemble, make_policy
from jaxbc.data import Dataset, DatasetError, normalization_stats
from jaxbc.envs import ActionSpace, Box, Discrete, space_from_dict
from jaxbc.logs import host_callback
from jaxbc.normalize import zscore
from jaxbc.rollout import PolicyFn, evaluate_fn
from jaxbc.training import adam_optimizer, fit, per_member, split_static
from jaxbc.validation import ConfigError, check_float, check_int, checkable

SCHEDULES = ("constant", "cosine", "linear")


@struct.dataclass
class BCConfig:
    """Everything a BC run needs besides the loss. ``members > 1`` trains an ensemble.

    Structure fields (policy, members, steps, batch size, schedule shape, normalisation,
    evaluation) are static: changing one compiles a new program. The hyperparameters
    ``lr``, ``weight_decay``, ``max_grad_norm`` and ``adam_eps`` are pytree data: they may be
    traced, so ``jax.vmap`` over them (or over seeds) runs a whole sweep in one program and
    the sweep's result carries them batched (see :meth:`BCResult.__getitem__`).
    """

    policy: PolicyConfig = struct.field(default_factory=PolicyConfig, pytree_node=False)
    members: int = struct.field(default=1, pytree_node=False)
    steps: int = struct.field(default=5_000, pytree_node=False)
    batch_size: int = struct.field(default=256, pytree_node=False)
    lr: float | jax.Array = 1e-3
    schedule: str = struct.field(
        default="constant", pytree_node=False
    )  # constant | cosine | linear (decay to 0)
    warmup_steps: int = struct.field(default=0, pytree_node=False)
    weight_decay: float | jax.Array = 0.0
    max_grad_norm: float | jax.Array | None = 1.0  # per member; None: no clipping
    normalize_obs: bool = struct.field(default=True, pytree_node=False)
    normalize_actions: bool = struct.field(
        default=False, pytree_node=False
    )  # continuous only: regress z-scored actions
    eval_every: int = struct.field(
        default=0, pytree_node=False
    )  # >0: evaluate every this many steps (inside jit)
    eval_episodes: int = struct.field(default=10, pytree_node=False)
    adam_eps: float | jax.Array = 1e-8
    # every step uses the whole dataset (batch_size unused): HaDES's inner loop, for small
    # (distilled) datasets; needs num_valid=None
    full_batch: bool = struct.field(default=False, pytree_node=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> BCConfig:
        """Every field, the schedule and eval_every's divisibility; traced hyperparameters
        are skipped."""
        check_int("BCConfig.members", self.members, 1)
        check_int("BCConfig.steps", self.steps, 1)
        check_int("BCConfig.batch_size", self.batch_size, 1)
        if self.schedule not in SCHEDULES:
            raise ConfigError(
                f"BCConfig.schedule: unknown schedule {self.schedule!r}; choose from "
                f"{', '.join(SCHEDULES)}",
                "schedule",
            )
        check_int("BCConfig.warmup_steps", self.warmup_steps, 0)
        check_int("BCConfig.eval_every", self.eval_every, 0)
        check_int("BCConfig.eval_episodes", self.eval_episodes, 1)
        for name, lo, lo_open in (
            ("lr", 0.0, True),
            ("weight_decay", 0.0, False),
            ("max_grad_norm", 0.0, True),
            ("adam_eps", 0.0, True),
        ):
            value = getattr(self, name)
            if checkable(value):
                check_float(
                    f"BCConfig.{name}",
                    value,
                    lo,
                    lo_open=lo_open,
                    allow_none=name == "max_grad_norm",  # None: no clipping
                )
        if (
            isinstance(self.warmup_steps, int)
            and isinstance(self.steps, int)
            and self.warmup_steps > self.steps
        ):
            raise ConfigError(
                f"BCConfig.warmup_steps must be <= steps ({self.steps}), got {self.warmup_steps}",
                "warmup_steps",
            )
        if (
            isinstance(self.eval_every, int)
            and self.eval_every
            and isinstance(self.steps, int)
            and self.steps % self.eval_every
        ):
            raise ConfigError(
                f"BCConfig.steps ({self.steps}) must be a multiple of eval_every ({self.eval_every})",
                "steps",
            )
        return self

    def structure(self) -> tuple:
        """The static fields: equal structures share compiled programs."""
        return tuple(
            (f.name, getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not f.metadata.get("pytree_node", True)
        )

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("lr", "weight_decay", "max_grad_norm", "adam_eps"):
            d[name] = None if d[name] is None else float(d[name])
        d["policy"] = asdict(self.policy)
        d["policy"]["hidden_sizes"] = list(self.policy.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BCConfig:
        d = dict(d)
        pol = dict(d.pop("policy", {}))
        if "hidden_sizes" in pol:
            pol["hidden_sizes"] = tuple(pol["hidden_sizes"])
        return cls(policy=PolicyConfig(**pol), **d)

    @classmethod
    def from_recipe(cls, dataset: Dataset) -> BCConfig | None:
        """The BC config stored with ``dataset`` as its training recipe (HaDES's distilled
        data), or ``None`` if it stores none; a recipe that is no BCConfig raises
        :class:`~jaxbc.data.DatasetError`."""
        recipe = dataset.recipe
        if recipe is None:
            return None
        try:
            return cls.from_dict(recipe)
        except (TypeError, ValueError, AttributeError) as e:
            raise DatasetError(f"the dataset's train_recipe is not a valid BCConfig: {e}") from e


@struct.dataclass
class BCResult:
    """Trained (ensemble) policy. ``params`` plugs into ``policy_fn()``; ``metrics`` are per step.

    The result of a ``vmap``-ed sweep is batched: every array (params, metrics, and the
    config's hyperparameters) has the sweep's leading axes (:attr:`batch_shape`); index it
    (``results[i]``, ``results[i, j]`` or ``results.select(i)``) to get an ordinary result
    that evaluates and saves.
    """

    params: Any  # {"net": member-stacked params, "obs_mean", "obs_std", "act_mean", "act_std"}
    metrics: dict  # each [steps]
    eval_returns: jax.Array  # [num_evals] mean return at each periodic evaluation (empty if none)
    config: BCConfig  # hyperparameters are data (batched in a sweep), the structure is static
    env_id: str = struct.field(pytree_node=False)
    action_space: ActionSpace = struct.field(pytree_node=False)
    observation_shape: tuple[int, ...] = struct.field(pytree_node=False)
    env_options: tuple = struct.field(pytree_node=False, default=())

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading sweep axes (``()`` for one run)."""
        shape = jnp.shape(self.params["obs_mean"])
        return tuple(shape[: len(shape) - len(self.observation_shape)])

    def __getitem__(self, index: Any) -> BCResult:
        if not self.batch_shape:
            raise IndexError("this result is a single run, not a sweep: there is nothing to index")
        return jax.tree.map(lambda x: x[index], self)

    def select(self, index: Any) -> BCResult:
        """The same as ``result[index]``."""
        return self[index]

    def _single(self, what: str) -> None:
        if self.batch_shape:
            raise ValueError(
                f"cannot {what} a batched sweep result (batch shape {self.batch_shape}); "
                "index it first, e.g. result[i] or result.select(i)"
            )

    @property
    def policy(self) -> Policy:
        return net_policy(self.config, self.action_space, self.observation_shape)

    def policy_fn(self, deterministic: bool = True) -> PolicyFn:
        return make_policy_fn(self.config, self.action_space, self.observation_shape, deterministic)

    def make_env(self):
        return envs.make(self.env_id, **dict(self.env_options))

    def member(self, i: int) -> BCResult:
        """The ``i``-th member as a one-member result (e.g. to evaluate members alone)."""
        self._single("take a member of")
        params = dict(self.params, net=jax.tree.map(lambda x: x[i : i + 1], self.params["net"]))
        return self.replace(params=params, config=self.config.replace(members=1))

    def save(self, directory: str | Path) -> Path:
        """Write the policy as a ``"policy"`` artifact (:mod:`jaxbc.artifact`)."""
        self._single("save")
        env = {
            "env_id": self.env_id,
            "env_options": [list(kv) for kv in self.env_options],
            "observation_shape": list(self.observation_shape),
            "action_space": self.action_space.to_dict(),
        }
        return save_artifact(directory, "policy", self.params, env, self.config.to_dict())


def load_policy(directory: str | Path) -> BCResult:
    """Load a policy saved with :meth:`BCResult.save`."""
    spec = read_spec(directory, "policy")
    env = spec["env"]
    try:
        config = BCConfig.from_dict(spec["config"])
        space = space_from_dict(env["action_space"])
        obs_shape = tuple(int(d) for d in env["observation_shape"])
        env_id = str(env["env_id"])
        env_options = tuple(tuple(kv) for kv in env.get("env_options", []))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ArtifactError(
            f"{Path(directory) / SPEC_FILE} is not a valid policy description: {e}"
        ) from e
    template = _init_params(config, space, obs_shape, jax.random.key(0))
    params = read_state(directory, template)
    return BCResult(params, {}, jnp.zeros((0,)), config, env_id, space, obs_shape, env_options)


def net_policy(config: BCConfig, space: ActionSpace, obs_shape: tuple[int, ...]) -> Policy:
    return _net_policy(config.policy, config.normalize_actions, space, tuple(obs_shape))


def _net_policy(
    pol_cfg: PolicyConfig, normalize_actions: bool, space: ActionSpace, obs_shape: tuple[int, ...]
) -> Policy:
    if normalize_actions and isinstance(space, Box):
        # bounds in z-space are data dependent, so a normalised-action net is left unbounded
        pol_cfg = dataclasses.replace(pol_cfg, tanh_bounded=False)
    return make_policy(pol_cfg, space, obs_shape)


def _init_params(config: BCConfig, space: ActionSpace, obs_shape, key) -> dict:
    policy = net_policy(config, space, obs_shape)
    act_shape = space.shape if isinstance(space, Box) else ()
    return {
        "net": init_ensemble(policy, key, config.members),
        "obs_mean": jnp.zeros(obs_shape),
        "obs_std": jnp.ones(obs_shape),
        "act_mean": jnp.zeros(act_shape),
        "act_std": jnp.ones(act_shape),
    }


def make_policy_fn(
    config: BCConfig, space: ActionSpace, obs_shape: tuple[int, ...], deterministic: bool = True
) -> PolicyFn:
    """``(params, obs, key) -> action`` for one raw observation (normalisation inside): the
    :func:`jaxbc.bc.acting.policy_function` of the ensemble, with the params' ``obs_mean``/
    ``obs_std`` and (continuous actions) ``act_mean``/``act_std``."""
    policy = net_policy(config, space, obs_shape)
    return policy_function(
        Ensemble(policy),
        ActionHead(policy.kind, space, members=True),
        deterministic,
        ObsNormalizer("mean_std"),
        space if isinstance(space, Box) else None,
    )


LossFn = Callable[..., tuple[jax.Array, dict]]


def make_optimizer(config: BCConfig) -> optax.GradientTransformation:
    """:func:`member_optimizer` for each member independently (:func:`jaxbc.training.per_member`)."""
    return per_member(member_optimizer(config))


def member_optimizer(config: BCConfig) -> optax.GradientTransformation:
    """One policy's optimiser: gradient clipping then Adam(W) with the configured schedule;
    every hyperparameter may be traced (HaDES's inner loop uses it as it is)."""
    warmup = config.warmup_steps
    decay_steps = max(1, config.steps - warmup)
    decay = {
        "constant": lambda: optax.constant_schedule(config.lr),
        "cosine": lambda: optax.cosine_decay_schedule(config.lr, decay_steps),
        "linear": lambda: optax.linear_schedule(config.lr, 0.0, decay_steps),
    }[config.schedule]()
    lr = (
        optax.join_schedules([optax.linear_schedule(0.0, config.lr, warmup), decay], [warmup])
        if warmup
        else decay
    )
    return adam_optimizer(lr, config.max_grad_norm, config.weight_decay, config.adam_eps)


def make_bc_train(
    config: BCConfig,
    loss_fn: LossFn = bc_loss,
    progress: Callable[[int, dict[str, float]], Any] | None = None,
    progress_every: int = 100,
):
    """Build ``train(key, dataset) -> BCResult``; ``loss_fn(policy, params, batch, key)``.

    The hyperparameters are read from ``config`` when ``train`` runs, so ``config`` (and
    the loss's bound values) may hold traced values: build the trainer inside a ``vmap``
    to sweep them (see :mod:`jaxbc.sweep`).

    ``progress(step, metrics)``: live logs, e.g. a :class:`jaxbc.logs.Logger`'s ``log``;
    called on the host (``jax.debug.callback``) with the steps done and that step's metrics
    (``loss``, ``bc_loss``, the loss's others) every ``progress_every`` steps (with
    ``eval_every``: of each evaluation chunk) and at the end, and with
    ``{"eval_return": ...}`` after each periodic evaluation. Inside a ``vmap`` it is
    called once per run. ``None`` (default) adds nothing to the program."""
    config.validate()

    def train(
        key: jax.Array,
        dataset: Dataset,
        num_valid: jax.Array | int | None = None,
        init_net: Any = None,
    ) -> BCResult:
        """Train on ``dataset``; with ``num_valid`` only its first ``num_valid`` transitions
        are used (a traced value: one program serves every dataset size up to capacity).
        ``init_net`` warm-starts from member-stacked network params instead of a fresh init."""
        tx = make_optimizer(config)
        space, obs_shape = dataset.action_space, tuple(dataset.observation_shape)
        policy = net_policy(config, space, obs_shape)
        obs = jnp.asarray(dataset.obs, jnp.float32)
        actions = jnp.asarray(dataset.action)
        n = obs.shape[0]
        chex.assert_shape(obs, (n, *obs_shape))
        stats = normalization_stats(dataset, num_valid)
        count = n if num_valid is None else num_valid
        k_init, k_train, k_eval = jax.random.split(key, 3)
        params = _init_params(config, space, obs_shape, k_init)
        if init_net is not None:
            params["net"] = init_net
        if config.normalize_obs:
            params.update(obs_mean=stats.obs_mean, obs_std=stats.obs_std)
        if config.normalize_actions and isinstance(space, Box):
            params.update(act_mean=stats.action_mean, act_std=stats.action_std)
        x = zscore(obs, params["obs_mean"], params["obs_std"])
        y = (
            actions
            if isinstance(space, Discrete)
            else (actions - params["act_mean"]) / params["act_std"]
        )

        def sample(k):
            idx = jax.random.randint(k, (config.batch_size,), 0, count)
            return Batch(x[idx], y[idx], obs[idx], params["act_mean"], params["act_std"])

        if config.full_batch:
            if num_valid is not None:
                raise ValueError(
                    "full_batch trains on the whole dataset: call train without num_valid"
                )
            sample = Batch(x, y, obs, params["act_mean"], params["act_std"])  # type: ignore[assignment]

        def loss(net, batch, k):
            return loss_fn(policy, net, batch, k)

        net = params["net"]
        if config.eval_every:
            env = envs.make(dataset.env_id, **dict(dataset.env_options))
            ev = evaluate_fn(env, make_policy_fn(config, space, obs_shape), config.eval_episodes)

            def chunk(carry, x):
                k, c = x if progress is not None else (x, 0)
                k_steps, k_ev = jax.random.split(k)
                first = c * config.eval_every
                net, opt_state, metrics = fit(
                    loss,
                    tx,
                    carry[0],
                    sample,
                    k_steps,
                    config.eval_every,
                    carry[1],
                    progress,
                    progress_every,
                    first,
                )
                ret = ev(dict(params, net=net), k_ev).mean_return
                if progress is not None:
                    report = host_callback(progress)
                    jax.debug.callback(report, first + config.eval_every, {"eval_return": ret})
                return (net, opt_state), (metrics, ret)

            n_chunks = config.steps // config.eval_every
            carry = (net, tx.init(net))
            xs = jax.random.split(k_train, n_chunks)
            if progress is not None:  # chunk indices only for the logs: off adds nothing
                xs = (xs, jnp.arange(n_chunks))
            (net, _), (metrics, eval_returns) = jax.lax.scan(chunk, carry, xs)
            metrics = jax.tree.map(lambda m: m.reshape(-1), metrics)
        else:
            net, _, metrics = fit(
                loss, tx, net, sample, k_train, config.steps, None, progress, progress_every
            )
            eval_returns = jnp.zeros((0,))
        return BCResult(
            dict(params, net=net),
            metrics,
            eval_returns,
            config,
            dataset.env_id,
            space,
            obs_shape,
            tuple(dataset.env_options),
        )

    return train


def train_bc(
    config: BCConfig,
    key: jax.Array,
    dataset: Dataset,
    loss: LossFn = bc_loss,
    num_valid: jax.Array | int | None = None,
    progress: Callable[[int, dict[str, float]], Any] | None = None,
    progress_every: int = 100,
    **loss_params: Any,
) -> BCResult:
    """One BC run, compiled once per structure: the notebook entry point.

    Calls with the same loss function, config structure (:meth:`BCConfig.structure`) and
    dataset shapes reuse one compiled program; the config's hyperparameters and numeric
    ``loss_params`` (``tau``, ``lambda_dm``, a diffusion model) are data, so changing them
    does not recompile. String/bool loss options (``penalty="normalized"``) are static.
    ``train_bc(cfg, key, data, swarm_bc_loss, tau=0.25)`` equals
    ``jax.jit(make_bc_train(cfg, partial(swarm_bc_loss, tau=0.25)))(key, data)``.
    ``progress``/``progress_every``: live logs, as in :func:`make_bc_train` (another hook
    compiles another program).
    """
    static, data = split_static(loss_params)
    report = (progress, progress_every) if progress is not None else None
    return _train_bc_jit(loss, static, report, config, key, dataset, num_valid, data)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _train_bc_jit(loss, static, report, config, key, dataset, num_valid, data):
    return make_bc_train(config, functools.partial(loss, **dict(static), **data), *(report or ()))(
        key, dataset, num_valid
    )
