"""Training settings and data plumbing (no training): recipes, overrides, data stream."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from licodec.errors import InputError
from licodec.train.config import preset, recipe_lambda, resolve_config


def test_lambda_tables_follow_the_papers():
    assert [recipe_lambda("stf", "mse", q) for q in range(1, 7)] == [
        0.0018,
        0.0035,
        0.0067,
        0.013,
        0.025,
        0.0483,
    ]
    assert [recipe_lambda("wacnn-lite", "mse", q) for q in range(1, 7)] == [
        recipe_lambda("stf", "mse", q) for q in range(1, 7)
    ]
    assert [recipe_lambda("tcm-s", "mse", q) for q in range(1, 7)] == [
        0.0025,
        0.0035,
        0.0067,
        0.013,
        0.025,
        0.05,
    ]
    assert recipe_lambda("tcm-lite", "mse", 6) == 0.05
    assert [recipe_lambda("tcm-l", "ms-ssim", q) for q in range(1, 7)] == [
        2.40,
        4.58,
        8.73,
        16.64,
        31.73,
        60.50,
    ]
    assert recipe_lambda("stf", "ms-ssim", 2) == 4.58
    with pytest.raises(InputError, match="quality"):
        recipe_lambda("stf", "mse", 7)
    with pytest.raises(InputError, match="metric"):
        recipe_lambda("stf", "psnr", 3)


def test_every_registered_model_carries_its_family_recipe():
    from licodec.models import get_spec, list_models

    for name in list_models():
        recipe = get_spec(name).recipe
        assert recipe is not None and set(recipe.lambdas) == {"mse", "ms-ssim"}, name
        assert all(len(t) == 6 for t in recipe.lambdas.values()), name
    assert preset("stf")["schedule"] == "plateau" and preset("stf")["batch_size"] == 16
    assert preset("stf-lite")["batch_size"] == 8 and preset("tcm-l")["schedule"] == "step"


def test_a_family_without_a_recipe_gets_no_borrowed_lambda():
    """A new family must not silently train with another family's λ table."""
    from licodec.models import create_model
    from licodec.zoo import registry

    registry.register_model("nofamily-test", lambda: create_model("wacnn-tiny"))
    try:
        assert preset("nofamily-test") == {}
        with pytest.raises(InputError, match="registers no mse λ table: give the λ"):
            recipe_lambda("nofamily-test", "mse", 3)
        cfg = resolve_config(flags=_flags(model="nofamily-test", lmbda=0.01))
        assert cfg.lambda_ == 0.01
    finally:
        del registry._REGISTRY["nofamily-test"]


def _flags(**kw):
    base = {"model": "tcm-s", "quality": 3, "data": "/d", "out": "/o"}
    base.update(kw)
    return base


def test_precedence_preset_yaml_flags_set(tmp_path):
    cfg = resolve_config(flags=_flags())
    assert cfg.schedule == "step" and cfg.batch_size == 8  # TCM recipe
    assert cfg.lambda_ == 0.0067
    assert resolve_config(flags=_flags(model="stf")).schedule == "plateau"
    assert resolve_config(flags=_flags(model="stf")).batch_size == 16
    assert resolve_config(flags=_flags(model="stf-lite")).batch_size == 8

    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"lr": 3e-4, "batch_size": 4, "crop": 128, "milestones": [0.5]}))
    cfg = resolve_config(
        flags=_flags(crop=192),
        yaml_file=str(f),
        sets=["batch-size=2", "lambda=0.02", "milestones=[0.7,0.9]"],
    )
    assert cfg.lr == 3e-4  # from YAML
    assert cfg.crop == 192  # flag beats YAML
    assert cfg.batch_size == 2  # --set beats YAML
    assert cfg.lambda_ == 0.02
    assert cfg.milestones == [0.7, 0.9]
    assert cfg.milestone_steps() == [int(0.7 * cfg.steps), int(0.9 * cfg.steps)]


def test_bad_settings_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown setting 'bogus'"):
        resolve_config(flags=_flags(), sets=["bogus=1"])
    with pytest.raises(InputError, match="'crop'"):
        resolve_config(flags=_flags(), sets=["crop=big"])
    with pytest.raises(InputError, match="key=value"):
        resolve_config(flags=_flags(), sets=["crop"])
    with pytest.raises(InputError, match="schedule"):
        resolve_config(flags=_flags(), sets=["schedule=sometimes"])
    with pytest.raises(InputError, match="quality"):
        resolve_config(flags=_flags(quality=9))
    with pytest.raises(InputError, match="at least 33"):
        resolve_config(flags=_flags(metric="ms-ssim", crop=32))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not a mapping\n")
    with pytest.raises(InputError, match="mapping"):
        resolve_config(flags=_flags(), yaml_file=str(bad))


