"""Rollout videos: frames of one episode of a policy, written as ``.mp4`` or ``.gif``.

``rollout_frames`` runs a policy on one env (one compiled ``lax.scan``) and draws one RGB
frame per visited state, ``num_steps + 1`` in all (the start state and the state after
each step; after an episode ends the next frames show the auto-reset episode).
``render_rollout`` writes them with ``imageio`` (optional extra ``video``:
``pip install "jaxbc[video]"``, which brings ``imageio-ffmpeg`` and its ffmpeg binary).

How each family is drawn:

* classic control, the toy task and the point maze: a simple picture of the observation
  (PIL), e.g. the cart and pole of CartPole, both links of Acrobot, the car on the hill of
  MountainCar, the maze's walls, goal and mass;
* MinAtar: the ``(10, 10, C)`` observation grid, one colour per channel (MinAtar's own
  cubehelix palette), 16 pixels per cell;
* Brax: MuJoCo's renderer through ``brax.io.image`` with the model's tracking camera when an
  OpenGL context can be made (headless Linux: EGL; ``MUJOCO_GL`` defaults to ``egl`` when
  this module is imported before MuJoCo on a machine without ``$DISPLAY``); otherwise,
  or with ``renderer="simple"``, a side view (x-z plane) of the bodies' positions joined to
  their parents, drawn with PIL and centred on the torso.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from jaxbc.envs import Env, env_state, one_env  # noqa: E402

Renderer = Literal["auto", "mujoco", "simple"]


class Recording(NamedTuple):
    """One env's rollout, host arrays: ``obs`` [T+1, ...], ``reward``/``done`` [T], and for
    Brax the pipeline states [T+1] (``None`` otherwise)."""

    obs: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    pipeline_states: Any = None


def record_rollout(
    env: Env, policy_fn: Any, params: Any, key: jax.Array, num_steps: int
) -> Recording:
    """Run ``policy_fn`` for ``num_steps`` steps on one env and keep what drawing needs."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    brax = env.family == "brax"

    def view(state: Any) -> Any:
        return env_state(state).inner.pipeline_state if brax else jnp.zeros(())

    # one env as a batch of one on the env axis (wrappers may reduce over it)
    reset = one_env(env.reset)
    env_step = one_env(env.step)

    def run(params: Any, key: jax.Array) -> tuple[Any, Any, Any, Any]:
        k_reset, k_run = jax.random.split(key)
        obs, state = reset(k_reset)

        def step(carry: tuple[Any, Any], k: jax.Array) -> tuple[tuple[Any, Any], tuple[Any, ...]]:
            obs, state = carry
            k_act, k_env = jax.random.split(k)
            action = policy_fn(params, obs, k_act)
            obs, state, reward, term, trunc, _ = env_step(k_env, state, action)
            return (obs, state), (obs, view(state), reward, term | trunc)

        _, (obs_seq, views, reward, done) = jax.lax.scan(
            step, (obs, state), jax.random.split(k_run, num_steps)
        )
        cat = lambda first, rest: jnp.concatenate([first[None], rest])  # noqa: E731
        return cat(obs, obs_seq), jax.tree.map(cat, view(state), views), reward, done

    obs, views, reward, done = jax.device_get(jax.jit(run)(params, key))
    return Recording(np.asarray(obs), np.asarray(reward), np.asarray(done), views if brax else None)


# --- drawing -----------------------------------------------------------------------------


def _canvas(
    width: int, height: int, color: tuple[int, int, int] = (255, 255, 255)
) -> tuple[Any, Any]:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), color)
    return img, ImageDraw.Draw(img)


