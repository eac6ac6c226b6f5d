"""Evolution strategies for HaDES: any evosax 0.3 algorithm by name, or your own.

HaDES talks to a strategy only through evosax's ask/tell protocol, so any object with

* ``default_params``: whatever the strategy wants passed back to it (may be ``None``);
* ``init(key, mean, params) -> state``: ``mean`` is the initial synthetic dataset (a pytree);
* ``ask(key, state, params) -> (population, state)``: a pytree whose leaves have a leading
  population axis;
* ``tell(key, population, fitness, state, params) -> (state, metrics)``: ``fitness`` is
  MINIMISED (HaDES passes ``-returns``);
* optionally ``get_mean(state) -> solution`` (used for the "mean" distilled dataset)

plugs in: :class:`HillClimber` below is a complete example in a dozen lines.

:func:`make_strategy` builds evosax's algorithms with HaDES-friendly conveniences (``sigma``,
``lr``, ``fitness_shaping``) and wraps population-based ones (genetic algorithms, PSO,
differential evolution), whose ``init`` wants an evaluated population, into the same
``init(key, mean, params)`` protocol.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

FITNESS_SHAPINGS = ("default", "raw", "centered_ranks", "z_score", "ordinal_weights")


def _centered_ranks(population, fitness, state, params):
    """Ranks mapped to [-0.5, 0.5] (ties share their mean rank); NaN ranks last."""
    ranks = jax.scipy.stats.rankdata(jnp.where(jnp.isnan(fitness), jnp.inf, fitness)) - 1.0
    return ranks / max(fitness.shape[-1] - 1, 1) - 0.5


def _ordinal_weights(population, fitness, state, params):
    """``params.weights`` indexed by ORDINAL rank: tied members take consecutive ranks in
    population order (a stable argsort, as evosax 0.1 and the official HaDES code). evosax
    0.3's own weights give tied members their mean rank, which starves a population whose
    members tie (a Breakout population early on: most members score the same)."""
    order = jnp.argsort(jnp.where(jnp.isnan(fitness), jnp.inf, fitness), stable=True)
    ranks = jnp.argsort(order, stable=True)
    return params.weights[ranks]


def _z_score(population, fitness, state, params):
    return (fitness - fitness.mean()) / (fitness.std() + 1e-8)


def _raw(population, fitness, state, params):
    return fitness


SHAPING_FNS: dict[str, Callable] = {
    "raw": _raw,
    "centered_ranks": _centered_ranks,
    "ordinal_weights": _ordinal_weights,
    "z_score": _z_score,
}


def fitness_shaping_fn(name: str) -> Callable:
    """An evosax-style ``fn(population, fitness, state, params) -> fitness`` by name."""
    try:
        return SHAPING_FNS[name]
    except KeyError:
        raise ValueError(
            f"unknown fitness shaping {name!r}; choose from {FITNESS_SHAPINGS}"
        ) from None


def softmax_rank_weights(population_size: int, temperature: float = 20.0) -> jax.Array:
    """HaDES's MinAtar SNES weights: ``softmax(-temperature * (rank / (P - 1) - 0.5))``.

    Index = rank (0 = best, i.e. lowest minimised fitness); pass as ``weights=`` to SNES/xNES.
    """
    ranks = jnp.arange(population_size, dtype=jnp.float32)
    return jax.nn.softmax(-temperature * (ranks / max(population_size - 1, 1) - 0.5))


def algorithm_names() -> list[str]:
    from evosax.algorithms import algorithms

    return sorted(algorithms)


@dataclass(frozen=True, eq=False)
class Strategy:
    """An evosax algorithm with chosen params, speaking the ``init(key, mean, params)`` protocol.

    ``population_init_std``: population-based algorithms start from ``mean`` plus Gaussian
    noise of this std, with fitness +inf (not yet evaluated), so the first ``tell`` replaces
    it.
    """

    name: str
    es: Any
    params: Any
    population_based: bool = False
    population_init_std: float = 0.1
    # what makes its programs (algorithm, population, solution shapes, constructor options;
    # not ``params``, which are data): HaDES keys compiled programs by it. None: identity
    cache_key: Any = None

    @property
    def population_size(self) -> int:
        return int(self.es.population_size)

    @property
    def default_params(self) -> Any:
        return self.params

    def init(self, key: jax.Array, mean: Any, params: Any) -> Any:
        if not self.population_based:
            return self.es.init(key, mean, params)
        k_noise, k_init = jax.random.split(key)
        flat, unravel = ravel_pytree(mean)
        z = jax.random.normal(k_noise, (self.population_size, flat.size))
        population = jax.vmap(unravel)(flat + self.population_init_std * z)
        return self.es.init(k_init, population, jnp.full((self.population_size,), jnp.inf), params)

    def ask(self, key: jax.Array, state: Any, params: Any) -> tuple[Any, Any]:
        return self.es.ask(key, state, params)

    def tell(
        self, key: jax.Array, population: Any, fitness: jax.Array, state: Any, params: Any
    ) -> tuple[Any, Any]:
        return self.es.tell(key, population, fitness, state, params)

    def get_mean(self, state: Any) -> Any:
        """The search distribution's mean (population-based: the best member so far)."""
        if self.population_based:
            return self.es.get_best_solution(state)
        return self.es.get_mean(state)


