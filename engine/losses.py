"""Loss functions: the mean loss and its gradient dL/dpred in one pass (PyTorch definitions).

`mse` and `bce` compare a prediction with a target of the same shape; `cross_entropy` takes the
last layer's LOGITS and integer class labels, and returns dL/dlogits so the network can feed it to
`Layer.backward_preactivation` (softmax fused with cross-entropy, stable via log-sum-exp).
Gradients keep the prediction's dtype; targets are cast to it.
"""

from __future__ import annotations

import numpy as np


class Loss:
    """Base class: `loss(pred, target) -> (mean loss, dL/dpred)`."""

    name: str = ""

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"


def _same_shape_target(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return target as pred's dtype and shape; (batch,) is accepted for (batch, 1)."""
    target = np.asarray(target)
    if target.shape != pred.shape:
        if target.size == pred.size and target.ndim >= 1 and target.shape[0] == pred.shape[0]:
            target = target.reshape(pred.shape)
        else:
            raise ValueError(f"target shape: expected {pred.shape}, got {target.shape}")
    return target.astype(pred.dtype, copy=False)


class MSELoss(Loss):
    """Mean over all elements of (pred - target)^2 (torch.nn.MSELoss)."""

    name = "mse"

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        target = _same_shape_target(pred, target)
        diff = pred - target  # (batch, ...)
        n = diff.size
        value = float(np.vdot(diff, diff)) / n
        diff *= 2.0 / n  # dL/dpred
        return value, diff


class BCELoss(Loss):
    """Binary cross-entropy on probabilities, mean over all elements (torch.nn.BCELoss).

    pred is clipped to [eps, 1 - eps] (eps 1e-7 for float32, 1e-12 for float64) so the logs stay
    finite; the gradient is evaluated at the clipped value (straight through the clip), so a
    saturated sigmoid still gets a finite, non-zero push back.
    """

    name = "bce"

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        target = _same_shape_target(pred, target)
        eps = 1e-7 if pred.dtype == np.float32 else 1e-12
        p = np.clip(pred, eps, 1.0 - eps)  # (batch, ...)
        q = 1 - p
        log_p = np.log(p)
        log_q = np.log(q)
        n = p.size
        # -mean(t log p + (1 - t) log q) as two dot products of same-sign terms: no cancellation
        value = -(float(np.vdot(target, log_p)) + float(np.vdot(1 - target, log_q))) / n
        grad = p - target
        q *= p
        q *= n
        grad /= q  # (p - t) / (p (1 - p) n)
        return value, grad


class CrossEntropyLoss(Loss):
    """Mean NLL of log-softmax(logits) at integer labels (torch.nn.CrossEntropyLoss).

    Returns dL/dlogits = (softmax(logits) - onehot(target)) / batch.
    """

    name = "cross_entropy"

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        if pred.ndim != 2:
            raise ValueError(f"cross_entropy logits: expected (batch, classes), got {pred.shape}")
        batch, classes = pred.shape
        labels = _class_labels(target, batch, classes)
        rows = np.arange(batch)
        shifted = pred - np.max(pred, axis=1, keepdims=True)  # (batch, classes), max is 0
        probs = np.exp(shifted)
        total = np.add.reduce(probs, axis=1)  # (batch,), each >= 1
        log_likelihood = shifted[rows, labels] - np.log(total)  # (batch,)
        value = -float(np.add.reduce(log_likelihood, axis=None)) / batch
        probs /= total[:, None]  # softmax
        probs[rows, labels] -= 1
        probs /= batch  # dL/dlogits
        return value, probs


def _class_labels(target: np.ndarray, batch: int, classes: int) -> np.ndarray:
    """Validate target as `batch` integer labels in [0, classes) and return them as intp."""
    target = np.asarray(target)
    if target.shape != (batch,):
        if target.size == batch and target.ndim >= 1 and target.shape[0] == batch:
            target = target.reshape(batch)
        else:
            raise ValueError(f"cross_entropy target shape: expected ({batch},), got {target.shape}")
    if target.dtype.kind not in "iu":
        if target.dtype.kind not in "fb" or not np.array_equal(target, np.round(target)):
            raise ValueError(
                f"cross_entropy target: expected integer class labels, got dtype {target.dtype}"
            )
        target = target.astype(np.intp)
    if batch and (target.min() < 0 or target.max() >= classes):
        raise ValueError(
            f"cross_entropy target: expected labels in [0, {classes - 1}], "
            f"got range [{target.min()}, {target.max()}]"
        )
    return target


_LOSSES: dict[str, Loss] = {loss.name: loss for loss in (MSELoss(), BCELoss(), CrossEntropyLoss())}
LOSS_NAMES: tuple[str, ...] = tuple(_LOSSES)  # the allowed loss names


def get_loss(name: str) -> Loss:
    """Return the singleton loss called `name` (one of LOSS_NAMES)."""
    try:
        return _LOSSES[name]
    except (KeyError, TypeError):
        allowed = ", ".join(LOSS_NAMES)
        raise ValueError(f"unknown loss {name!r}: expected one of {allowed}") from None
