"""Tests for engine.data and what it builds on: generators, shipped digits, splits, features, user
points and uploads (reading CSV and NPZ files: test_uploads.py)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from importlib import resources
from types import SimpleNamespace

import numpy as np
import pytest

from engine import generators, split
from engine.data import DATASETS, DATASETS_BY_NAME, Dataset, DatasetError, make_dataset
from engine.features import FEATURES, apply_features
from engine.uploads import load_csv

PLANE_CLASSIFIERS = ["circle", "xor", "gaussian", "spiral", "moons"]
PLANE_REGRESSIONS = ["plane", "multi-gaussian"]
IMAGE_SHAPES = {"glyphs": (1, 16, 16), "digits": (1, 8, 8)}
GENERATED = [*PLANE_CLASSIFIERS, *PLANE_REGRESSIONS, "spiral3", "sine", *IMAGE_SHAPES]


def cfg(name: str = "circle", **overrides: object) -> SimpleNamespace:
    """A dataset config with the DatasetConfig defaults."""
    values: dict[str, object] = {
        "name": name,
        "samples": 500,
        "noise": 0.0,
        "test_fraction": 0.3,
        "points": None,
        "target": None,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def all_x(ds: Dataset) -> np.ndarray:
    return np.concatenate([ds.x_train, ds.x_test])


def all_y(ds: Dataset) -> np.ndarray:
    return np.concatenate([ds.y_train, ds.y_test])


# --------------------------------------------------------------------------- generators


@pytest.mark.parametrize("name", GENERATED)
def test_generator_shapes_and_dtypes(name: str) -> None:
    ds = make_dataset(cfg(name, samples=200, noise=0.2), seed=1)
    assert ds.name == name
    assert len(ds.x_train) + len(ds.x_test) == 200
    assert len(ds.x_test) == 60  # round(200 * 0.3)
    assert len(ds.y_train) == len(ds.x_train) and len(ds.y_test) == len(ds.x_test)
    assert ds.x_train.dtype == np.float64 and ds.x_test.dtype == np.float64
    assert np.isfinite(all_x(ds)).all()
    if name in IMAGE_SHAPES:
        assert ds.x_train.shape[1:] == IMAGE_SHAPES[name]
        assert ds.is_image and not ds.is_2d and ds.domain is None
        assert ds.input_shape == IMAGE_SHAPES[name]
    elif name == "sine":
        assert ds.x_train.shape[1:] == (1,)
        assert not ds.is_image and not ds.is_2d
        assert ds.input_names == ["x1"]
    else:
        assert ds.x_train.shape[1:] == (2,)
        assert ds.is_2d and not ds.is_image
        assert ds.domain == ((-6.0, 6.0), (-6.0, 6.0))
        assert ds.input_names == ["x1", "x2"]
    if ds.task == "regression":
        assert ds.num_classes == 1
        assert ds.y_train.dtype == np.float64 and ds.y_train.shape == (len(ds.x_train), 1)
        assert ds.y_test.shape == (len(ds.x_test), 1)
    else:
        assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (len(ds.x_train),)
        assert len(ds.class_names) == ds.num_classes
        assert set(np.unique(all_y(ds))) <= set(range(ds.num_classes))


@pytest.mark.parametrize("name", PLANE_CLASSIFIERS)
@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_binary_generators_are_balanced(name: str, noise: float) -> None:
    ds = make_dataset(cfg(name, samples=1000, noise=noise), seed=7)
    assert ds.task == "binary" and ds.num_classes == 2
    share = all_y(ds).mean()
    assert 0.4 <= share <= 0.6, f"{name}: share of class 1 is {share}"


@pytest.mark.parametrize("name", GENERATED)
def test_same_seed_same_arrays_other_seed_other_arrays(name: str) -> None:
    a = make_dataset(cfg(name, samples=100, noise=0.1), seed=3)
    b = make_dataset(cfg(name, samples=100, noise=0.1), seed=3)
    c = make_dataset(cfg(name, samples=100, noise=0.1), seed=4)
    for attr in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert not np.array_equal(a.x_train, c.x_train)
    # Not only the split order: the generated points themselves differ.
    assert not np.array_equal(np.sort(all_x(a), axis=0), np.sort(all_x(c), axis=0))


@pytest.mark.parametrize("name", ["circle", "xor", "spiral", "moons", "gaussian"])
def test_noise_free_points_stay_in_playground_range(name: str) -> None:
    limit = 6.0 if name == "gaussian" else 5.31
    x = all_x(make_dataset(cfg(name, samples=400), seed=2))
    assert np.abs(x).max() <= limit


def test_circle_labels_follow_radius_without_noise() -> None:
    ds = make_dataset(cfg("circle", samples=600), seed=5)
    r = np.hypot(*all_x(ds).T)
    y = all_y(ds)
    assert (r[y == 1] <= 2.5).all()
    assert ((r[y == 0] >= 3.5) & (r[y == 0] <= 5.0)).all()
    assert (y == 1).sum() == 300


def test_circle_noise_flips_labels_near_the_boundary() -> None:
    ds = make_dataset(cfg("circle", samples=600, noise=1.0), seed=5)
    r = np.hypot(*all_x(ds).T)
    assert ((r <= 2.5) != (all_y(ds) == 1)).any()


def test_xor_labels_are_quadrant_signs_without_noise() -> None:
    ds = make_dataset(cfg("xor", samples=600), seed=5)
    x, y = all_x(ds), all_y(ds)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(np.int64))
    assert (np.abs(x) >= 0.3).all()  # Playground's padding keeps points off the axes


def test_gaussian_clouds_sit_on_either_side_of_the_diagonal() -> None:
    ds = make_dataset(cfg("gaussian", samples=1000), seed=5)
    x, y = all_x(ds), all_y(ds)
    accuracy = ((x.sum(axis=1) > 0).astype(np.int64) == y).mean()
    assert accuracy > 0.99
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [2.0, 2.0], atol=0.15)


def test_gaussian_noise_widens_the_clouds() -> None:
    calm = all_x(make_dataset(cfg("gaussian", samples=1000), seed=5))
    wide = all_x(make_dataset(cfg("gaussian", samples=1000, noise=1.0), seed=5))
    assert wide.std() > calm.std() * 1.2


def test_spiral_arms_are_point_symmetric_without_noise() -> None:
    ds = make_dataset(cfg("spiral", samples=400), seed=5)
    x, y = all_x(ds), all_y(ds)
    assert np.hypot(*x.T).max() <= 5.0
    # Arm 0 is arm 1 turned by pi: its angle at radius r is arm 1's angle plus pi.
    r = np.hypot(*x.T)
    t = np.arctan2(x[:, 0], x[:, 1])  # Playground: x = r sin t, y = r cos t
    expected = 1.75 * (r / 5.0) * 2 * np.pi + np.where(y == 1, 0.0, np.pi)
    np.testing.assert_allclose(np.cos(t - expected), 1.0, atol=1e-9)


def test_moons_are_separated_half_circles_without_noise() -> None:
    ds = make_dataset(cfg("moons", samples=400), seed=5)
    x, y = all_x(ds), all_y(ds)
    # Undo the centring and scaling, then each moon is a unit half circle.
    u = x / 3.0 + np.array([0.5, 0.25])
    np.testing.assert_allclose(np.hypot(u[y == 0, 0], u[y == 0, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(u[y == 1, 0] - 1.0, u[y == 1, 1] - 0.5), 1.0)
    assert (u[y == 0, 1] >= 0).all() and (u[y == 1, 1] <= 0.5).all()


def test_plane_target_is_linear_without_noise() -> None:
    ds = make_dataset(cfg("plane", samples=300), seed=5)
    x, y = all_x(ds), all_y(ds)
    np.testing.assert_allclose(y[:, 0], x.sum(axis=1) / 12.0)
    assert np.abs(y).max() <= 1.0


def test_regression_targets_stay_in_unit_range_with_noise() -> None:
    for name in PLANE_REGRESSIONS:
        y = all_y(make_dataset(cfg(name, samples=500, noise=1.0), seed=5))
        assert np.abs(y).max() <= 1.0


def test_multi_gaussian_bumps_have_their_sign() -> None:
    ds = make_dataset(cfg("multi-gaussian", samples=2000), seed=5)
    x, y = all_x(ds), all_y(ds)[:, 0]
    near = lambda cx, cy: np.hypot(x[:, 0] - cx, x[:, 1] - cy) < 0.5  # noqa: E731
    assert (y[near(-4, 2.5)] > 0.7).all() and (y[near(0, 2.5)] < -0.7).all()
    assert (y[near(0, -2.5)] > 0.7).all() and (y[near(4, -2.5)] < -0.7).all()
    far = np.min(
        [np.hypot(x[:, 0] - cx, x[:, 1] - cy) for cx, cy, _ in generators._BUMPS], axis=0
    )  # (n,)
    np.testing.assert_array_equal(y[far >= 2.0], 0.0)


def test_sine_targets() -> None:
    ds = make_dataset(cfg("sine", samples=300), seed=5)
    x, y = all_x(ds), all_y(ds)
    assert x.min() >= -6.0 and x.max() <= 6.0
    np.testing.assert_allclose(y, np.sin(x))
    noisy = make_dataset(cfg("sine", samples=2000, noise=1.0), seed=5)
    residual = all_y(noisy) - np.sin(all_x(noisy))
    assert 0.4 < residual.std() < 0.6  # noise 1 -> Playground's 50 % -> std 0.5


def test_glyphs_classes_and_pixel_range() -> None:
    ds = make_dataset(cfg("glyphs", samples=250, noise=0.5), seed=5)
    assert ds.task == "multiclass"
    assert ds.num_classes == len(ds.class_names) >= 4
    assert ds.class_names == ["bar", "cross", "circle", "triangle", "square"]
    x, y = all_x(ds), all_y(ds)
    np.testing.assert_array_equal(np.bincount(y), [50] * 5)
    assert x.min() >= 0.0 and x.max() <= 1.0
    # Stratified split: every class is in both parts.
    assert set(ds.y_train) == set(ds.y_test) == set(range(5))


def test_glyphs_without_noise_are_clean_and_distinct() -> None:
    ds = make_dataset(cfg("glyphs", samples=500), seed=5)
    x, y = all_x(ds)[:, 0], all_y(ds)  # (n, 16, 16)
    assert (x[:, 0, 0] == 0).all()  # corners stay background
    assert (x.max(axis=(1, 2)) >= 0.3).all()  # every glyph has ink
    means = np.stack([x[y == c].mean(axis=0) for c in range(5)])  # (5, 16, 16)
    gaps = [np.abs(means[i] - means[j]).max() for i in range(5) for j in range(i + 1, 5)]
    assert min(gaps) > 0.1
    noisy = all_x(make_dataset(cfg("glyphs", samples=500, noise=1.0), seed=5))
    assert noisy[:, 0, 0, 0].mean() > 0.05  # noise reaches the background


def spiral3_residual(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How far (in radians, wrapped to [-pi, pi)) each point's angle is from its arm's."""
    r = np.hypot(points[:, 0], points[:, 1])
    angle = np.arctan2(points[:, 0], points[:, 1])  # the generator puts x1 = r sin t, x2 = r cos t
    arm = 2.0 * np.pi * 1.25 * r / 5.0 + labels * 2.0 * np.pi / 3.0
    return (angle - arm + np.pi) % (2.0 * np.pi) - np.pi


