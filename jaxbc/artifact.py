"""The one on-disk format of trained models: BC policies, PPO experts, diffusion models.

An artifact is a directory with two files, written atomically:

* ``params.msgpack``: the model's arrays, a flax-msgpack pytree (each kind defines its tree);
* ``artifact.json``: ``format`` (``"jaxbc-artifact"``), ``format_version``, ``kind``
  (``"policy"``, ``"expert"`` or ``"diffusion"``), ``env`` (what the model was made for:
  ``env_id``, observation shape, action space, ...), ``config`` (the config that rebuilds the
  model's structure) and ``meta`` (measurements and provenance: returns, command, machine).

Loading reads the description first, builds the parameter template from its config and then
restores the arrays into it, so a file that does not match its description is an error, not
a silently reshaped model. (Resumable training state is a different thing: orbax
checkpoints, :mod:`jaxbc.checkpoint`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
from flax import serialization

from jaxbc.io import atomic_write_bytes, atomic_write_json, parse_header

FORMAT = "jaxbc-artifact"
FORMAT_VERSION = 1
KINDS = {"policy": "policy", "expert": "expert", "diffusion": "diffusion model"}  # kind: name
SPEC_FILE = "artifact.json"
PARAMS_FILE = "params.msgpack"
FILES = (SPEC_FILE, PARAMS_FILE)


class ArtifactError(ValueError):
    """An artifact directory that cannot be loaded: damaged, of another kind, or not
    matching its own description."""


def save_artifact(
    directory: str | Path,
    kind: str,
    state: Any,
    env: dict,
    config: dict,
    meta: dict | None = None,
) -> Path:
    """Write ``state`` (a pytree of arrays) and its description to ``directory``."""
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; choose from {tuple(KINDS)}")
    directory = Path(directory)
    atomic_write_bytes(directory / PARAMS_FILE, serialization.to_bytes(state))
    atomic_write_json(
        directory / SPEC_FILE,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "env": env,
            "config": config,
            "meta": dict(meta or {}),
        },
    )
    return directory


def is_artifact(directory: str | Path, kind: str) -> bool:
    """True if ``directory`` holds an artifact description of ``kind`` (not checked further)."""
    path = Path(directory) / SPEC_FILE
    try:
        return path.is_file() and json.loads(path.read_text()).get("kind") == kind
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def read_spec(directory: str | Path, kind: str) -> dict:
    """The description of the ``kind`` artifact in ``directory``: ``FileNotFoundError`` if
    there is none, :class:`ArtifactError` if it is damaged or of another kind or format."""
    directory = Path(directory)
    path = directory / SPEC_FILE
    if not path.is_file() or not (directory / PARAMS_FILE).is_file():
        raise FileNotFoundError(
            f"no saved {KINDS[kind]} at {str(directory)!r} ({SPEC_FILE} or {PARAMS_FILE} missing)"
        )
    spec = parse_header(
        path.read_text(),
        str(path),
        FORMAT,
        FORMAT_VERSION,
        ArtifactError,
        f"{KINDS[kind]} description",
    )
    if spec.get("kind") != kind:
        raise ArtifactError(f"{path} holds a {spec.get('kind')!r}, not a {kind!r}")
    for section in ("env", "config", "meta"):
        if not isinstance(spec.get(section), dict):
            raise ArtifactError(f"{path}: {section!r} must be a JSON object")
    return spec


def read_state(directory: str | Path, template: Any) -> Any:
    """The arrays of the artifact in ``directory``, restored into ``template``'s structure
    (arrays or ``jax.ShapeDtypeStruct`` leaves); any mismatch raises :class:`ArtifactError`."""
    path = Path(directory) / PARAMS_FILE
    try:
        state = serialization.from_bytes(template, path.read_bytes())
        same = jax.tree.structure(state) == jax.tree.structure(template) and all(
            tuple(a.shape) == tuple(b.shape)
            for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(template), strict=True)
        )
    except Exception as e:  # msgpack raises a variety of errors on corrupt files
        raise ArtifactError(f"{path} is corrupt or does not match {SPEC_FILE}: {e}") from e
    if not same:
        raise ArtifactError(f"{path} does not match {SPEC_FILE} (array shapes differ)")
    return state
