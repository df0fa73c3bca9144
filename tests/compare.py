"""What the tests share for comparing results: float64 elementwise, float32 relative to the compared array's scale,
and gradients by central differences.

float32 results differ from their oracle by rounding that grows with the magnitudes involved, so the float32 error is
stated as max |actual - expected| / max(1, max |expected|); each test file passes the tolerances it measured.
"""
import numpy as np


def max_scaled_error(actual, expected):
    """max |actual - expected| / max(1, max |expected|)."""
    expected = np.asarray(expected, dtype=np.float64)
    err = np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected), initial=0.0)
    return err / max(1.0, np.max(np.abs(expected), initial=0.0))


def assert_close(actual, expected, dtype, what, *, f64_tol, f32_of_scale):
    """actual (of `dtype`) against expected: np.testing.assert_allclose(**f64_tol) for float64, else
    max_scaled_error <= f32_of_scale."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}"
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(actual, expected, err_msg=what, **f64_tol)
    else:
        err = max_scaled_error(actual, expected)
        assert err <= f32_of_scale, f"{what}: scaled max error {err:.3g} > {f32_of_scale:g}"


def central_differences(arrays, loss_of, eps=1e-6):
    """name -> d loss / d array by central differences, perturbing each entry of each array in place (and
    restoring it); loss_of() computes the loss from the arrays' current values."""
    result = {}
    for name, array in arrays.items():
        grad = np.empty_like(array)
        for idx in np.ndindex(array.shape):
            orig = array[idx]
            array[idx] = orig + eps
            plus = loss_of()
            array[idx] = orig - eps
            minus = loss_of()
            array[idx] = orig
            grad[idx] = (plus - minus) / (2 * eps)
        result[name] = grad
    return result