def make_strategy(
    name: str, population_size: int, solution_template: Any, **params: Any
) -> Strategy:
    """Build ``evosax.algorithms.algorithms[name]`` for a solution shaped like ``solution_template``.

    ``params`` may name constructor arguments of the algorithm (``optimizer=``,
    ``std_schedule=``, ...) or fields of its ``default_params`` (``std_init=``, ``weights=``,
    ...), plus three conveniences:

    * ``sigma``: the search std (``std_schedule`` constant if the algorithm has one, else
      ``std_init``);
    * ``lr``: ``optimizer=optax.adam(lr)`` for algorithms with an optimizer;
    * ``fitness_shaping``: ``"default"`` (the algorithm's own), ``"raw"``,
      ``"centered_ranks"`` or ``"z_score"``, applied by evosax to the minimised fitness
      before its update (centered ranks: -0.5 for the highest return, +0.5 for the lowest);
    * ``population_init_std``: population-based algorithms only, the spread of the initial
      population around the template (default ``sigma`` or 0.1).
    """
    from evosax.algorithms import algorithms
    from evosax.algorithms.population_based.base import PopulationBasedAlgorithm

    if name not in algorithms:
        raise ValueError(
            f"unknown evosax algorithm {name!r}; choose from {', '.join(sorted(algorithms))}"
        )
    from jaxbc.validation import check_float, check_int

    check_int("population_size", population_size, 2)  # an ES ranks members: one cannot be ranked
    if params.get("sigma") is not None:
        check_float("sigma", params["sigma"], 0.0, lo_open=True)
    if params.get("lr") is not None:
        check_float("lr", params["lr"], 0.0, lo_open=True)
    cls = algorithms[name]
    ctor_names = set(inspect.signature(cls.__init__).parameters) - {
        "self",
        "population_size",
        "solution",
    }
    params = dict(params)
    given = dict(params)
    sigma = params.pop("sigma", None)
    lr = params.pop("lr", None)
    shaping = params.pop("fitness_shaping", "default")
    init_std = params.pop("population_init_std", 0.1 if sigma is None else sigma)
    ctor = {k: params.pop(k) for k in list(params) if k in ctor_names}
    if sigma is not None and "std_schedule" in ctor_names and "std_schedule" not in ctor:
        ctor["std_schedule"] = optax.constant_schedule(float(sigma))
        sigma = None
    if lr is not None:
        if "optimizer" not in ctor_names:
            raise ValueError(f"{name} has no optimizer, so lr= does not apply")
        ctor["optimizer"] = optax.adam(lr)
    if shaping != "default":
        ctor["fitness_shaping_fn"] = fitness_shaping_fn(shaping)
    try:
        es = cls(population_size=population_size, solution=solution_template, **ctor)
    except (TypeError, AssertionError) as e:
        raise ValueError(
            f"cannot build {name} with population {population_size} and {sorted(ctor)}: {e!r}"
        ) from e
    es_params = es.default_params
    fields = (
        {f.name for f in dataclasses.fields(es_params)}
        if dataclasses.is_dataclass(es_params)
        else set()
    )
    if sigma is not None:
        if "std_init" not in fields:
            raise ValueError(
                f"{name} has neither std_schedule nor std_init, so sigma= does not apply"
            )
        params["std_init"] = sigma
        given["std_init"] = given.pop("sigma")  # data, like the other params
    unknown = set(params) - fields
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {sorted(unknown)}; constructor options: {sorted(ctor_names)}; "
            f"params: {sorted(fields)}; conveniences: sigma, lr, fitness_shaping"
        )
    if params:
        es_params = es_params.replace(**{k: jnp.asarray(v) for k, v in params.items()})
    # options that went into es_params are data; the rest shaped the algorithm object
    structural = {k: v for k, v in given.items() if k not in params and k != "population_init_std"}
    population_based = issubclass(cls, PopulationBasedAlgorithm)
    solution = [(x.shape, str(x.dtype)) for x in jax.tree.leaves(solution_template)]
    cache_key = (
        name,
        population_size,
        str(jax.tree.structure(solution_template)),
        tuple(solution),
        _freeze(structural),
        float(init_std) if population_based else None,  # only population-based ones use it
    )
    return Strategy(name, es, es_params, population_based, float(init_std), cache_key)


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an option: numbers, strings and arrays by value, containers
    element-wise, anything else (an optax transformation, a function) by identity."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        a = np.asarray(value)
        return ("array", a.shape, str(a.dtype), a.tobytes())
    return _Identity(value)


