"""See why a call recompiled: count the programs JAX traces and lowers inside a block.

    from jaxbc.debug import count_compiles
    with count_compiles(explain=True) as c:      # explain: JAX logs why each cache missed
        evaluate_bc(result, key, episodes=4, dataset=data)
    print(c.count)                               # 0 once the program is compiled

Counted from JAX's own monitoring events (one ``jaxpr -> MLIR`` lowering per program
compiled; a hit in the persistent compilation cache still lowers and counts), not timing.
What recompiles: anything static (shapes, dtypes, env ids and options, policy and config
structure, step counts); what does not: hyperparameters passed as data (``BCConfig.lr``,
``weight_decay``, ``max_grad_norm``, ``adam_eps``; a loss's ``tau``/``lambda_dm`` bound as
arrays), keys, params and datasets of the same shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import jax
from jax import monitoring

LOWERING_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"


@dataclass
class CompileCount:
    count: int = 0
    seconds: float = 0.0
    events: list[float] = field(default_factory=list)


@contextmanager
def count_compiles(explain: bool = False) -> Iterator[CompileCount]:
    """Count the programs compiled inside the block; ``explain`` logs each cache miss's cause."""
    result = CompileCount()

    def listener(name: str, secs: float, **_kw) -> None:
        if name == LOWERING_EVENT:
            result.count += 1
            result.seconds += secs
            result.events.append(secs)

    monitoring.register_event_duration_secs_listener(listener)
    previous = jax.config.jax_explain_cache_misses
    if explain:
        jax.config.update("jax_explain_cache_misses", True)
    try:
        yield result
    finally:
        monitoring.unregister_event_duration_listener(listener)
        if explain:
            jax.config.update("jax_explain_cache_misses", previous)