def test_spiral3_has_three_arms_a_third_of_a_turn_apart() -> None:
    ds = make_dataset(cfg("spiral3", samples=601), seed=4)
    assert ds.task == "multiclass" and ds.num_classes == 3
    assert ds.class_names == ["arm 0", "arm 1", "arm 2"]
    assert ds.domain == ((-6.0, 6.0), (-6.0, 6.0))
    x, y = all_x(ds), all_y(ds)
    np.testing.assert_array_equal(np.sort(np.bincount(y)), [200, 200, 201])
    # Without noise every point lies on its own arm, 1.25 turns out to radius 5 ...
    r = np.hypot(x[:, 0], x[:, 1])
    assert r.max() <= 5.0 and r.max() > 4.9 and r.min() < 0.1
    np.testing.assert_allclose(spiral3_residual(x, y), 0.0, atol=1e-9)
    # ... and not on the others: an arm turned by 120 degrees is the next one.
    for shift in (1, 2):
        off = np.abs(spiral3_residual(x, (y + shift) % 3))
        np.testing.assert_allclose(off, 2.0 * np.pi / 3.0, atol=1e-9)
    # Stratified split: the three classes in both parts, in proportion.
    assert sorted(np.bincount(ds.y_test).tolist()) == [60, 60, 60]


