"""Ready-made runs: the basic presets, and the catalogue of every preset the page lists.

The guided experiments come first (engine.lessons), then the basic presets below: a title, a line
of explanation and a run configuration each (built by engine.recipes). Every config is validated
when the catalogue is built, so a preset that does not validate is found early.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.config import parse_config
from engine.lessons import LESSONS
from engine.recipes import cnn_glyphs, deep_sigmoid, spiral_run, xor_run

BASIC: list[dict[str, Any]] = [
    {
        "id": "xor",
        "title": "XOR",
        "explanation": "The classic: two inputs, one hidden layer of four tanh units.",
        "config": xor_run(),
    },
    {
        "id": "spiral",
        "title": "Spiral",
        "explanation": "Two interleaved spirals with two hidden layers of eight tanh units.",
        "config": spiral_run(0.01, "adam"),
    },
    {
        "id": "circle",
        "title": "Circle",
        "explanation": "One class inside a ring of the other.",
        "config": {**spiral_run(0.03), "dataset": {"name": "circle", "samples": 500, "noise": 0.1}},
    },
    {
        "id": "deep-sigmoid",
        "title": "Deep sigmoid",
        "explanation": "Nine hidden sigmoid layers: watch the gradients vanish.",
        "config": deep_sigmoid(),
    },
    {
        "id": "cnn-glyphs",
        "title": "CNN on glyphs",
        "explanation": "conv-pool-conv-pool-dense on 16x16 images of five shapes.",
        "config": cnn_glyphs(),
    },
    {
        "id": "regression-plane",
        "title": "Regression: plane",
        "explanation": "Fit a tilted plane with a linear output.",
        "config": {
            **spiral_run(0.01, "adam"),
            "dataset": {"name": "plane", "samples": 500, "noise": 0.1},
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 1, "activation": "linear"},
            ],
        },
    },
    {
        "id": "spiral3-softmax",
        "title": "Three spirals: softmax",
        "explanation": (
            "Three spiral arms, three classes: the output layer has one softmax unit per class, "
            "trained with cross-entropy. Each point of the plane takes the colour of its most "
            "likely class, paler where the network is unsure."
        ),
        "config": {
            "seed": 1,
            "dataset": {"name": "spiral3", "samples": 500, "noise": 0.1, "test_fraction": 0.3},
            "features": ["x1", "x2"],
            "layers": [
                {"type": "dense", "units": 16, "activation": "tanh"},
                {"type": "dense", "units": 16, "activation": "tanh"},
                {"type": "dense", "units": 3, "activation": "softmax"},
            ],
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "batch_size": 32,
        },
    },
    {
        "id": "digits-dense",
        "title": "Digits: dense",
        "explanation": (
            "Real 8x8 handwritten digits, flattened to 64 inputs, one hidden layer of 32 relu "
            "units and a softmax over the ten digits."
        ),
        "config": {
            "seed": 0,
            "dataset": {"name": "digits", "samples": 1797, "noise": 0.0, "test_fraction": 0.3},
            "layers": [
                {"type": "flatten"},
                {"type": "dense", "units": 32, "activation": "relu"},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.005},
            "batch_size": 32,
            "init": "he",
        },
    },
    {
        "id": "digits-cnn",
        "title": "Digits: CNN",
        "explanation": (
            "The same digits through conv-pool-conv-pool-dense; 'same' padding keeps the small "
            "8x8 images from shrinking away before the pooling."
        ),
        "config": {
            "seed": 0,
            "dataset": {"name": "digits", "samples": 1797, "noise": 0.0, "test_fraction": 0.3},
            "layers": [
                {"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"},
                {"type": "maxpool2d", "size": 2},
                {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": "same"},
                {"type": "maxpool2d", "size": 2},
                {"type": "flatten"},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ],
            "loss": "cross_entropy",
            "optimizer": {"name": "adam", "learning_rate": 0.005},
            "batch_size": 32,
            "init": "he",
        },
    },
]


def all_presets() -> list[dict[str, Any]]:
    """Every preset, guided experiments first (numbered), each with a validated config."""
    out = []
    for number, lesson in enumerate(LESSONS, start=1):
        out.append({"lesson": number, "kind": "lesson", **copy.deepcopy(lesson)})
    for preset in BASIC:
        out.append({"lesson": None, "kind": "basic", **copy.deepcopy(preset)})
    for preset in out:
        parse_config(preset["config"])  # a preset that does not validate is a bug, found early
        for run in [*preset.get("compare", []), preset.get("try", {})]:
            if "config" in run:
                parse_config(run["config"])
    return out


def get_preset(preset_id: str) -> dict[str, Any]:
    """One preset by id; KeyError names the known ids."""
    for preset in all_presets():
        if preset["id"] == preset_id:
            return preset
    known = ", ".join(p["id"] for p in all_presets())
    raise KeyError(f"unknown preset {preset_id!r}; known: {known}")
