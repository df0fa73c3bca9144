"""pylstm.losses: cross_entropy (a C++ kernel), mse and binary_cross_entropy_with_logits.

* the C++ cross-entropy against pylstm.reference (float64 to ~1e-12; float32 within the documented bound) on every
  ISA, over class counts that leave SIMD tails, and bitwise the same on one and two threads;
* every loss against torch.nn.functional (values and gradients), with ignore_index, label smoothing, reductions,
  lengths, and logits far too large for a naive softmax;
* gradients by central differences; argument errors naming the argument.
"""
import numpy as np
import pytest
import torch

import pylstm
from pylstm import functional as F
from pylstm import losses
from pylstm import reference as ref

from compare import central_differences

F64 = dict(rtol=1e-12, atol=1e-14)
# float32 cross-entropy against the float64 truth, every ISA: the loss within 1e-7 of max(1, |loss|) (measured up to
# 8.2e-9: the loss is summed in double), every gradient element within 2e-6 of 1/N, the largest a mean's gradient
# element can be over N rows (measured up to 6.9e-7).
F32_LOSS_TOL, F32_GRAD_TOL = 1e-7, 2e-6
CLASSES = [1, 2, 7, 8, 15, 16, 17, 33, 96, 1000]


def problem(rng, rows, classes, dtype, scale=3.0):
    logits = (scale * rng.standard_normal((rows, classes))).astype(dtype)
    targets = rng.integers(0, classes, rows)
    return logits, targets


def torch_ce(logits, targets, **kw):
    lt = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(lt.reshape(-1, logits.shape[-1]), torch.tensor(targets).reshape(-1), **kw)
    loss.sum().backward()
    return loss.detach().numpy(), lt.grad.numpy()


@pytest.mark.parametrize("classes", CLASSES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_reference_float64(isa, classes, smoothing, reduction):
    rng = np.random.default_rng(classes)
    logits, targets = problem(rng, 13, classes, np.float64)
    targets[[2, 5]] = -100  # ignored rows
    got = F.cross_entropy(logits, targets, label_smoothing=smoothing, reduction=reduction)
    want = ref.cross_entropy(logits, targets, label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(got[0], want[0], **F64)
    np.testing.assert_allclose(got[1], want[1], **F64)
    assert not got[1][[2, 5]].any()


@pytest.mark.parametrize("classes", CLASSES)
def test_cross_entropy_float32_within_documented_bound(isa, classes):
    rng = np.random.default_rng(classes + 1)
    logits, targets = problem(rng, 50, classes, np.float32, scale=10.0)
    loss, grad = F.cross_entropy(logits, targets, label_smoothing=0.05)
    loss64, grad64 = ref.cross_entropy(logits.astype(np.float64), targets, label_smoothing=0.05)
    assert grad.dtype == np.float32
    assert abs(loss - loss64) <= F32_LOSS_TOL * max(1.0, abs(loss64))
    assert np.abs(grad - grad64).max() <= F32_GRAD_TOL / len(targets)


def test_cross_entropy_bitwise_same_on_one_and_two_threads(num_threads):
    rng = np.random.default_rng(2)
    logits, targets = problem(rng, 700, 10_000, np.float32)
    results = []
    for n in (1, 2):
        num_threads(n)
        results.append(F.cross_entropy(logits, targets))
    assert results[0][0] == results[1][0] and results[0][1].tobytes() == results[1][1].tobytes()


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"reduction": "none"}, {"ignore_index": 3},
                                {"label_smoothing": 0.2}, {"label_smoothing": 0.3, "ignore_index": 1},
                                {"label_smoothing": 1.0}], ids=str)
def test_cross_entropy_against_torch(kw):
    rng = np.random.default_rng(3)
    logits, targets = problem(rng, 40, 9, np.float64)
    loss, grad = losses.cross_entropy(logits, targets, **kw)
    loss_t, grad_t = torch_ce(logits, targets, **kw)
    np.testing.assert_allclose(loss, loss_t, **F64)
    np.testing.assert_allclose(grad, grad_t, **F64)