def _classic_frame(
    env_id: str, obs: np.ndarray, width: int, height: int, options: dict
) -> np.ndarray:
    img, d = _canvas(width, height)
    w, h = width, height
    if env_id == "CartPole-v1":
        scale = w / 4.8  # the track is [-2.4, 2.4]
        ground = int(h * 0.7)
        d.line([(0, ground), (w, ground)], fill=(0, 0, 0))
        cx = w / 2 + float(obs[0]) * scale
        cw, ch = 0.5 * scale, 0.3 * scale
        d.rectangle([cx - cw / 2, ground - ch / 2, cx + cw / 2, ground + ch / 2], fill=(40, 40, 40))
        theta, length = float(obs[2]), 1.0 * scale
        tip = (cx + length * np.sin(theta), ground - length * np.cos(theta))
        d.line([(cx, ground), tip], fill=(202, 152, 101), width=max(2, int(0.1 * scale)))
        d.ellipse([cx - 3, ground - 3, cx + 3, ground + 3], fill=(129, 132, 203))
    elif env_id == "Acrobot-v1":
        s = min(w, h) / 4.4  # links of length 1, drawn in [-2.2, 2.2]
        ox, oy = w / 2, h / 2
        t1 = np.arctan2(obs[1], obs[0])
        t2 = np.arctan2(obs[3], obs[2])
        p1 = (ox + s * np.sin(t1), oy + s * np.cos(t1))
        p2 = (p1[0] + s * np.sin(t1 + t2), p1[1] + s * np.cos(t1 + t2))
        d.line([(0, oy - s), (w, oy - s)], fill=(0, 0, 0))  # the goal height
        d.line([(ox, oy), p1], fill=(0, 204, 204), width=6)
        d.line([p1, p2], fill=(0, 204, 204), width=6)
        for p in ((ox, oy), p1):
            d.ellipse([p[0] - 4, p[1] - 4, p[0] + 4, p[1] + 4], fill=(204, 204, 0))
    elif env_id in ("MountainCar-v0", "MountainCarContinuous-v0"):
        lo, hi = -1.2, 0.6
        xs = np.linspace(lo, hi, 100)

        def to_px(x: float, y: float) -> tuple[float, float]:
            return (x - lo) / (hi - lo) * w, h - (y * 0.8 + 0.05) * h

        height_of = lambda x: 0.45 * np.sin(3 * x) + 0.55  # noqa: E731
        d.line([to_px(x, height_of(x)) for x in xs], fill=(0, 0, 0), width=2)
        goal = 0.5 if env_id == "MountainCar-v0" else 0.45
        gx, gy = to_px(goal, height_of(goal))
        d.line([(gx, gy), (gx, gy - 30)], fill=(0, 0, 0), width=2)
        d.polygon([(gx, gy - 30), (gx + 18, gy - 25), (gx, gy - 20)], fill=(204, 204, 0))
        cx, cy = to_px(float(obs[0]), height_of(float(obs[0])))
        d.ellipse([cx - 9, cy - 18, cx + 9, cy], fill=(40, 40, 40))
    elif env_id == "Pendulum-v1":
        s = min(w, h) / 2.6
        ox, oy = w / 2, h / 2
        theta = np.arctan2(obs[1], obs[0])  # 0 = upright, counter-clockwise positive
        tip = (ox - s * np.sin(theta), oy - s * np.cos(theta))
        d.line([(ox, oy), tip], fill=(204, 77, 77), width=max(4, int(s * 0.2)))
        d.ellipse([ox - 5, oy - 5, ox + 5, oy + 5], fill=(0, 0, 0))
    elif env_id.startswith("PointMaze"):  # walls, goal region, the mass
        from jaxbc.envs.maze import GOAL_CENTRE, MazeParams, walls

        wall = walls()
        s = min(w / wall.shape[1], h / wall.shape[0])
        for r, c in zip(*np.nonzero(wall), strict=True):
            d.rectangle([c * s, r * s, (c + 1) * s, (r + 1) * s], fill=(60, 60, 60))
        gx, gy = GOAL_CENTRE * s
        gr = MazeParams(**options).goal_radius * s
        d.ellipse([gx - gr, gy - gr, gx + gr, gy + gr], fill=(80, 200, 80))
        ax, ay, ar = float(obs[0]) * s, float(obs[1]) * s, 0.15 * s
        d.ellipse([ax - ar, ay - ar, ax + ar, ay + ar], fill=(200, 50, 50))
    else:  # the toy task: arena, obstacle, goals, agent
        from jaxbc.envs.multimodal import TwoGoalsParams

        tg = TwoGoalsParams(**{k: v for k, v in options.items() if hasattr(TwoGoalsParams, k)})
        s = min(w, h) / (2 * tg.arena)

        def px(x: float, y: float) -> tuple[float, float]:
            return w / 2 + x * s, h / 2 - y * s

        def disc(x: float, y: float, r: float, **kw: Any) -> None:
            (a, b), rr = px(x, y), r * s
            d.ellipse([a - rr, b - rr, a + rr, b + rr], **kw)

        disc(0.0, 0.0, tg.obstacle_radius, fill=(60, 60, 60))
        for gy in (tg.goal_y, -tg.goal_y):
            disc(tg.goal_x, gy, tg.goal_radius, fill=(80, 200, 80))
        disc(float(obs[0]), float(obs[1]), 0.04, fill=(200, 50, 50))
    return np.asarray(img)