def test_spiral3_noise_jitters_points_off_their_arms() -> None:
    clean = make_dataset(cfg("spiral3", samples=300), seed=9)
    noisy = make_dataset(cfg("spiral3", samples=300, noise=1.0), seed=9)
    np.testing.assert_array_equal(all_y(clean), all_y(noisy))
    shift = all_x(noisy) - all_x(clean)  # same draws before the jitter: same points, moved
    assert 0.2 < np.abs(shift).max() <= 0.5  # noise 1 is Playground's 50 %: +-0.5 at most
    assert np.abs(spiral3_residual(all_x(noisy), all_y(noisy))).max() > 0.1


# --------------------------------------------------------------------------- digits

DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"
SKLEARN_DIGIT_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
SAMPLE_0 = [  # load_digits().images[0], a zero
    [0, 0, 5, 13, 9, 1, 0, 0],
    [0, 0, 13, 15, 10, 15, 5, 0],
    [0, 3, 15, 2, 0, 11, 8, 0],
    [0, 4, 12, 0, 0, 8, 8, 0],
    [0, 5, 8, 0, 0, 9, 8, 0],
    [0, 4, 11, 0, 1, 12, 7, 0],
    [0, 2, 14, 5, 10, 12, 0, 0],
    [0, 0, 6, 13, 10, 0, 0, 0],
]