def test_resume_allows_runtime_changes_only():
    saved = resolve_config(flags=_flags()).to_dict()
    cfg = resolve_config(flags={"steps": 5000, "workers": 2}, resume_from=saved)
    assert cfg.steps == 5000 and cfg.workers == 2 and cfg.model == "tcm-s"
    with pytest.raises(InputError, match="cannot change 'crop'"):
        resolve_config(flags={}, sets=["crop=64"], resume_from=saved)
    # a lower learning rate for the last stretch, and a moved run directory, are fine
    moved = resolve_config(flags={"out": "elsewhere/run"}, sets=["lr=1e-5"], resume_from=saved)
    assert moved.lr == 1e-5 and moved.out == "elsewhere/run"
    with pytest.raises(InputError, match="cannot change 'quality'"):
        resolve_config(flags={"quality": 4}, resume_from=saved)
    # giving the same value again is fine
    assert resolve_config(flags={"quality": 3}, resume_from=saved).quality == 3


def test_config_yaml_round_trip(tmp_path):
    from licodec.train.config import load_yaml, save_yaml

    cfg = resolve_config(flags=_flags(), sets=["model_kwargs={N: 32}", "hflip=yes"])
    save_yaml(cfg, tmp_path / "config.yaml", extra={"lambda_in_effect": cfg.lambda_})
    again = resolve_config(flags={}, resume_from=load_yaml(tmp_path / "config.yaml"))
    assert again == cfg
    assert again.model_kwargs == {"N": 32} and again.hflip is True


def test_cli_print_config(capsys):
    from licodec.cli.main import main

    rc = main(
        [
            "train",
            "--model",
            "tcm-s",
            "-q",
            "2",
            "--data",
            "/d",
            "--metric",
            "ms-ssim",
            "--set",
            "warmup=10",
            "--print-config",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    data = yaml.safe_load(text)
    assert data["out"] == "runs/tcm-s-ms-ssim-q2"
    assert data["warmup"] == 10 and data["metric"] == "ms-ssim"
    assert "lambda in effect: 4.58" in text
    # a variable-rate model: every quality's λ, and no quality in the run name
    assert main(["train", "--model", "wacnn-lite", "--data", "/d", "--print-config"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["out"] == "runs/wacnn-lite-mse"
    assert "lambda in effect: [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483]" in text
    assert main(["train", "--model", "wacnn-lite", "--data", "/d", "--set", "nope=1"]) == 3


# ------------------------------------------------------------------ data
def _write(path, w, h, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def test_scan_skips_and_counts(tmp_path):
    from licodec.train.data import scan_images

    (tmp_path / "a" / "b").mkdir(parents=True)
    _write(tmp_path / "one.png", 80, 70)
    _write(tmp_path / "a" / "two.jpg", 100, 64)
    _write(tmp_path / "a" / "b" / "three.PNG", 64, 64)
    _write(tmp_path / "a" / "small.png", 63, 200)
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "notes.txt").write_text("not an image")
    index = scan_images(tmp_path, min_size=64)
    assert index.files == ["a/b/three.PNG", "a/two.jpg", "one.png"]
    assert index.sizes == [(64, 64), (100, 64), (80, 70)]
    assert (index.skipped_unreadable, index.skipped_small) == (1, 1)
    assert "1 unreadable" in index.describe() and "1 too small" in index.describe()
    with pytest.raises(InputError, match="not found"):
        scan_images(tmp_path / "missing")


def test_stream_resumes_and_shards():
    from licodec.train.data import StreamSampler

    def take(s, k):
        it = iter(s)
        return [next(it) for _ in range(k)]

    full = take(StreamSampler(7, seed=3), 30)
    assert [p for p, _ in full] == list(range(30))
    for epoch in range(4):  # each epoch is a permutation
        chunk = [i for p, i in full if epoch * 7 <= p < epoch * 7 + 7]
        if len(chunk) == 7:
            assert sorted(chunk) == list(range(7))
    assert take(StreamSampler(7, seed=3, start=11), 19) == full[11:]
    r0 = take(StreamSampler(7, seed=3, start=4, rank=0, world=2), 6)
    r1 = take(StreamSampler(7, seed=3, start=4, rank=1, world=2), 6)
    assert sorted(r0 + r1) == full[4:16]
    assert take(StreamSampler(7, seed=4), 7) != full[:7]


def test_crops_depend_only_on_position_and_survive_broken_files(tmp_path):
    import torch

    from licodec.train.data import CropDataset, scan_images

    for i in range(4):
        _write(tmp_path / f"{i}.png", 96, 80, seed=i)
    index = scan_images(tmp_path, min_size=32)
    cached = CropDataset(index, 32, seed=1, cache=True)
    lazy = CropDataset(index, 32, seed=1, cache=False)
    a, b = cached[(5, 2)], lazy[(5, 2)]
    assert a.dtype == torch.uint8 and a.shape == (3, 32, 32)
    assert torch.equal(a, b)
    assert not torch.equal(cached[(5, 2)], cached[(6, 2)])  # another position, another crop
    (tmp_path / "2.png").write_bytes(b"gone bad after the scan")
    with pytest.warns(UserWarning, match="skipping unreadable"):
        c = lazy[(5, 2)]
    assert c.shape == (3, 32, 32) and lazy.failed == 1