_MINATAR_PALETTES: dict[int, np.ndarray] = {}


def _minatar_frame(obs: np.ndarray, cell: int = 16) -> np.ndarray:
    """MinAtar's picture: each cell takes the colour of its last set channel (black if none)."""
    n = obs.shape[-1]
    if n not in _MINATAR_PALETTES:
        from matplotlib import colormaps

        cmap = colormaps["cubehelix"]
        colors = [(0.0, 0.0, 0.0)] + [cmap(0.15 + 0.75 * i / max(n - 1, 1))[:3] for i in range(n)]
        _MINATAR_PALETTES[n] = (np.asarray(colors) * 255).astype(np.uint8)
    grid = obs > 0.5
    idx = np.where(grid.any(-1), n - np.argmax(grid[..., ::-1], -1), 0)
    img = _MINATAR_PALETTES[n][idx]
    return np.kron(img, np.ones((cell, cell, 1), np.uint8))


def _brax_system(env: Env) -> Any:
    import contextlib
    import warnings

    from brax import envs as brax_envs

    opts = {k: v for k, v in env.options if k != "episode_length"}
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        return brax_envs.get_environment(env.id.split("/", 1)[1], **opts).sys


def _brax_simple_frame(pos: np.ndarray, parents: tuple, width: int, height: int) -> np.ndarray:
    """Side view: bodies' (x, z) positions, joined to their parents, centred on body 0."""
    img, d = _canvas(width, height, (235, 240, 245))
    s = height / 3.0  # pixels per metre
    ground = height - 30
    cx = float(pos[0, 0])

    def px(p: np.ndarray) -> tuple[float, float]:
        return width / 2 + (p[0] - cx) * s, ground - p[2] * s

    d.rectangle([0, ground, width, height], fill=(180, 170, 150))
    for gx in np.arange(np.floor(cx - width / s), cx + width / s, 1.0):  # metre marks show progress
        x = width / 2 + (gx - cx) * s
        d.line([(x, ground), (x, height)], fill=(120, 110, 100))
    for i, parent in enumerate(parents):
        if parent >= 0:
            d.line([px(pos[parent]), px(pos[i])], fill=(40, 60, 160), width=5)
    for p in pos:
        x, y = px(p)
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(200, 80, 40))
    return np.asarray(img)


_GL_OK: dict[str, bool] = {}


def _brax_frames(env: Env, states: Any, width: int, height: int, renderer: Renderer) -> np.ndarray:
    sys_ = _brax_system(env)
    n = int(jax.tree.leaves(states)[0].shape[0])
    frames_of = [jax.tree.map(lambda x, i=i: np.asarray(x[i]), states) for i in range(n)]
    if renderer != "simple" and _GL_OK.get("mujoco", True):
        try:
            from brax.io import image

            names = [sys_.mj_model.camera(i).name for i in range(sys_.mj_model.ncam)]
            camera = "track" if "track" in names else None
            return np.stack(
                image.render_array(sys_, frames_of, height=height, width=width, camera=camera)
            )
        except Exception as e:  # no OpenGL context here
            _GL_OK["mujoco"] = False
            if renderer == "mujoco":
                raise RuntimeError(
                    f"MuJoCo rendering needs an OpenGL context (MUJOCO_GL=egl on headless Linux): {e}"
                ) from e
            print(
                f"jaxbc.video: MuJoCo rendering unavailable ({type(e).__name__}: {e}); drawing a simple side view",
                file=sys.stderr,
            )
    parents = tuple(int(p) for p in sys_.link_parents)
    return np.stack(
        [_brax_simple_frame(np.asarray(f.x.pos), parents, width, height) for f in frames_of]
    )


def returns_so_far(rec: Recording) -> np.ndarray:
    """``[T+1]``: the return of the current episode at each frame (0 right after a reset)."""
    out = np.zeros(rec.reward.shape[0] + 1, np.float64)
    for t in range(rec.reward.shape[0]):
        out[t + 1] = 0.0 if rec.done[t] else out[t] + float(rec.reward[t])
    return out


def _annotate(frames: np.ndarray, steps: np.ndarray, returns: np.ndarray) -> np.ndarray:
    """Step number and the current episode's return in the top-left corner."""
    from PIL import Image, ImageDraw

    out = np.empty_like(frames)
    for i in range(frames.shape[0]):
        img = Image.fromarray(frames[i])
        ImageDraw.Draw(img).text(
            (4, 2), f"t={int(steps[i])}  return={returns[i]:.1f}", fill=(255, 0, 255)
        )
        out[i] = np.asarray(img)
    return out


def frames_from_recording(
    env: Env,
    rec: Recording,
    width: int = 320,
    height: int = 240,
    renderer: Renderer = "auto",
    annotate: bool = True,
    indices: Any = None,
) -> np.ndarray:
    """uint8 RGB frames ``[T+1, H, W, 3]`` of a :class:`Recording` (MinAtar: 16 px per cell);
    with ``indices``, only those frames (e.g. a strip of a long rollout)."""
    steps = np.arange(rec.obs.shape[0]) if indices is None else np.asarray(indices, int)
    if env.family == "brax":
        states = jax.tree.map(lambda x: np.asarray(x)[steps], rec.pipeline_states)
        frames = _brax_frames(env, states, width, height, renderer)
    elif env.family == "minatar":
        frames = np.stack([_minatar_frame(rec.obs[t]) for t in steps])
    else:
        opts = dict(env.options)
        frames = np.stack([_classic_frame(env.id, rec.obs[t], width, height, opts) for t in steps])
    return _annotate(frames, steps, returns_so_far(rec)[steps]) if annotate else frames


def rollout_frames(
    env: Env,
    policy_fn: Any,
    params: Any,
    key: jax.Array,
    num_steps: int,
    width: int = 320,
    height: int = 240,
    renderer: Renderer = "auto",
    annotate: bool = True,
) -> np.ndarray:
    """Frames ``[num_steps + 1, H, W, 3]`` (uint8) of ``policy_fn`` acting on ``env``.

    Args:
        env: any env of :func:`jaxbc.envs.make`.
        policy_fn: ``(params, obs, key) -> action`` for one observation.
        params: the policy's parameters.
        key: PRNG key of the reset and the steps.
        num_steps: env steps; there is one frame more (the start state).
        width: frame width in pixels for drawn envs (MinAtar frames are 160 x 160).
        height: frame height in pixels.
        renderer: Brax only: ``"mujoco"`` (needs OpenGL), ``"simple"`` (side view), or
            ``"auto"`` (MuJoCo if it works here, else simple).
        annotate: write the step and the episode's return so far on each frame.
    """
    rec = record_rollout(env, policy_fn, params, key, num_steps)
    return frames_from_recording(env, rec, width, height, renderer, annotate)


def require_video(path: str | Path) -> None:
    """Raise ValueError for a suffix other than .mp4/.gif, ImportError (naming the extra) if
    the packages that write it are missing."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"video path must end in .mp4 or .gif, got {str(path)!r}")
    try:
        import imageio  # noqa: F401

        if suffix == ".mp4":
            import imageio_ffmpeg  # noqa: F401
    except ImportError as e:
        raise ImportError(
            f'writing {suffix} videos needs the optional extra "video": pip install "jaxbc[video]" ({e})'
        ) from e


def write_video(frames: np.ndarray, path: str | Path, fps: int = 30) -> Path:
    """Write uint8 frames ``[T, H, W, 3]`` to ``.mp4`` (H.264 via imageio-ffmpeg) or ``.gif``."""
    require_video(path)
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(frames, np.uint8)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(
            path,
            save_all=True,
            append_images=imgs[1:],
            duration=max(1, round(1000 / fps)),
            loop=0,
            optimize=False,
        )
    else:
        h, w = frames.shape[1:3]
        if h % 2 or w % 2:  # H.264 with yuv420p needs even sizes
            frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        imageio.mimwrite(
            path, list(frames), format="FFMPEG", fps=fps, macro_block_size=1, quality=7
        )
    return path


def render_rollout(
    env: Env,
    policy_fn: Any,
    params: Any,
    key: jax.Array,
    path: str | Path,
    num_steps: int,
    fps: int = 30,
    **frame_options: Any,
) -> Path:
    """Render ``num_steps`` steps of ``policy_fn`` on ``env`` to ``path`` (``.mp4`` or ``.gif``).

    ``frame_options`` go to :func:`rollout_frames` (``width``, ``height``, ``renderer``,
    ``annotate``). The file has ``num_steps + 1`` frames.
    """
    frames = rollout_frames(env, policy_fn, params, key, num_steps, **frame_options)
    return write_video(frames, path, fps)