def test_shipped_digits_are_scikit_learns_load_digits() -> None:
    images, labels = generators.load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.uint8
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert digest == DIGITS_SHA256  # computed from scikit-learn's digits.csv.gz
    assert np.bincount(labels).tolist() == SKLEARN_DIGIT_COUNTS
    assert images[0].tolist() == SAMPLE_0 and labels[0] == 0
    assert labels[:20].tolist() == list(range(10)) * 2
    assert int(images.min()) == 0 and int(images.max()) == 16
    assert int(images.sum(dtype=np.int64)) == 561_718
    assert not images.flags.writeable and not labels.flags.writeable  # one shared, cached copy


def test_digits_file_is_plain_arrays_inside_the_package() -> None:
    folder = resources.files("engine").joinpath("datasets")
    blob = folder.joinpath("digits.npz").read_bytes()
    assert len(blob) < 64 * 1024
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        assert sorted(archive.namelist()) == ["images.npy", "labels.npy"]
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:  # no object arrays inside
        assert {npz[k].dtype.kind for k in npz.files} == {"u"}
    notice = folder.joinpath("LICENSE").read_text()
    for words in ("Alpaydin", "Kaynak", "10.24432/C50P49", "CC BY 4.0", "BSD 3-Clause"):
        assert words in notice or words.replace("CC BY 4.0", "Attribution 4.0") in notice
    assert "scikit-learn" in folder.joinpath("README.md").read_text()


def test_digits_dataset_serves_every_sample_as_an_image_in_unit_range() -> None:
    ds = make_dataset(cfg("digits", samples=1797, test_fraction=0.25), seed=0)
    assert ds.task == "multiclass" and ds.num_classes == 10
    assert ds.class_names == [str(d) for d in range(10)]
    assert ds.input_names == ["image"] and ds.domain is None
    assert ds.x_train.shape == (1348, 1, 8, 8) and ds.x_test.shape == (449, 1, 8, 8)
    assert np.bincount(all_y(ds)).tolist() == SKLEARN_DIGIT_COUNTS
    # Exactly the file's samples, scaled by 1/16: compare the sorted (pixels, label) rows.
    images, labels = generators.load_digits()
    expected = np.column_stack([images.reshape(1797, 64), labels]).astype(np.float64)
    got = np.column_stack([all_x(ds).reshape(1797, 64) * 16.0, all_y(ds)])
    np.testing.assert_array_equal(
        got[np.lexsort(got.T[::-1])], expected[np.lexsort(expected.T[::-1])]
    )
    assert all_x(ds).max() == 1.0 and all_x(ds).min() == 0.0


def test_digits_subset_is_seeded_and_keeps_the_class_proportions() -> None:
    a = make_dataset(cfg("digits", samples=500), seed=3)
    b = make_dataset(cfg("digits", samples=500), seed=3)
    c = make_dataset(cfg("digits", samples=500), seed=4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    counts = np.bincount(all_y(a), minlength=10)
    assert counts.sum() == 500 and len(a.x_test) == 150
    share = np.array(SKLEARN_DIGIT_COUNTS) * 500 / 1797
    assert np.all(np.abs(counts - share) < 1.0)  # largest remainders: within one of its share
    assert set(a.y_test.tolist()) == set(range(10))
    # Another seed picks other samples (not only another order).
    assert not np.array_equal(np.sort(all_x(a), axis=0), np.sort(all_x(c), axis=0))
    # Every picked image is one of the file's, with its own label.
    images, labels = generators.load_digits()
    table = {img.tobytes(): int(lab) for img, lab in zip(images, labels, strict=True)}
    for img, lab in zip(all_x(a)[:, 0], all_y(a), strict=True):
        key = np.round(img * 16).astype(np.uint8).tobytes()
        assert table.get(key) == lab


def test_digits_noise_adds_clipped_pixel_noise() -> None:
    clean = make_dataset(cfg("digits", samples=300), seed=2)
    noisy = make_dataset(cfg("digits", samples=300, noise=0.5), seed=2)
    np.testing.assert_array_equal(all_y(clean), all_y(noisy))
    x_clean, x_noisy = all_x(clean), all_x(noisy)
    np.testing.assert_array_equal(x_clean * 16, np.round(x_clean * 16))  # exact steps of 1/16
    diff = x_noisy - x_clean
    assert x_noisy.min() >= 0.0 and x_noisy.max() <= 1.0
    assert 0.1 < diff[(x_clean > 0.2) & (x_clean < 0.8)].std() < 0.2  # std 0.35 * 0.5


def test_digits_refuses_more_samples_than_it_has() -> None:
    with pytest.raises(DatasetError) as info:
        make_dataset(cfg("digits", samples=1798), seed=0)
    assert info.value.field == "dataset.samples"
    assert "1797" in str(info.value) and "1798" in str(info.value)


def test_split_is_stratified_and_sized() -> None:
    ds = make_dataset(cfg("circle", samples=101, test_fraction=0.2), seed=0)
    assert len(ds.x_test) == 20 and len(ds.x_train) == 81
    counts = np.bincount(ds.y_test, minlength=2)
    assert abs(int(counts[0]) - int(counts[1])) <= 1


def test_split_without_test_part() -> None:
    ds = make_dataset(cfg("plane", samples=50, test_fraction=0.0), seed=0)
    assert ds.x_test.shape == (0, 2) and ds.y_test.shape == (0, 1)
    assert ds.x_train.shape == (50, 2)


def test_split_keeps_at_least_one_training_sample() -> None:
    train, test = split.split_indices(4, 0.9, np.random.default_rng(0))
    assert len(train) == 1 and len(test) == 3
    assert sorted([*train, *test]) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"name": "spirals"}, "dataset.name", ["spiral", "'spirals'"]),
        ({"name": ""}, "dataset.name", ["expected", "''"]),
        ({"name": None}, "dataset.name", ["expected", "None"]),
        ({"samples": 3}, "dataset.samples", ["4", "100000", "got 3"]),
        ({"samples": 100_001}, "dataset.samples", ["100000", "got 100001"]),
        ({"samples": 50.5}, "dataset.samples", ["integer", "50.5"]),
        ({"samples": True}, "dataset.samples", ["integer", "True"]),
        ({"noise": -0.1}, "dataset.noise", ["0 to 1", "-0.1"]),
        ({"noise": 1.5}, "dataset.noise", ["0 to 1", "1.5"]),
        ({"noise": float("nan")}, "dataset.noise", ["0 to 1", "nan"]),
        ({"test_fraction": 0.95}, "dataset.test_fraction", ["0.9", "0.95"]),
        ({"test_fraction": -0.1}, "dataset.test_fraction", ["0.9", "-0.1"]),
    ],
)
def test_bad_config_raises_dataset_error(
    overrides: dict[str, object], field: str, words: list[str]
) -> None:
    with pytest.raises(DatasetError) as info:
        make_dataset(cfg(**overrides), seed=0)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)


