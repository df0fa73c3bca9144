"""docs/interop.md's conversion functions, run as written: ONNX Runtime computes what pylstm computes from the
exported tensors, and the Keras conversion gives back a layer with pylstm's outputs."""
import re
from pathlib import Path

import numpy as np
import pytest

import pylstm

DOC = Path(__file__).resolve().parents[1] / "docs" / "interop.md"


@pytest.fixture(scope="module")
def conv():
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    namespace = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def onnx_outputs(kind, nodes, x, hidden, extra_attributes):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper
    directions = nodes["W"].shape[0]
    names = ["X", "W", "R", "B"] + (["", "", "", "P"] if "P" in nodes else [])  # P follows sequence_lens, initial_h/c
    node = helper.make_node(kind, names, ["Y"], hidden_size=hidden,
                            direction="bidirectional" if directions == 2 else "forward", **extra_attributes)
    inits = [numpy_helper.from_array(nodes[k].astype(np.float32), k) for k in ("W", "R", "B", "P") if k in nodes]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"X": x})
    T, D, B, H = y.shape
    return y.transpose(0, 2, 1, 3).reshape(T, B, D * H)  # as the doc says: pylstm's out


@pytest.mark.parametrize("kind, layer, attributes", [
    ("LSTM", lambda: pylstm.LSTM(5, 7, bidirectional=True, peepholes=True, seed=1), {}),
    ("GRU", lambda: pylstm.GRU(5, 7, seed=2), {"linear_before_reset": 1}),
    ("GRU", lambda: pylstm.GRU(5, 7, bidirectional=True, reset_after=False, seed=3), {"linear_before_reset": 0}),
])
def test_onnx_runtime_computes_what_pylstm_computes_from_the_exported_tensors(conv, kind, layer, attributes):
    m = layer().eval()
    rng = np.random.default_rng(0)
    for name, p in m.params.items():  # peepholes start at zero: give every tensor values that matter
        p[...] = rng.uniform(-0.5, 0.5, p.shape)
    x = rng.standard_normal((6, 3, 5)).astype(np.float32)
    nodes = conv["to_onnx"](m.state_dict(), kind, k=0)
    np.testing.assert_allclose(onnx_outputs(kind, nodes, x, 7, attributes), m(x)[0], rtol=1e-5, atol=1e-5)
    back = conv["from_onnx"](**nodes, kind=kind)
    assert back.keys() == m.state_dict().keys()
    for name, a in back.items():
        np.testing.assert_array_equal(a, m.state_dict()[name])


@pytest.mark.parametrize("kind, layer", [("LSTM", lambda: pylstm.LSTM(4, 6, dtype="float64", seed=4)),
                                         ("GRU", lambda: pylstm.GRU(4, 6, dtype="float64", seed=5)),
                                         ("GRU", lambda: pylstm.GRU(4, 6, reset_after=False, dtype="float64", seed=6))])
def test_keras_tensors_convert_back_to_a_layer_with_the_same_outputs(conv, kind, layer):
    m = layer().eval()
    reset_after = m.config().get("reset_after", True)
    kernel, recurrent, bias = conv["to_keras"](m.state_dict(), kind, reset_after=reset_after)
    G = 4 if kind == "LSTM" else 3
    assert kernel.shape == (4, G * 6) and recurrent.shape == (6, G * 6)
    assert bias.shape == ((2, G * 6) if kind == "GRU" and reset_after else (G * 6,))
    copy = layer().eval()
    copy.load_state_dict(conv["from_keras"](kernel, recurrent, bias, kind=kind))
    x = np.random.default_rng(1).standard_normal((5, 2, 4))
    np.testing.assert_allclose(copy(x)[0], m(x)[0], rtol=1e-12, atol=1e-13)


def test_conversions_refuse_what_the_target_cannot_hold(conv):
    """Keras has neither peepholes nor a projection and ONNX no projection: exporting such a layer is an error, not
    a layer that computes something else; a GRU's export needs its reset_after (the two forms differ)."""
    with pytest.raises(ValueError, match="Keras has neither peepholes nor a projection"):
        conv["to_keras"](pylstm.LSTM(3, 4, peepholes=True).state_dict(), "LSTM")
    with pytest.raises(ValueError, match="Keras has neither peepholes nor a projection"):
        conv["to_keras"](pylstm.LSTM(3, 4, proj_size=2).state_dict(), "LSTM")
    with pytest.raises(ValueError, match="an ONNX LSTM has no projection"):
        conv["to_onnx"](pylstm.LSTM(3, 4, proj_size=2).state_dict(), "LSTM")
    with pytest.raises(ValueError, match="reset_after: give the pylstm layer's"):
        conv["to_keras"](pylstm.GRU(3, 4).state_dict(), "GRU")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_keras_export_of_a_layer_without_biases_has_zero_biases(conv, kind):
    cls = pylstm.LSTM if kind == "LSTM" else pylstm.GRU
    m = cls(4, 6, bias=False, dtype="float64", seed=7).eval()
    kernel, recurrent, bias = conv["to_keras"](m.state_dict(), kind, reset_after=True)
    assert bias.dtype == np.float64 and not bias.any()
    copy = cls(4, 6, dtype="float64", seed=8).eval()
    copy.load_state_dict(conv["from_keras"](kernel, recurrent, bias, kind=kind))
    x = np.random.default_rng(2).standard_normal((5, 2, 4))
    np.testing.assert_allclose(copy(x)[0], m(x)[0], rtol=1e-12, atol=1e-13)
