"""engine.torch_layout: the weights under PyTorch's names and shapes and back, without PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from engine.network import WeightsError
from engine.torch_layout import from_torch, to_torch
from engine.trainer import Trainer

NET = {
    "seed": 4,
    "dataset": {"name": "glyphs", "samples": 40},
    "layers": [
        {"type": "conv2d", "filters": 2, "kernel_size": 3},
        {"type": "batchnorm"},
        {"type": "maxpool2d", "size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": "tanh"},
        {"type": "batchnorm"},
        {"type": "dense", "units": 5, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
}


@pytest.fixture
def trainer() -> Trainer:
    trainer = Trainer(NET)
    trainer.train(3)  # running statistics away from 0 and 1
    return trainer


def test_names_and_shapes_are_torchs(trainer: Trainer) -> None:
    weights = trainer.get_weights()
    torch = to_torch(weights, trainer.network)
    shapes = {name: array.shape for name, array in torch.items()}
    assert shapes == {
        "0.weight": (2, 1, 3, 3),  # nn.Conv2d(1, 2, 3).weight, the engine's own layout
        "0.bias": (2,),
        "1.weight": (2,),  # BatchNorm2d(2): gamma
        "1.bias": (2,),  # beta
        "1.running_mean": (2,),
        "1.running_var": (2,),
        "4.weight": (3, 98),  # nn.Linear(98, 3).weight: W (98, 3) transposed
        "4.bias": (3,),
        "5.weight": (3,),
        "5.bias": (3,),
        "5.running_mean": (3,),
        "5.running_var": (3,),
        "6.weight": (5, 3),
        "6.bias": (5,),
    }
    np.testing.assert_array_equal(torch["4.weight"], weights["4.W"].T)
    assert torch["4.weight"].flags["C_CONTIGUOUS"]  # np.savez writes it as torch reads it
    np.testing.assert_array_equal(torch["0.weight"], weights["0.W"])
    np.testing.assert_array_equal(torch["1.weight"], weights["1.gamma"])
    np.testing.assert_array_equal(torch["1.bias"], weights["1.beta"])
    np.testing.assert_array_equal(torch["5.running_mean"], weights["5.running_mean"])
    np.testing.assert_array_equal(torch["5.running_var"], weights["5.running_var"])
    assert not np.allclose(weights["5.running_var"], 1.0)


def test_from_torch_undoes_to_torch_and_ignores_num_batches_tracked(trainer: Trainer) -> None:
    weights = trainer.get_weights()
    state = {k: v.tolist() for k, v in to_torch(weights, trainer.network).items()}
    state["1.num_batches_tracked"] = 3
    back = from_torch(state, trainer.network)
    assert sorted(back) == sorted(weights)
    for name, array in weights.items():
        np.testing.assert_array_equal(back[name], array, err_msg=name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("4.bias"), "4.bias: missing"),
        (lambda s: s.update({"4.W": s["4.weight"]}), "4.W: no such array in torch layout"),
        (
            lambda s: s.update({"4.weight": np.asarray(s["4.weight"]).T.tolist()}),
            "4.weight: expected shape (3, 98) (torch layout), got (98, 3)",
        ),
        (lambda s: s.update({"6.weight": "abc"}), "6.weight: expected an array of numbers"),
    ],
)
def test_from_torch_names_the_torch_array_at_fault(trainer: Trainer, change, message) -> None:  # type: ignore[no-untyped-def]
    state = {k: v.tolist() for k, v in to_torch(trainer.get_weights(), trainer.network).items()}
    change(state)
    with pytest.raises(WeightsError) as caught:
        from_torch(state, trainer.network)
    assert str(caught.value).startswith(message)