def test_negative_seed_is_refused() -> None:
    with pytest.raises(DatasetError, match="non-negative") as info:
        make_dataset(cfg(), seed=-1)
    assert info.value.field == "seed"


# --------------------------------------------------------------------------- registry


def test_registry_describes_every_built_in_dataset() -> None:
    names = [info.name for info in DATASETS]
    assert len(names) == len(set(names))
    assert set(GENERATED) | {"points"} == set(names)
    assert DATASETS_BY_NAME["digits"].source == "shipped"
    for info in DATASETS:
        entry = info.to_dict()
        assert entry["input_kind"] in ("2d", "1d", "image")
        assert entry["task"] in ("binary", "multiclass", "regression")
        assert entry["description"].endswith(".")
        params = {p["name"]: p for p in entry["params"]}
        assert "test_fraction" in params
        for p in params.values():
            assert p["min"] <= p["default"] <= p["max"]
        if info.source in ("generated", "shipped"):
            assert set(params) == {"samples", "noise", "test_fraction"}
            ds = make_dataset(
                cfg(info.name, **{k: p["default"] for k, p in params.items()}), seed=0
            )
            assert ds.task == info.task
            assert entry.get("num_classes", 1) == ds.num_classes
            if info.input_kind == "image":
                assert entry["input_shape"] == list(ds.input_shape)


# --------------------------------------------------------------------------- features


def test_apply_features_computes_every_playground_feature() -> None:
    assert FEATURES == ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
    pts = np.array([[1.0, 2.0], [-3.0, 0.5]])
    out = apply_features(pts, list(FEATURES))
    a, b = pts[:, 0], pts[:, 1]
    expected = np.stack([a, b, a * a, b * b, a * b, np.sin(a), np.sin(b)], axis=1)
    np.testing.assert_allclose(out, expected)
    assert out.shape == (2, 7) and out.dtype == np.float64


def test_apply_features_keeps_order_and_float32() -> None:
    pts = np.array([[1.0, 2.0]], dtype=np.float32)
    out = apply_features(pts, ["x1*x2", "x1"])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[2.0, 1.0]])