def paper_strategy_options(name: str, population_size: int) -> dict[str, Any]:
    """HaDES paper settings where the paper has them: Open_ES (Brax) sigma 0.03, Adam lr 0.05
    (b1 0.99), raw fitness; SNES (MinAtar) sigma_init 0.5 with softmax rank weights
    (temperature 20). Other algorithms: ``{}`` (evosax defaults)."""
    if name == "Open_ES":
        return {"sigma": 0.03, "optimizer": optax.adam(0.05, b1=0.99), "fitness_shaping": "raw"}
    if name == "SNES":
        return {
            "sigma": 0.5,
            "weights": softmax_rank_weights(population_size, 20.0),
            "fitness_shaping": "ordinal_weights",
        }
    return {}


class HillClimber:
    """A custom strategy in a dozen lines, the worked example of the protocol above:
    a (1, lambda) hill climber that perturbs the incumbent and moves to the best child."""

    def __init__(self, population_size: int, sigma: float = 0.5):
        self.population_size, self.sigma, self.default_params = population_size, sigma, None

    def init(self, key, mean, params):
        return mean

    def ask(self, key, state, params):
        flat, unravel = ravel_pytree(state)
        z = jax.random.normal(key, (self.population_size, flat.size))
        return jax.vmap(unravel)(flat + self.sigma * z), state

    def tell(self, key, population, fitness, state, params):  # fitness is minimised
        return jax.tree.map(lambda p: p[jnp.argmin(fitness)], population), {}

    def get_mean(self, state):
        return state


def strategy_key(strategy: Any) -> Any:
    """What identifies a strategy's program: its ``cache_key`` (:func:`make_strategy` sets one
    from the algorithm, population, solution shapes and constructor options), else the object
    itself (compared by identity: a rebuilt custom strategy compiles anew)."""
    return getattr(strategy, "cache_key", None) or _Identity(strategy)


class _Identity:
    """Hash and compare an object by identity, holding it (so its id is not reused)."""

    def __init__(self, obj: Any):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj
