"""Rollout videos: frame counts and sizes of written files, every drawn family, the CLI flag."""

import json
import sys

import jax
import numpy as np
import pytest

pytest.importorskip("imageio")
pytest.importorskip("imageio_ffmpeg")

import imageio.v2 as imageio  # noqa: E402

from jaxbc import envs  # noqa: E402
from jaxbc.rollout import random_policy  # noqa: E402
from jaxbc.video import render_rollout, rollout_frames, write_video  # noqa: E402


def test_mp4_of_cartpole_has_one_frame_per_state(tmp_path):
    env = envs.make("CartPole-v1")
    path = render_rollout(
        env, random_policy(env.action_space), None, jax.random.key(0), tmp_path / "cp.mp4", 12
    )
    reader = imageio.get_reader(path, format="FFMPEG")
    assert reader.count_frames() == 13
    assert tuple(reader.get_meta_data()["size"]) == (320, 240)


def test_gif_of_minatar_grid(tmp_path):
    env = envs.make("Breakout-MinAtar")
    frames = rollout_frames(env, random_policy(env.action_space), None, jax.random.key(1), 8)
    assert frames.shape == (9, 160, 160, 3) and frames.dtype == np.uint8
    # the paddle (last grid row) is coloured in every frame
    assert (frames[:, 9 * 16 + 8, :, :] > 0).any(axis=(1, 2)).all()
    path = write_video(frames, tmp_path / "b.gif", fps=10)
    assert np.asarray(imageio.mimread(path)).shape[:3] == (9, 160, 160)


@pytest.mark.parametrize(
    "env_id",
    ["Acrobot-v1", "MountainCar-v0", "Pendulum-v1", "TwoGoals2D-v0", "PointMaze-TwoRoutes-v0"],
)
def test_drawn_envs_give_frames_that_change(env_id):
    env = envs.make(env_id)
    frames = rollout_frames(
        env,
        random_policy(env.action_space),
        None,
        jax.random.key(2),
        3,
        width=160,
        height=120,
        annotate=False,
    )
    assert frames.shape == (4, 120, 160, 3)
    assert (frames[0] != 255).any()  # something is drawn on the white canvas
    assert any((frames[i] != frames[i + 1]).any() for i in range(3))


def test_bad_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        write_video(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "x.avi")


def test_missing_imageio_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(ImportError, match=r'pip install "jaxbc\[video\]"'):
        write_video(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "x.mp4")


def test_cli_evaluate_video(tmp_path, capsys):
    from jaxbc.cli import main

    out = tmp_path / "cp.gif"
    main(
        [
            "evaluate",
            "--expert",
            "CartPole-v1",
            "--episodes",
            "2",
            "--video",
            str(out),
            "--video-steps",
            "6",
            "--json",
        ]
    )
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["video_frames"] == 7 and len(imageio.mimread(out)) == 7


@pytest.mark.slow
def test_brax_frames_simple_and_mujoco(tmp_path):
    env = envs.make("brax/hopper")
    policy = random_policy(env.action_space)
    frames = rollout_frames(env, policy, None, jax.random.key(0), 4, renderer="simple")
    assert frames.shape == (5, 240, 320, 3)
    try:
        frames = rollout_frames(env, policy, None, jax.random.key(0), 4, renderer="mujoco")
    except RuntimeError as e:  # no OpenGL context on this machine
        pytest.skip(str(e))
    assert frames.shape == (5, 240, 320, 3)
    path = write_video(frames, tmp_path / "h.mp4")
    assert imageio.get_reader(path, format="FFMPEG").count_frames() == 5