def test_apply_features_on_one_dimensional_inputs() -> None:
    x = np.array([[0.5], [2.0]])
    out = apply_features(x, ["x1", "x1^2", "sin(x1)"])
    np.testing.assert_allclose(out, np.concatenate([x, x**2, np.sin(x)], axis=1))
    with pytest.raises(DatasetError, match="1-D data, got 'x2'") as info:
        apply_features(x, ["x1", "x2"])
    assert info.value.field == "features"


@pytest.mark.parametrize(
    ("features", "words"),
    [
        (["x3"], ["x1", "'x3'"]),
        (["X1"], ["'X1'"]),
        ([], ["at least one"]),
        (["x1", "x1"], ["once", "x1"]),
    ],
)
def test_apply_features_refuses_bad_lists(features: list[str], words: list[str]) -> None:
    with pytest.raises(DatasetError) as info:
        apply_features(np.zeros((3, 2)), features)
    assert info.value.field == "features"
    for word in words:
        assert word in str(info.value)


def test_apply_features_refuses_bad_shapes() -> None:
    with pytest.raises(DatasetError, match=r"\(n, 2\) or \(n, 1\), got \(3, 3\)"):
        apply_features(np.zeros((3, 3)), ["x1"])


# --------------------------------------------------------------------------- drawn points

DRAWN = [[-1.0, -1.0, 0], [-2.0, -1.5, 0], [-1.5, -3.0, 0], [1.0, 1.0, 1], [2.0, 2.5, 1]]
DRAWN += [[3.0, 1.0, 1]]


def test_points_dataset() -> None:
    ds = make_dataset(cfg("points", points=DRAWN, test_fraction=0.34), seed=0)
    assert ds.task == "binary" and ds.num_classes == 2 and ds.is_2d
    assert len(ds.x_train) == 4 and len(ds.x_test) == 2
    assert set(ds.y_test) == {0, 1}  # stratified
    rows = sorted(map(tuple, np.concatenate([all_x(ds), all_y(ds)[:, None]], axis=1).tolist()))
    assert rows == sorted(map(tuple, np.asarray(DRAWN, dtype=float).tolist()))
    assert ds.y_train.dtype == np.int64
    assert ds.domain == ((-6.0, 6.0), (-6.0, 6.0))


@pytest.mark.parametrize(
    ("points", "words"),
    [
        (None, ["got none"]),
        (DRAWN[:3], ["at least 4", "got 3"]),
        ([*DRAWN[:4], [0.0, 0.0, 2]], ["0 or 1", "got 2"]),
        ([*DRAWN[:4], [0.0, 0.0, 0.5]], ["0 or 1", "got 0.5"]),
        ([[1.0, 2.0]] * 5, ["[x1, x2, label]", "(5, 2)"]),
        ([*DRAWN[:4], [float("nan"), 0.0, 1]], ["finite"]),
        ([*DRAWN[:4], ["a", 0.0, 1]], ["numbers"]),
    ],
)
def test_points_dataset_refuses_bad_points(points: object, words: list[str]) -> None:
    with pytest.raises(DatasetError) as info:
        make_dataset(cfg("points", points=points), seed=0)
    assert info.value.field == "dataset.points"
    for word in words:
        assert word in str(info.value)


# --------------------------------------------------------------------------- uploads


def uploads_of(*arrays: object):  # type: ignore[no-untyped-def]
    def lookup(upload_id: str) -> tuple[np.ndarray, ...]:
        if upload_id != "abc":
            raise KeyError(upload_id)
        return arrays  # type: ignore[return-value]

    return lookup


def test_upload_with_integer_labels_is_classification() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.where(x[:, 0] > 0, 1, -1)
    ds = make_dataset(cfg("upload:abc"), seed=0, uploads=uploads_of(x, y))
    assert ds.task == "binary" and ds.num_classes == 2
    assert ds.class_names == ["-1", "1"]
    assert ds.input_names == ["x1", "x2", "x3"] and ds.domain is None and not ds.is_2d
    xs, ys = all_x(ds), all_y(ds)
    # Rows stay paired with their labels through the split.
    np.testing.assert_array_equal(ys, (xs[:, 0] > 0).astype(np.int64))