def test_cross_entropy_time_major_with_lengths_against_torch():
    """(T, B, V) logits with lengths: the mean is over the real tokens only, as torch over the unpadded tokens."""
    rng = np.random.default_rng(4)
    T, B, V = 6, 4, 11
    logits = rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, (T, B))
    lengths = np.array([6, 1, 3, 0])
    loss, grad = losses.cross_entropy(logits, targets, lengths=lengths)
    real = np.arange(T)[:, None] < lengths[None, :]
    loss_t, grad_t = torch_ce(logits[real], targets[real])
    np.testing.assert_allclose(loss, loss_t, **F64)
    np.testing.assert_allclose(grad[real], grad_t, **F64)
    assert not grad[~real].any()
    loss_bf, grad_bf = losses.cross_entropy(logits.transpose(1, 0, 2), targets.T, lengths=lengths, batch_first=True)
    np.testing.assert_allclose(loss_bf, loss, **F64)
    np.testing.assert_allclose(grad_bf, grad.transpose(1, 0, 2), **F64)


def test_cross_entropy_is_stable_for_huge_logits(isa):
    rng = np.random.default_rng(5)
    logits = rng.standard_normal((8, 20))
    targets = rng.integers(0, 20, 8)
    base = losses.cross_entropy(logits, targets)
    for offset in (1e4, -1e4, 3e5):
        shifted = losses.cross_entropy(logits + offset, targets)  # softmax is shift-invariant
        np.testing.assert_allclose(shifted[0], base[0], rtol=1e-9)
        np.testing.assert_allclose(shifted[1], base[1], atol=1e-10)
    big = np.array([[1e30, 0.0, -1e30]])
    loss, grad = losses.cross_entropy(big, np.array([1]))
    loss_t, grad_t = torch_ce(big, np.array([1]))
    assert loss == loss_t == 1e30 and np.array_equal(grad, grad_t)


def test_cross_entropy_when_nothing_counts_is_nan_with_zero_gradient():
    logits = np.ones((3, 4))
    targets = np.full(3, -100)
    loss, grad = losses.cross_entropy(logits, targets)
    loss_t, _ = torch_ce(logits, targets)
    assert np.isnan(loss) and np.isnan(loss_t)
    assert not grad.any()
    assert losses.cross_entropy(logits, targets, reduction="sum")[0] == 0.0


def test_cross_entropy_nan_logits_give_nan():
    logits = np.zeros((2, 5))
    logits[1, 3] = np.nan
    loss, grad = losses.cross_entropy(logits, np.array([0, 1]), reduction="none")
    assert np.isfinite(loss[0]) and np.isnan(loss[1]) and np.isnan(grad[1]).all() and np.isfinite(grad[0]).all()


def test_cross_entropy_gradient_by_central_differences():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((3, 2, 5))
    targets = rng.integers(0, 5, (3, 2))
    targets[0, 1] = -100
    lengths = np.array([3, 2])

    def loss():
        return losses.cross_entropy(logits, targets, label_smoothing=0.1, lengths=lengths)[0]

    numeric = central_differences({"logits": logits}, loss)["logits"]
    np.testing.assert_allclose(losses.cross_entropy(logits, targets, label_smoothing=0.1, lengths=lengths)[1],
                               numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy_with_logits"])
def test_elementwise_losses_against_reference_and_torch(name, reduction):
    rng = np.random.default_rng(7)
    a = 5 * rng.standard_normal((4, 3, 2))
    b = rng.random((4, 3, 2)) if name != "mse" else rng.standard_normal((4, 3, 2))
    loss, grad = getattr(losses, name)(a, b, reduction=reduction)
    loss_r, grad_r = getattr(ref, name)(a, b, reduction=reduction)
    np.testing.assert_allclose(loss, loss_r, **F64)
    np.testing.assert_allclose(grad, grad_r, **F64)
    at = torch.tensor(a, requires_grad=True)
    fn = torch.nn.functional.mse_loss if name == "mse" else torch.nn.functional.binary_cross_entropy_with_logits
    lt = fn(at, torch.tensor(b), reduction=reduction)
    lt.sum().backward()
    np.testing.assert_allclose(loss, lt.detach().numpy(), **F64)
    np.testing.assert_allclose(grad, at.grad.numpy(), **F64)


def test_elementwise_loss_gradients_by_central_differences():
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 4)), rng.random((3, 4))
    for fn in (losses.mse, losses.binary_cross_entropy_with_logits):
        numeric = central_differences({"a": a}, lambda: fn(a, b)[0])["a"]
        np.testing.assert_allclose(fn(a, b)[1], numeric, rtol=1e-7, atol=1e-10)


