"""Weights in PyTorch's layout over real HTTP: GET /weights.npz?layout=torch loads into torch
modules built to the config (nn.Linear, nn.Conv2d, nn.BatchNorm1d/2d at the config's layer
index) and gives the outputs POST /predict gives; GET /weights?layout=torch is the same arrays
as JSON, and PUT /weights?layout=torch takes them back. Skipped without PyTorch."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support import LiveServer

torch = pytest.importorskip("torch")
nn = torch.nn

DENSE_BN = {
    "seed": 3,
    "dtype": "float64",
    "dataset": {"name": "circle", "samples": 200},
    "features": ["x1", "x2", "x1^2"],
    "layers": [
        {"type": "dense", "units": 6, "activation": "tanh"},
        {"type": "batchnorm"},
        {"type": "dense", "units": 5, "activation": "leaky_relu"},
        {"type": "dropout", "rate": 0.2},
        {"type": "dense", "units": 1, "activation": "sigmoid"},
    ],
    "loss": "bce",
    "optimizer": {"name": "adam", "learning_rate": 0.02},
}
CONV_BN = {
    "seed": 1,
    "dtype": "float64",
    "dataset": {"name": "glyphs", "samples": 120},
    "layers": [
        {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "batchnorm"},
        {"type": "maxpool2d", "size": 2},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "activation": "tanh"},
        {"type": "avgpool2d", "size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 5, "activation": "softmax"},
    ],
    "loss": "cross_entropy",
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "batch_size": 16,
}
ACTIVATIONS = {
    "linear": lambda z: z,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "leaky_relu": lambda z: nn.functional.leaky_relu(z, 0.01),
    "softmax": lambda z: torch.softmax(z, dim=1),
}


class ConfigNet(nn.Module):
    """A torch model of a run config: submodule i is config layer i, so its state_dict names
    match ?layout=torch ("0.weight", "1.running_mean", ...)."""

    def __init__(self, layers: list[dict[str, Any]], input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.activations = []
        modules: list[nn.Module] = []
        shape = input_shape
        for layer in layers:
            kind = layer["type"]
            if kind == "dense":
                module: nn.Module = nn.Linear(shape[0], layer["units"])
                shape = (layer["units"],)
            elif kind == "conv2d":
                k, stride = layer["kernel_size"], layer.get("stride", 1)
                pad = (k - 1) // 2 if layer.get("padding") == "same" else 0
                module = nn.Conv2d(shape[0], layer["filters"], k, stride=stride, padding=pad)
                side = (shape[1] + 2 * pad - k) // stride + 1
                shape = (layer["filters"], side, side)
            elif kind == "batchnorm":
                module = (nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d)(shape[0])
            elif kind in ("maxpool2d", "avgpool2d"):
                size = layer["size"]
                pool = nn.MaxPool2d if kind == "maxpool2d" else nn.AvgPool2d
                module = pool(size)
                shape = (shape[0], shape[1] // size, shape[2] // size)
            elif kind == "flatten":
                module = nn.Flatten()
                shape = (int(np.prod(shape)),)
            else:  # dropout: nothing at inference
                module = nn.Identity()
            modules.append(module)
            self.activations.append(ACTIVATIONS[layer.get("activation", "linear")])
        for index, module in enumerate(modules):
            self.add_module(str(index), module)  # named "0", "1", ... as the config's layers
        self.layers = modules

    def forward(self, x: Any) -> Any:
        for module, activation in zip(self.layers, self.activations, strict=True):
            x = activation(module(x))
        return x


@pytest.fixture(scope="module")
def http(shared_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=60.0) as client:
        yield client


def trained(http: httpx.Client, config: dict[str, Any], steps: int) -> str:
    """A session of `config` after `steps` steps (the running statistics have moved)."""
    response = http.post("/api/sessions", json={"config": config})
    assert response.status_code == 201, response.text
    sid = response.json()["id"]
    http.post(f"/api/sessions/{sid}/step", json={"steps": steps}).raise_for_status()
    return sid


def torch_weights(http: httpx.Client, sid: str) -> dict[str, np.ndarray]:
    response = http.get(f"/api/sessions/{sid}/weights.npz", params={"layout": "torch"})
    assert response.status_code == 200, response.text
    assert "-torch.npz" in response.headers["content-disposition"]
    with np.load(io.BytesIO(response.content), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize(
    ("config", "steps"), [(DENSE_BN, 60), (CONV_BN, 20)], ids=["dense", "conv"]
)
def test_the_torch_npz_loads_into_torch_and_predicts_the_same(
    http: httpx.Client, config: dict[str, Any], steps: int
) -> None:
    sid = trained(http, config, steps)
    inputs = http.get(f"/api/sessions/{sid}/data", params={"limit": 12}).json()["test"]["x"]
    arrays = torch_weights(http, sid)
    x = np.asarray(inputs, dtype=np.float64)
    features = len(config.get("features", [])) or None
    if features is not None:  # the features the config asks for, as the engine makes them
        x = np.column_stack([x[:, 0], x[:, 1], x[:, 0] ** 2])
    model = ConfigNet(config["layers"], x.shape[1:]).double().eval()
    result = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in arrays.items()}, strict=False
    )
    assert result.unexpected_keys == []
    assert all(key.endswith("num_batches_tracked") for key in result.missing_keys)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    predicted = http.post(f"/api/sessions/{sid}/predict", json={"inputs": inputs})
    assert predicted.status_code == 200, predicted.text
    expected = np.asarray(predicted.json()["outputs"], dtype=np.float64)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)
    assert np.ptp(expected) > 1e-3  # the outputs differ from input to input: a real check


def test_torch_layout_is_the_engine_layout_renamed_and_dense_transposed(http: httpx.Client) -> None:
    sid = trained(http, CONV_BN, 5)
    engine = {k: np.asarray(v) for k, v in http.get(f"/api/sessions/{sid}/weights").json().items()}
    as_json = http.get(f"/api/sessions/{sid}/weights", params={"layout": "torch"}).json()
    arrays = torch_weights(http, sid)
    assert sorted(as_json) == sorted(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(np.asarray(as_json[name]), value, err_msg=name)
    assert sorted(arrays) == [
        "0.bias", "0.weight", "1.bias", "1.running_mean", "1.running_var", "1.weight",
        "3.bias", "3.weight", "6.bias", "6.weight",
    ]  # fmt: skip
    assert arrays["6.weight"].shape == (5, 4) and engine["6.W"].shape == (4, 5)
    np.testing.assert_array_equal(arrays["6.weight"], engine["6.W"].T)
    np.testing.assert_array_equal(arrays["0.weight"], engine["0.W"])  # (3, 1, 3, 3) both
    np.testing.assert_array_equal(arrays["1.weight"], engine["1.gamma"])
    np.testing.assert_array_equal(arrays["1.bias"], engine["1.beta"])
    np.testing.assert_array_equal(arrays["1.running_var"], engine["1.running_var"])


def test_put_takes_the_torch_layout_back(http: httpx.Client) -> None:
    sid = trained(http, DENSE_BN, 10)
    before = http.get(f"/api/sessions/{sid}/weights").json()
    model = ConfigNet(DENSE_BN["layers"], (3,)).double()  # fresh torch weights
    state = {k: v.tolist() for k, v in model.state_dict().items()}  # with num_batches_tracked
    response = http.put(f"/api/sessions/{sid}/weights", params={"layout": "torch"}, json=state)
    assert response.status_code == 200, response.text
    after = http.get(f"/api/sessions/{sid}/weights").json()
    assert sorted(after) == sorted(before)
    np.testing.assert_array_equal(
        np.asarray(after["0.W"]), model.layers[0].weight.detach().numpy().T
    )
    np.testing.assert_array_equal(
        np.asarray(after["1.gamma"]), model.layers[1].weight.detach().numpy()
    )
    # the engine's names, or a torch array of the engine's shape, are refused naming the array
    wrong = http.put(f"/api/sessions/{sid}/weights", params={"layout": "torch"}, json=before)
    assert wrong.status_code == 422, wrong.text
    assert [e["field"] for e in wrong.json()["errors"]] == ["0.W"]
    state["0.weight"] = np.asarray(state["0.weight"]).T.tolist()  # (3, 6): the engine's shape
    transposed = http.put(f"/api/sessions/{sid}/weights", params={"layout": "torch"}, json=state)
    assert transposed.status_code == 422, transposed.text
    (problem,) = transposed.json()["errors"]
    assert problem["field"] == "0.weight" and "(6, 3)" in problem["message"]
    refused = http.get(f"/api/sessions/{sid}/weights", params={"layout": "keras"})
    assert refused.status_code == 422 and "layout" in refused.text