def test_upload_multiclass_and_float_labels() -> None:
    x = np.arange(60, dtype=np.float64).reshape(30, 2)
    y = np.repeat([0.0, 1.0, 2.0], 10)
    ds = make_dataset(cfg("upload:abc"), seed=0, uploads=uploads_of(x, y, ["a", "b"]))
    assert ds.task == "multiclass" and ds.num_classes == 3
    assert ds.class_names == ["0", "1", "2"] and ds.input_names == ["a", "b"]
    assert ds.is_2d and ds.domain is not None
    (lo1, hi1), (lo2, hi2) = ds.domain
    assert lo1 < 0 < 58 < hi1 and lo2 < 1 < 59 < hi2


def test_upload_with_real_targets_is_regression() -> None:
    x = np.linspace(0, 1, 20)  # 1-D X becomes one column
    y = x**2
    ds = make_dataset(cfg("upload:abc"), seed=0, uploads=uploads_of(x, y))
    assert ds.task == "regression" and ds.num_classes == 1
    assert ds.x_train.shape[1:] == (1,) and ds.y_train.shape[1:] == (1,)
    np.testing.assert_allclose(all_y(ds)[:, 0], all_x(ds)[:, 0] ** 2)


def test_upload_with_many_integer_values_is_regression() -> None:
    x = np.arange(50, dtype=np.float64)[:, None]
    ds = make_dataset(cfg("upload:abc"), seed=0, uploads=uploads_of(x, np.arange(50)))
    assert ds.task == "regression"


def test_upload_of_images() -> None:
    x = np.random.default_rng(0).uniform(size=(12, 8, 8))
    y = np.arange(12) % 3
    ds = make_dataset(cfg("upload:abc"), seed=0, uploads=uploads_of(x, y))
    assert ds.is_image and ds.x_train.shape[1:] == (1, 8, 8) and ds.input_names == ["image"]


@pytest.mark.parametrize(
    ("name", "arrays", "field", "words"),
    [
        ("upload:zzz", (np.zeros((5, 2)), np.arange(5)), "dataset.name", ["'zzz'"]),
        ("upload:", (np.zeros((5, 2)), np.arange(5)), "dataset.name", ["upload:<id>"]),
        ("upload:abc", (np.zeros((5, 2)), np.arange(4)), "upload", ["(5,)", "(4,)"]),
        ("upload:abc", (np.zeros((3, 2)), np.arange(3)), "upload", ["at least 4", "got 3"]),
        ("upload:abc", (np.zeros((5, 2)), np.ones(5)), "upload", ["2 classes"]),
        ("upload:abc", (np.zeros((5, 2), dtype=object), np.arange(5)), "upload", ["object"]),
        ("upload:abc", (np.full((5, 2), np.nan), np.arange(5)), "upload", ["finite"]),
        ("upload:abc", (np.zeros((5, 2, 2, 2, 2)), np.arange(5)), "upload", ["(n, d)"]),
    ],
)
def test_upload_errors(name: str, arrays: tuple, field: str, words: list[str]) -> None:
    with pytest.raises(DatasetError) as info:
        make_dataset(cfg(name), seed=0, uploads=uploads_of(*arrays))
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)


def test_upload_without_an_uploads_source() -> None:
    with pytest.raises(DatasetError, match="not available") as info:
        make_dataset(cfg("upload:abc"), seed=0)
    assert info.value.field == "dataset.name"


def test_upload_from_csv_round_trip() -> None:
    rows = "\n".join(f"{i},{i % 2},{i % 2}" for i in range(10))
    x, y, names = load_csv(f"a,b,label\n{rows}\n".encode(), None)
    ds = make_dataset(cfg("upload:abc"), seed=1, uploads=uploads_of(x, y, names))
    assert ds.task == "binary" and ds.input_names == ["a", "b"]