def test_binary_cross_entropy_with_logits_is_stable():
    loss, grad = losses.binary_cross_entropy_with_logits(np.array([1e4, -1e4]), np.array([0.0, 1.0]),
                                                         reduction="none")
    np.testing.assert_allclose(loss, [1e4, 1e4])
    np.testing.assert_allclose(grad, [1.0, -1.0])


@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy_with_logits"])
def test_elementwise_losses_promote_a_wider_target(name):
    """A float64 target against float32 predictions is not cast down (1e39 would overflow float32): the loss is
    computed in float64, as NumPy and torch promote, and the gradient comes in the predictions' dtype. mse's values
    are then those of float64 predictions; the logistic loss computes its sigmoid in the predictions' dtype."""
    rng = np.random.default_rng(3)
    pred, target = rng.standard_normal(6).astype(np.float32), rng.random(6)
    target[0] = 1e20 if name == "mse" else 1e39  # beyond float32: its square, or itself
    fn = getattr(pylstm.losses, name)
    loss, grad = fn(pred, target)
    wide_loss, wide_grad = fn(pred.astype(np.float64), target)
    assert grad.dtype == np.float32 and np.isfinite(loss)
    if name == "mse":
        assert loss == wide_loss
        np.testing.assert_array_equal(grad, wide_grad.astype(np.float32))
    else:
        np.testing.assert_allclose(loss, wide_loss, rtol=1e-6)
        np.testing.assert_allclose(grad, wide_grad, rtol=1e-6, atol=1e-7)


def test_loss_argument_errors():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"targets: expected class indices in \[0, 4\).*got 4 at flat index 1"):
        losses.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"targets: expected shape \(3,\)"):
        losses.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match="targets: expected an array of integer class indices"):
        losses.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="reduction"):
        losses.cross_entropy(logits, np.array([0, 1, 2]), reduction="average")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.cross_entropy(logits, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="logits: expected shape"):
        losses.cross_entropy(np.zeros(4), np.array(1))
    with pytest.raises(TypeError, match="logits: expected dtype float32 or float64"):
        losses.cross_entropy(np.zeros((3, 4), np.int32), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="lengths: needs logits of shape"):
        losses.cross_entropy(logits, np.array([0, 1, 2]), lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"lengths: expected values in \[0, 3\] \(T = 3 steps in logits\)"):
        losses.cross_entropy(np.zeros((3, 2, 4)), np.zeros((3, 2), int), lengths=[1, 4])
    with pytest.raises(ValueError, match="target: expected the shape of pred"):
        losses.mse(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="ignore_index: expected an int"):
        losses.cross_entropy(logits, np.array([0, 1, 2]), ignore_index=1.0)
    with pytest.raises(ValueError, match="ignore_index: expected an int64"):
        losses.cross_entropy(logits, np.array([0, 1, 2]), ignore_index=2 ** 70)


def test_pylstm_exposes_losses():
    assert pylstm.losses is losses
