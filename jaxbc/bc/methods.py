"""The BC methods by name (bc, ensemble, swarm, dbc): members, Swarm weight tau, DBC weight
lambda_dm and the loss each trains with. One definition for the command line (``jaxbc bc``,
``jaxbc dagger``), the benchmarks and notebooks.

    method_config("swarm")             # Method("swarm", members=8, tau=0.25)
    make_bc_train(cfg.replace(members=m.members), m.loss())
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from jaxbc.bc.dbc import dbc_loss
from jaxbc.bc.losses import swarm_bc_loss
from jaxbc.diffusion import DiffusionModel
from jaxbc.validation import ConfigError, check_choice, check_float, check_int

METHODS = ("bc", "ensemble", "swarm", "dbc")
ENSEMBLE_METHODS = ("ensemble", "swarm")  # the methods that train several members
DEFAULT_MEMBERS = 8  # ensemble size of ensemble and swarm when none is given
DEFAULT_TAU = 0.25  # Swarm BC's hidden-feature alignment weight when none is given
DEFAULT_LAMBDA_DM = 0.2  # DBC's diffusion-model loss weight (the paper's) when none is given


@dataclass(frozen=True)
class Method:
    """A named method's settings: ``members`` policies trained together, the Swarm BC weight
    ``tau`` (0: independent members) and, for dbc, the diffusion-model weight ``lambda_dm``."""

    name: str
    members: int = 1
    tau: float = 0.0
    lambda_dm: float = 0.0

    def loss(self, diffusion: DiffusionModel | None = None):
        """The loss ``(policy, params, batch, key) -> (loss, metrics)`` for ``make_bc_train``;
        dbc needs the pretrained ``diffusion`` model (pass it as a traced argument of the
        jitted function that calls this, so it is data, not a compiled-in constant)."""
        if self.name == "dbc":
            if diffusion is None:
                raise ValueError("method dbc needs a diffusion model (jaxbc.diffusion)")
            return partial(dbc_loss, diffusion=diffusion, lambda_dm=self.lambda_dm)
        return partial(swarm_bc_loss, tau=self.tau)


def method_config(
    name: str,
    members: int | None = None,
    tau: float | None = None,
    lambda_dm: float | None = None,
    methods: tuple[str, ...] = METHODS,
) -> Method:
    """The :class:`Method` called ``name`` (one of ``methods``): bc and dbc train one policy,
    ensemble ``members`` independent ones (default :data:`DEFAULT_MEMBERS` = 8, >= 2), swarm
    as many with the penalty weight ``tau`` (default 0.25); dbc weighs its diffusion-model
    loss by ``lambda_dm`` (default 0.2). A setting the method does not use is refused
    (``ConfigError`` naming it), so no argument is silently ignored."""
    check_choice("method", name, methods)
    ensemble = name in ENSEMBLE_METHODS
    if members is not None and not ensemble:
        raise ConfigError(
            f"members applies to method ensemble or swarm; method {name} trains one policy",
            "members",
        )
    if tau is not None and name != "swarm":
        raise ConfigError(f"tau applies to method swarm only, not {name}", "tau")
    if lambda_dm is not None and name != "dbc":
        raise ConfigError(f"lambda_dm applies to method dbc only, not {name}", "lambda_dm")
    n = (DEFAULT_MEMBERS if members is None else members) if ensemble else 1
    check_int("members", n, 2 if ensemble else 1)
    t = (DEFAULT_TAU if tau is None else tau) if name == "swarm" else 0.0
    check_float("tau", t, 0.0)
    lam = (DEFAULT_LAMBDA_DM if lambda_dm is None else lambda_dm) if name == "dbc" else 0.0
    check_float("lambda_dm", lam, 0.0)
    return Method(name, n, t, lam)
