"""Run configurations shared by test_trainer.py, test_observing.py and test_train_loop.py."""

from __future__ import annotations

from engine import recipes


def tanh_net(data_name: str = "spiral", **overrides: object) -> dict:
    config = {
        "seed": 42,
        "dataset": {"name": data_name, "samples": 500, "noise": 0.1, "test_fraction": 0.3},
        "features": ["x1", "x2"],
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "tanh"},
        ],
        "loss": "mse",
        "optimizer": {"name": "sgd", "learning_rate": 0.03, "momentum": 0.0},
        "batch_size": 10,
    }
    config.update(overrides)
    return config


def cnn_glyphs(**overrides: object) -> dict:
    config = recipes.cnn_glyphs()
    config.update(overrides)
    return config
