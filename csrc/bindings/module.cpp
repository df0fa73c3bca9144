// pylstm._core: the Python face of the C++ kernels (the sequence kernels here; training and optimizers in
// bindings/training.cpp and bindings/optim.cpp, which add their functions to the same module).
// Each binding only checks its arguments, allocates the outputs as NumPy arrays, releases the GIL and calls the
// kernel. Errors name the argument as pylstm.functional names it, with what was expected and what came.
// Arrays are never converted: a wrong dtype, shape or layout is an error, not a silent copy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "bindings/interrupt.h"
#include "bindings/parts.h"
#include "primitives/buffers.h"
#include "primitives/cache_sizes.h"
#include "primitives/cpu.h"
#include "primitives/isa.h"
#include "primitives/ops.h"
#include "primitives/parallel.h"
#include "primitives/workspace.h"
#include "cells/gru/gru.h"
#include "cells/lstm/lstm.h"
#include "cells/rnn/rnn.h"
#include "sequence/outputs.h"
#include "sequence/scheduling.h"

namespace py = pybind11;

namespace pylstm {
namespace {

// Checks arguments against one another and remembers the byte ranges of the inputs, so that no output may overlap
// an input (that would be a silent wrong answer).
class ArgChecker {
 public:
  // The first array sets the dtype every other array must have.
  explicit ArgChecker(const char* cell) : cell_(cell) {}

  // Any C-contiguous float32/float64 array: sets the dtype.
  py::array any_float(const py::object& obj, const char* name) {
    py::array a = first_array(obj, name);
    check_layout(a, name);
    return a;
  }

  // weight_hh (G*H, H): sets the dtype and H.
  py::array weight_hh(const py::object& obj, int64_t gates) {
    py::array a = first_array(obj, "weight_hh");
    if (a.ndim() != 2 || a.shape(0) != gates * a.shape(1))
      throw py::value_error("weight_hh: expected shape (" + std::to_string(gates) + "*H, H) for " + cell_ +
                            ", got " + shape_str(shape_of(a)));
    hidden_ = a.shape(1);
    check_layout(a, "weight_hh");
    add_input(a, "weight_hh");
    return a;
  }

  // A projected LSTM's weight_hh (4H, P) and weight_hr (P, H): sets the dtype, H and P.
  std::pair<py::array, py::array> projected_recurrent(const py::object& w_hh, const py::object& w_hr) {
    py::array hh = first_array(w_hh, "weight_hh");
    py::array hr = ndarray(w_hr, "weight_hr");
    dtype(hr, "weight_hr");
    if (hr.ndim() != 2 || hr.shape(0) < 1 || hr.shape(1) < 1)
      throw py::value_error("weight_hr: expected shape (P, H) (projection size, hidden size), got " +
                            shape_str(shape_of(hr)));
    proj_ = hr.shape(0);
    hidden_ = hr.shape(1);
    if (hh.ndim() != 2 || hh.shape(0) != kLstmGates * hidden_ || hh.shape(1) != proj_)
      throw py::value_error("weight_hh: expected shape " + shape_str({kLstmGates * hidden_, proj_}) +
                            " (4*H, P with weight_hr of shape (P, H)), got " + shape_str(shape_of(hh)));
    check_layout(hh, "weight_hh");
    check_layout(hr, "weight_hr");
    add_input(hh, "weight_hh");
    add_input(hr, "weight_hr");
    return {hh, hr};
  }

  // The three peephole weights (H,) each, or all None.
  std::vector<py::array> peepholes(const py::object& p_i, const py::object& p_f, const py::object& p_o) {
    if (p_i.is_none() && p_f.is_none() && p_o.is_none()) return {absent(), absent(), absent()};
    if (p_i.is_none() || p_f.is_none() || p_o.is_none())
      throw py::value_error("peepholes: expected all three of p_i, p_f, p_o or none, got some None");
    return {input(p_i, "peepholes[0] (p_i)", {hidden_}), input(p_f, "peepholes[1] (p_f)", {hidden_}),
            input(p_o, "peepholes[2] (p_o)", {hidden_})};
  }

  // The sequence x: (T, B, I) when batch_sizes is None; else the packed rows (N, I) of batch_sizes (T,), int64,
  // non-increasing, each in [0, B] with B = h0.shape[0], summing to N. Sets T, B and the layout.
  py::array sequence(const py::object& x_obj, const py::object& batch_sizes, const py::object& h0) {
    if (batch_sizes.is_none()) return x(x_obj);
    py::array bs = ndarray(batch_sizes, "batch_sizes");
    if (!same_dtype(bs.dtype(), py::dtype::of<int64_t>()))
      throw py::type_error("batch_sizes: expected dtype int64, got " + dtype_str(bs));
    if (bs.ndim() != 1) throw py::value_error("batch_sizes: expected shape (T,), got " + shape_str(shape_of(bs)));
    check_layout(bs, "batch_sizes");
    py::array h = ndarray(h0, "h0");
    if (h.ndim() != 2) throw py::value_error("h0: expected shape (B, P), got " + shape_str(shape_of(h)));
    const int64_t B = h.shape(0), T_ = bs.shape(0);
    // The call's own copy, checked and then used: the kernels read it without the GIL, and another thread could change
    // the caller's array after the check (rows past the batch would be read and written out of bounds).
    // (new[] of 0 values still gives a pointer: a null batch_sizes_ would mean the uniform layout.)
    batch_sizes_copy_ = std::make_unique<int64_t[]>(static_cast<size_t>(T_));
    std::copy_n(static_cast<const int64_t*>(bs.data()), T_, batch_sizes_copy_.get());
    const int64_t* v = batch_sizes_copy_.get();
    int64_t total = 0;
    for (int64_t k = 0; k < T_; ++k) {
      if (v[k] < 0 || v[k] > B)
        throw py::value_error("batch_sizes: expected values in [0, " + std::to_string(B) +
                              "] (B = h0.shape[0]), got " + std::to_string(v[k]) + " at index " + std::to_string(k));
      if (k > 0 && v[k] > v[k - 1])
        throw py::value_error("batch_sizes: expected non-increasing values, got " + std::to_string(v[k - 1]) +
                              " then " + std::to_string(v[k]) + " at index " + std::to_string(k));
      total += v[k];
    }
    py::array a = ndarray(x_obj, "x");
    dtype(a, "x");
    if (a.ndim() != 2 || a.shape(0) != total || a.shape(1) != input_)
      throw py::value_error("x: expected shape " + shape_str({total, input_}) +
                            " (packed rows: N = sum(batch_sizes), I = weight_ih.shape[1]), got " +
                            shape_str(shape_of(a)));
    check_layout(a, "x");
    add_input(a, "x");
    add_input(bs, "batch_sizes");
    steps_ = T_;
    batch_ = B;
    batch_sizes_ = v;
    packed_rows_ = total;
    return a;
  }

  // The shape of a per-row array of the sequence with `width` columns: (T, B, width) or (N, width).
  std::vector<int64_t> per_row(int64_t width) const {
    if (batch_sizes_ != nullptr) return {packed_rows_, width};
    return {steps_, batch_, width};
  }

  // weight_ih (G*H, I): sets I.
  py::array weight_ih(const py::object& obj, int64_t gates) {
    py::array a = ndarray(obj, "weight_ih");
    dtype(a, "weight_ih");
    if (a.ndim() != 2 || a.shape(0) != gates * hidden_)
      throw py::value_error("weight_ih: expected shape (" + std::to_string(gates * hidden_) +
                            ", I) (G*H rows, H = weight_hh.shape[1] = " + std::to_string(hidden_) + "), got " +
                            shape_str(shape_of(a)));
    input_ = a.shape(1);
    check_layout(a, "weight_ih");
    add_input(a, "weight_ih");
    return a;
  }

  // x (T, B, I): sets T and B.
  py::array x(const py::object& obj, const char* name = "x") {
    py::array a = ndarray(obj, name);
    dtype(a, name);
    if (a.ndim() != 3 || a.shape(2) != input_)
      throw py::value_error(std::string(name) + ": expected shape (T, B, " + std::to_string(input_) +
                            ") (input size from weight_ih.shape[1]), got " + shape_str(shape_of(a)));
    steps_ = a.shape(0);
    batch_ = a.shape(1);
    check_layout(a, name);
    add_input(a, name);
    return a;
  }

  // An input of a fixed shape.
  py::array input(const py::object& obj, const char* name, const std::vector<int64_t>& shape) {
    py::array a = shaped(obj, name, shape);
    add_input(a, name);
    return a;
  }

  // An optional input: None gives a null array.
  py::array optional_input(const py::object& obj, const char* name, const std::vector<int64_t>& shape) {
    return obj.is_none() ? absent() : input(obj, name, shape);
  }

  // The bias pair: both arrays of shape (G*H,) or both None.
  std::pair<py::array, py::array> biases(const py::object& b_ih, const py::object& b_hh, int64_t gates) {
    check_both_or_none(b_ih, b_hh, "bias_ih", "bias_hh");
    return {optional_input(b_ih, "bias_ih", {gates * hidden_}), optional_input(b_hh, "bias_hh", {gates * hidden_})};
  }

  // An array the kernel adds into (a gradient accumulator): also writeable and disjoint from every input and every
  // other output.
  py::array accumulator(const py::object& obj, const char* name, const std::vector<int64_t>& shape) {
    py::array a = shaped(obj, name, shape);
    check_writeable(a, name);
    const auto r = byte_range(a);
    for (const auto& [other, other_name] : outputs_)
      if (overlap(r, other))
        throw py::value_error(std::string(name) + ": must not share memory with " + other_name);
    for (const auto& [in, in_name] : inputs_)
      if (overlap(r, in))
        throw py::value_error(std::string(name) + ": must not share memory with " + in_name +
                              ", an input of this call (it is written while " + std::string(in_name) + " is read)");
    outputs_.push_back({r, name});
    return a;
  }

  py::array optional_accumulator(const py::object& obj, const char* name, const std::vector<int64_t>& shape) {
    return obj.is_none() ? absent() : accumulator(obj, name, shape);
  }

  // The bias gradients' pair: both accumulators of shape (G*H,) or both None.
  std::pair<py::array, py::array> bias_grads(const py::object& db_ih, const py::object& db_hh, int64_t gates) {
    check_both_or_none(db_ih, db_hh, "dbias_ih", "dbias_hh");
    return {optional_accumulator(db_ih, "dbias_ih", {gates * hidden_}),
            optional_accumulator(db_hh, "dbias_hh", {gates * hidden_})};
  }

  // A new output array (bindings/checks.h), of this call's dtype T.
  template <typename T>
  py::array_t<T> output(const std::vector<int64_t>& shape) const {
    return new_output<T>(shape);
  }

  // A training output: a new array when `training`, else None (and a null pointer for the kernel).
  template <typename T>
  std::pair<py::object, T*> training_output(bool training, const std::vector<int64_t>& shape) const {
    if (!training) return {py::none(), nullptr};
    py::array_t<T> a = output<T>(shape);
    T* data = a.mutable_data();
    return {std::move(a), data};
  }

  bool is_double() const { return same_dtype(dtype_, py::dtype::of<double>()); }
  // No batch rows or no hidden units: the outputs have no elements (the final states are empty too) and the call has
  // nothing to compute, so it returns before the time loop, which would still take its T steps.
  bool nothing_to_compute() const { return batch_ == 0 || hidden_ == 0; }
  // The multiply-adds of a forward pass with `gates` gate blocks (as a double: it may exceed int64).
  double forward_work(int64_t gates) const {
    const double rows = batch_sizes_ != nullptr ? double(packed_rows_) : double(steps_) * double(batch_);
    return rows * double(hidden_) * (double(gates) * double(input_ + P()) + (proj_ > 0 ? double(proj_) : 0.0));
  }
  double backward_work(int64_t gates) const { return 2 * forward_work(gates); }  // (dx and the weight gradients)
  SeqShape shape() const { return {steps_, batch_, input_, hidden_, batch_sizes_, proj_}; }
  int64_t T() const { return steps_; }
  int64_t B() const { return batch_; }
  int64_t I() const { return input_; }
  int64_t H() const { return hidden_; }
  int64_t P() const { return proj_ > 0 ? proj_ : hidden_; }  // the width of h

 private:
  // The array that sets the call's dtype: float32 or float64.
  py::array first_array(const py::object& obj, const char* name) {
    py::array a = ndarray(obj, name);
    check_float_dtype(a, name);
    dtype_ = a.dtype();
    return a;
  }

  // An ndarray of this call's dtype, of a fixed shape, C-contiguous and aligned.
  py::array shaped(const py::object& obj, const char* name, const std::vector<int64_t>& shape) const {
    py::array a = ndarray(obj, name);
    dtype(a, name);
    if (shape_of(a) != shape)
      throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " +
                            shape_str(shape_of(a)));
    check_layout(a, name);
    return a;
  }

  void dtype(const py::array& a, const char* name) const {
    if (!same_dtype(a.dtype(), dtype_))
      throw py::type_error(std::string(name) + ": expected dtype " + py::str(dtype_).cast<std::string>() +
                           " (the dtype of weight_hh), got " + dtype_str(a));
  }

  // `name`: a string literal (kept as a pointer: no allocation per argument of a batch-1 step).
  void add_input(const py::array& a, const char* name) { inputs_.push_back({byte_range(a), name}); }

  std::string cell_;
  py::dtype dtype_ = py::dtype::of<float>();
  int64_t steps_ = 0, batch_ = 0, input_ = 0, hidden_ = 0, proj_ = 0, packed_rows_ = 0;
  const int64_t* batch_sizes_ = nullptr;  // batch_sizes_copy_'s values
  std::unique_ptr<int64_t[]> batch_sizes_copy_;
  std::vector<std::pair<ByteRange, const char*>> inputs_;
  std::vector<std::pair<ByteRange, std::string>> outputs_;
};

// set_num_threads' argument: an int (or an integer type with __index__, as NumPy's), not a bool, in
// [1, kMaxThreads]; TypeError or ValueError naming n otherwise (also for ints beyond C++'s range).
int thread_count(const py::object& n) {
  const std::string expected = "n: expected an int in [1, " + std::to_string(kMaxThreads) + "]";
  const bool is_bool = PyBool_Check(n.ptr()) || type_name(n) == "bool" || type_name(n) == "bool_";
  if (is_bool || !PyIndex_Check(n.ptr())) throw py::type_error(expected + ", got " + type_name(n));
  PyObject* index = PyNumber_Index(n.ptr());
  if (index == nullptr) {
    PyErr_Clear();
    throw py::type_error(expected + ", got " + type_name(n));
  }
  const py::object value = py::reinterpret_steal<py::object>(index);
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  if (overflow != 0 || v < 1 || v > kMaxThreads)
    throw py::value_error(expected + ", got " + py::str(value).cast<std::string>());
  return static_cast<int>(v);
}

Nonlinearity parse_nonlinearity(const std::string& name) {
  if (name == "tanh") return Nonlinearity::kTanh;
  if (name == "relu") return Nonlinearity::kRelu;
  throw py::value_error("nonlinearity: expected 'tanh' or 'relu', got '" + name + "'");
}

// The array, zero-filled: dx of a call with nothing to compute (no hidden units: the outputs do not depend on x).
template <typename T>
py::array_t<T> zeroed(py::array_t<T> a) {
  std::fill_n(a.mutable_data(), a.size(), T(0));
  return a;
}

// Runs f(T{}) for the call's dtype T.
template <typename F>
auto with_dtype(const ArgChecker& a, F&& f) {
  return a.is_double() ? f(double{}) : f(float{});
}

// A layer's checked weight arrays, and its gradient accumulators; absent where the layer has no such part (absent(),
// not a default py::array, which would be a new empty NumPy array).
struct WeightArrays {
  py::array w_ih = absent(), w_hh = absent(), b_ih = absent(), b_hh = absent(), w_hr = absent();
  std::vector<py::array> peepholes{absent(), absent(), absent()};
};
struct GradArrays {
  py::array dw_ih = absent(), dw_hh = absent(), db_ih = absent(), db_hh = absent(), dw_hr = absent();
  std::vector<py::array> dpeepholes{absent(), absent(), absent()};
};

template <typename T>
LayerWeights<T> layer_weights(const WeightArrays& a) {
  return {cptr<T>(a.w_ih), cptr<T>(a.w_hh), cptr<T>(a.b_ih), cptr<T>(a.b_hh)};
}
template <typename T>
LayerGrads<T> layer_grads(const GradArrays& a) {
  return {mptr<T>(a.dw_ih), mptr<T>(a.dw_hh), mptr<T>(a.db_ih), mptr<T>(a.db_hh)};
}
template <typename T>
LstmWeights<T> lstm_weights(const WeightArrays& a) {
  LstmWeights<T> w;
  static_cast<LayerWeights<T>&>(w) = layer_weights<T>(a);
  w.w_hr = cptr<T>(a.w_hr);
  w.peepholes = {cptr<T>(a.peepholes[0]), cptr<T>(a.peepholes[1]), cptr<T>(a.peepholes[2])};
  return w;
}
template <typename T>
LstmGrads<T> lstm_grads(const GradArrays& a) {
  LstmGrads<T> g;
  static_cast<LayerGrads<T>&>(g) = layer_grads<T>(a);
  g.dw_hr = mptr<T>(a.dw_hr);
  g.dp_i = mptr<T>(a.dpeepholes[0]);
  g.dp_f = mptr<T>(a.dpeepholes[1]);
  g.dp_o = mptr<T>(a.dpeepholes[2]);
  return g;
}

// The weight gradients of a layer of `gates` gate blocks with weights (G*H, I) and (G*H, P).
GradArrays layer_grad_arrays(ArgChecker& a, int64_t gates, const py::object& dweight_ih,
                             const py::object& dweight_hh, const py::object& dbias_ih, const py::object& dbias_hh) {
  GradArrays g;
  g.dw_ih = a.accumulator(dweight_ih, "dweight_ih", {gates * a.H(), a.I()});
  g.dw_hh = a.accumulator(dweight_hh, "dweight_hh", {gates * a.H(), a.P()});
  std::tie(g.db_ih, g.db_hh) = a.bias_grads(dbias_ih, dbias_hh, gates);
  return g;
}

// The shape of a sequence call in the direction `reverse` (the loop runs the steps from the last), which the kernels
// take for the uniform layout only: a reverse direction over packed rows runs the same batch_sizes over its own rows
// (pylstm.sequence.Layout.reverse), as sequences of different lengths start their backward pass at different steps.
SeqShape directed_shape(const ArgChecker& a, const py::object& batch_sizes, bool reverse) {
  if (reverse && !batch_sizes.is_none())
    throw py::value_error("reverse: expected False with batch_sizes (the packed layout runs the reverse direction on "
                          "rows reordered for it), got True");
  SeqShape shape = a.shape();
  shape.reverse = reverse;
  return shape;
}

// What every sequence call checks first, in this order: the recurrent weights (they set the dtype, H and P; weight_hr
// is None but for a projected LSTM), weight_ih (I), x (T, B and the layout), the direction and h0 (B, P).
struct SequenceArgs {
  WeightArrays w;
  py::array x = absent(), h0 = absent();  // (a default py::array would be a new empty NumPy array)
  SeqShape shape;
};
SequenceArgs sequence_args(ArgChecker& a, int64_t gates, const py::object& x, const py::object& h0,
                           const py::object& weight_ih, const py::object& weight_hh, const py::object& weight_hr,
                           const py::object& batch_sizes, bool reverse) {
  SequenceArgs args;
  if (weight_hr.is_none()) args.w.w_hh = a.weight_hh(weight_hh, gates);
  else std::tie(args.w.w_hh, args.w.w_hr) = a.projected_recurrent(weight_hh, weight_hr);
  args.w.w_ih = a.weight_ih(weight_ih, gates);
  args.x = a.sequence(x, batch_sizes, h0);
  args.shape = directed_shape(a, batch_sizes, reverse);
  args.h0 = a.input(h0, "h0", {a.B(), a.P()});
  return args;
}

// What every backward call checks next: the forward's out and dout (per row, P), and dh_n ((B, P) or None).
struct BackwardArgs {
  py::array out, dout, dh_n;
};
BackwardArgs backward_args(ArgChecker& a, const py::object& out, const py::object& dout, const py::object& dh_n) {
  return {a.input(out, "out", a.per_row(a.P())), a.input(dout, "dout", a.per_row(a.P())),
          a.optional_input(dh_n, "dh_n", {a.B(), a.P()})};
}

// ---------------------------------------------------------------------------------------------------------------- LSTM

py::tuple lstm_forward_py(const py::object& x, const py::object& h0, const py::object& c0,
                          const py::object& weight_ih, const py::object& weight_hh, const py::object& bias_ih,
                          const py::object& bias_hh, const py::object& weight_hr, const py::object& p_i,
                          const py::object& p_f, const py::object& p_o, const py::object& batch_sizes,
                          bool training, bool reverse) {
  ArgChecker a("an LSTM");
  SequenceArgs seq = sequence_args(a, kLstmGates, x, h0, weight_ih, weight_hh, weight_hr, batch_sizes, reverse);
  const int64_t B = a.B(), H = a.H(), P = a.P();
  const py::array c0a = a.input(c0, "c0", {B, H});
  std::tie(seq.w.b_ih, seq.w.b_hh) = a.biases(bias_ih, bias_hh, kLstmGates);
  seq.w.peepholes = a.peepholes(p_i, p_f, p_o);
  return with_dtype(a, [&](auto dtype) -> py::tuple {
    using T = decltype(dtype);
    auto out = a.output<T>(a.per_row(P));
    auto h_n = a.output<T>({B, P});
    auto c_n = a.output<T>({B, H});
    auto [gates, gates_data] = a.training_output<T>(training, a.per_row(kLstmGates * H));
    auto [cells, cells_data] = a.training_output<T>(training, a.per_row(H));
    if (a.nothing_to_compute()) return py::make_tuple(out, h_n, c_n, gates, cells);
    const LstmWeights<T> weights = lstm_weights<T>(seq.w);
    run_kernel(a.forward_work(kLstmGates), [&] {
      lstm_forward<T>(seq.shape, cptr<T>(seq.x), cptr<T>(seq.h0), cptr<T>(c0a), weights, out.mutable_data(),
                      h_n.mutable_data(), c_n.mutable_data(), gates_data, cells_data);
    });
    return py::make_tuple(out, h_n, c_n, gates, cells);
  });
}

py::tuple lstm_backward_py(const py::object& x, const py::object& h0, const py::object& c0,
                           const py::object& weight_ih, const py::object& weight_hh, const py::object& weight_hr,
                           const py::object& p_i, const py::object& p_f, const py::object& p_o,
                           const py::object& batch_sizes, const py::object& out, const py::object& gates,
                           const py::object& cells, const py::object& dout, const py::object& dh_n,
                           const py::object& dc_n, const py::object& dweight_ih, const py::object& dweight_hh,
                           const py::object& dbias_ih, const py::object& dbias_hh, const py::object& dweight_hr,
                           const py::object& dp_i, const py::object& dp_f, const py::object& dp_o, bool reverse) {
  ArgChecker a("an LSTM");
  SequenceArgs seq = sequence_args(a, kLstmGates, x, h0, weight_ih, weight_hh, weight_hr, batch_sizes, reverse);
  const BackwardArgs grad_in = backward_args(a, out, dout, dh_n);
  const int64_t B = a.B(), H = a.H(), P = a.P();
  seq.w.peepholes = a.peepholes(p_i, p_f, p_o);
  const py::array c0a = a.input(c0, "c0", {B, H});
  const py::array gatesa = a.input(gates, "gates", a.per_row(kLstmGates * H));
  const py::array cellsa = a.input(cells, "cells", a.per_row(H));
  const py::array dc_na = a.optional_input(dc_n, "dc_n", {B, H});
  GradArrays g = layer_grad_arrays(a, kLstmGates, dweight_ih, dweight_hh, dbias_ih, dbias_hh);
  if (seq.w.w_hr && dweight_hr.is_none())
    throw py::value_error("dweight_hr: expected an array (P, H) with weight_hr, got None");
  g.dw_hr = seq.w.w_hr ? a.accumulator(dweight_hr, "dweight_hr", {P, H}) : absent();
  const bool peepholes = static_cast<bool>(seq.w.peepholes[0]);
  if (peepholes && (dp_i.is_none() || dp_f.is_none() || dp_o.is_none()))
    throw py::value_error("dpeepholes: expected three arrays (H,) with peepholes, got None");
  if (peepholes)
    g.dpeepholes = {a.accumulator(dp_i, "dpeepholes[0]", {H}), a.accumulator(dp_f, "dpeepholes[1]", {H}),
                    a.accumulator(dp_o, "dpeepholes[2]", {H})};
  return with_dtype(a, [&](auto dtype) -> py::tuple {
    using T = decltype(dtype);
    auto dx = a.output<T>(a.per_row(a.I()));
    auto dh0 = a.output<T>({B, P});
    auto dc0 = a.output<T>({B, H});
    if (a.nothing_to_compute()) return py::make_tuple(zeroed(dx), dh0, dc0);
    const LstmWeights<T> weights = lstm_weights<T>(seq.w);
    const LstmGrads<T> grads = lstm_grads<T>(g);
    run_kernel(a.backward_work(kLstmGates), [&] {
      lstm_backward<T>(seq.shape, cptr<T>(seq.x), cptr<T>(seq.h0), cptr<T>(c0a), weights, cptr<T>(grad_in.out),
                       cptr<T>(gatesa), cptr<T>(cellsa), cptr<T>(grad_in.dout), cptr<T>(grad_in.dh_n), cptr<T>(dc_na),
                       dx.mutable_data(), dh0.mutable_data(), dc0.mutable_data(), grads);
    });
    return py::make_tuple(dx, dh0, dc0);
  });
}

// ----------------------------------------------------------------------------------------------------------------- GRU

py::tuple gru_forward_py(const py::object& x, const py::object& h0, const py::object& weight_ih,
                         const py::object& weight_hh, const py::object& bias_ih, const py::object& bias_hh,
                         bool reset_after, const py::object& batch_sizes, bool training, bool reverse) {
  ArgChecker a("a GRU");
  SequenceArgs seq = sequence_args(a, kGruGates, x, h0, weight_ih, weight_hh, py::none(), batch_sizes, reverse);
  const int64_t B = a.B(), H = a.H();
  std::tie(seq.w.b_ih, seq.w.b_hh) = a.biases(bias_ih, bias_hh, kGruGates);
  return with_dtype(a, [&](auto dtype) -> py::tuple {
    using T = decltype(dtype);
    auto out = a.output<T>(a.per_row(H));
    auto h_n = a.output<T>({B, H});
    auto [gates, gates_data] = a.training_output<T>(training, a.per_row(gru_saved_width(H, reset_after)));
    if (a.nothing_to_compute()) return py::make_tuple(out, h_n, gates);
    const GruWeights<T> weights = layer_weights<T>(seq.w);
    run_kernel(a.forward_work(kGruGates), [&] {
      gru_forward<T>(seq.shape, reset_after, cptr<T>(seq.x), cptr<T>(seq.h0), weights, out.mutable_data(),
                     h_n.mutable_data(), gates_data);
    });
    return py::make_tuple(out, h_n, gates);
  });
}

py::tuple gru_backward_py(const py::object& x, const py::object& h0, const py::object& weight_ih,
                          const py::object& weight_hh, const py::object& batch_sizes, const py::object& out,
                          const py::object& gates, bool reset_after, const py::object& dout, const py::object& dh_n,
                          const py::object& dweight_ih, const py::object& dweight_hh, const py::object& dbias_ih,
                          const py::object& dbias_hh, bool reverse) {
  ArgChecker a("a GRU");
  SequenceArgs seq = sequence_args(a, kGruGates, x, h0, weight_ih, weight_hh, py::none(), batch_sizes, reverse);
  const BackwardArgs grad_in = backward_args(a, out, dout, dh_n);
  const int64_t B = a.B(), H = a.H();
  const py::array gatesa = a.input(gates, "gates", a.per_row(gru_saved_width(H, reset_after)));
  const GradArrays g = layer_grad_arrays(a, kGruGates, dweight_ih, dweight_hh, dbias_ih, dbias_hh);
  return with_dtype(a, [&](auto dtype) -> py::tuple {
    using T = decltype(dtype);
    auto dx = a.output<T>(a.per_row(a.I()));
    auto dh0 = a.output<T>({B, H});
    if (a.nothing_to_compute()) return py::make_tuple(zeroed(dx), dh0);
    const GruWeights<T> weights = layer_weights<T>(seq.w);
    const GruGrads<T> grads = layer_grads<T>(g);
    run_kernel(a.backward_work(kGruGates), [&] {
      gru_backward<T>(seq.shape, reset_after, cptr<T>(seq.x), cptr<T>(seq.h0), weights, cptr<T>(grad_in.out),
                      cptr<T>(gatesa), cptr<T>(grad_in.dout), cptr<T>(grad_in.dh_n), dx.mutable_data(),
                      dh0.mutable_data(), grads);
    });
    return py::make_tuple(dx, dh0);
  });
}

// ----------------------------------------------------------------------------------------------------------------- RNN

py::tuple rnn_forward_py(const py::object& x, const py::object& h0, const py::object& weight_ih,
                         const py::object& weight_hh, const py::object& bias_ih, const py::object& bias_hh,
                         const std::string& nonlinearity, const py::object& batch_sizes, bool reverse) {
  const Nonlinearity act = parse_nonlinearity(nonlinearity);
  ArgChecker a("an RNN");
  SequenceArgs seq = sequence_args(a, kRnnGates, x, h0, weight_ih, weight_hh, py::none(), batch_sizes, reverse);
  const int64_t B = a.B(), H = a.H();
  std::tie(seq.w.b_ih, seq.w.b_hh) = a.biases(bias_ih, bias_hh, kRnnGates);
  return with_dtype(a, [&](auto dtype) -> py::tuple {
    using T = decltype(dtype);
    auto out = a.output<T>(a.per_row(H));
    auto h_n = a.output<T>({B, H});
    if (a.nothing_to_compute()) return py::make_tuple(out, h_n);
    const RnnWeights<T> weights = layer_weights<T>(seq.w);
    run_kernel(a.forward_work(kRnnGates), [&] {
      rnn_forward<T>(seq.shape, act, cptr<T>(seq.x), cptr<T>(seq.h0), weights, out.mutable_data(), h_n.mutable_data());
    });
    return py::make_tuple(out, h_n);
  });
}

py::tuple rnn_backward_py(const py::object& x, const py::object& h0, const py::object& weight_ih,
                          const py::object& weight_hh, const py::object& batch_sizes, const py::object& out,
                          const std::string& nonlinearity, const py::object& dout, const py::object& dh_n,
                          const py::object& dweight_ih, const py::object& dweight_hh, const py::object& dbias_ih,
                          const py::object& dbias_hh, bool reverse) {
  const Nonlinearity act = parse_nonlinearity(nonlinearity);
  ArgChecker a("an RNN");
  SequenceArgs seq = sequence_args(a, kRnnGates, x, h0, weight_ih, weight_hh, py::none(), batch_sizes, reverse);
  const BackwardArgs grad_in = backward_args(a, out, dout, dh_n);
  const int64_t B = a.B(), H = a.H();
  const GradArrays g = layer_grad_arrays(a, kRnnGates, dweight_ih, dweight_hh, dbias_ih, dbias_hh);
  return with_dtype(a, [&](auto dtype) -> py::tuple {
    using T = decltype(dtype);
    auto dx = a.output<T>(a.per_row(a.I()));
    auto dh0 = a.output<T>({B, H});
    if (a.nothing_to_compute()) return py::make_tuple(zeroed(dx), dh0);
    const RnnWeights<T> weights = layer_weights<T>(seq.w);
    const RnnGrads<T> grads = layer_grads<T>(g);
    run_kernel(a.backward_work(kRnnGates), [&] {
      rnn_backward<T>(seq.shape, act, cptr<T>(seq.x), cptr<T>(seq.h0), weights, cptr<T>(grad_in.out),
                      cptr<T>(grad_in.dout), cptr<T>(grad_in.dh_n), dx.mutable_data(), dh0.mutable_data(), grads);
    });
    return py::make_tuple(dx, dh0);
  });
}

}  // namespace
}  // namespace pylstm

PYBIND11_MODULE(_core, m) {
  using namespace pylstm;
  m.doc() = "pylstm's C++ sequence kernels. Use pylstm.functional or the layer classes; see pylstm.reference for "
            "the meaning of every argument.";
  m.attr("has_openmp") = has_openmp();
  init_interrupts();

  m.def("isa", [] { return std::string(isa_name(active_isa())); },
        "The instruction set whose kernels run: 'scalar', 'avx2' or 'avx512'.");
  m.def("supported_isas", &supported_isas, "The instruction sets this build and this CPU can run, scalar first.");
  m.def(
      "set_isa",
      [](const std::string& name) {
        try {
          set_active_isa(name);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(std::string("isa: ") + e.what());
        }
      },
      py::arg("isa"), "Run the kernels of this instruction set from now on (for tests and comparisons): in calls that "
        "start after it (a call running meanwhile finishes on the ISA it started with).");
  {  // The cache sizes the kernels' choices follow (primitives/cache_sizes.h), and those choices' thresholds.
    auto as_dict = [](const CacheSizes& c) {
      py::dict d;
      d["l1d"] = c.l1d;
      d["l2"] = c.l2;
      d["l3"] = c.l3;
      d["source"] = std::string(c.source);
      return d;
    };
    m.def(
        "cache_sizes",
        [as_dict] {
          if (!cache_sizes_error().empty()) throw py::value_error(cache_sizes_error());
          return as_dict(cache_sizes());
        },
        "The cache sizes in bytes the kernels' choices follow: {'l1d', 'l2' (one core's), 'l3' (shared, 0 if none), "
        "'source': 'override' (PYLSTM_CACHE_SIZES), 'sysfs', 'cpuid' or 'default'}; ValueError if "
        "PYLSTM_CACHE_SIZES is malformed.");
    m.def(
        "parse_cache_sizes",
        [as_dict](const std::string& text) {
          try {
            return as_dict(parse_cache_sizes(text));
          } catch (const std::invalid_argument& e) {
            throw py::value_error(std::string("cache sizes: ") + e.what());
          }
        },
        py::arg("text"), "PYLSTM_CACHE_SIZES's format ('32K,512K,32M') parsed, as cache_sizes() would report it.");
    m.def(
        "cache_thresholds",
        [] {
          py::dict d;
          d["cached_bytes_per_thread"] = cached_bytes_per_thread();
          d["split_bytes"] = split_bytes();
          d["stream_saved_bytes"] = stream_saved_bytes();
          d["stream_gradient_bytes"] = stream_gradient_bytes();
          d["row_slice_bytes_per_row"] = row_slice_bytes_per_row();
          return d;
        },
        "The byte sizes at which the time loops' choices change, as the cache sizes make them (for tests).");
  }
  m.def("get_num_threads", &get_num_threads,
        "Threads the kernels may use: set_num_threads' count, else OMP_NUM_THREADS, else the processors; 1 in a "
        "process forked after a kernel of its parent ran threaded.");
  m.def(
      "release_memory",
      [] {
        const size_t freed = release_buffers() + release_workspaces();
        trim_heap();
        return freed;
      },
        "Free the cached blocks of earlier large outputs (kept for reuse, at most 512 MiB) and the kernels' scratch "
        "memory kept by every thread for its next call (except that of kernels running at the moment on other "
        "threads); returns the bytes freed.");
  m.def("cached_bytes", &cached_buffer_bytes, "Bytes of earlier large outputs' blocks kept for reuse.");
  m.def("set_adaptive_threads", &set_adaptive_threads, py::arg("enabled"),
        "False: never fall back to one thread on a busy machine (for tests that must see two threads at work).");
  m.def("alternated_sweeps", &alternated_sweeps,
        "Steps of time loops so far that alternated the direction of their sweeps over the weights (for tests).");
  m.def("independent_loops", &independent_loops,
        "Time loops so far whose work items were slices of the batch rows, run without a wait per step (for tests).");
  m.def("set_num_threads", [](const py::object& n) { set_num_threads(thread_count(n)); }, py::arg("n"),
        "Set the number of threads the kernels may use (an int in [1, 4096]; a call starts no more than the "
        "processors this process may run on). Results are the same for any number. "
        "In a process forked after a kernel of its parent ran threaded, the kernels run on one thread (the OpenMP "
        "threads do not survive fork); set_num_threads is accepted there and changes nothing.");
  m.def(
      "activation",
      [](const std::string& name, const py::object& x) {
        ArgChecker a("an activation");
        py::array xa = a.any_float(x, "x");
        const bool is_sigmoid = name == "sigmoid";
        if (!is_sigmoid && name != "tanh")
          throw py::value_error("name: expected 'sigmoid' or 'tanh', got '" + name + "'");
        return with_dtype(a, [&](auto dtype) -> py::array {
          using T = decltype(dtype);
          auto y = py::array_t<T>(std::vector<py::ssize_t>(xa.shape(), xa.shape() + xa.ndim()));
          const T* xp = static_cast<const T*>(xa.data());
          T* yp = y.mutable_data();
          const int64_t n = xa.size();
          {
            py::gil_scoped_release release;
            DenormalsAreZero daz;
            (is_sigmoid ? ops<T>().sigmoid : ops<T>().tanh)(n, xp, yp);
          }
          return y;
        });
      },
      py::arg("name"), py::arg("x"),
      "The active ISA's vectorized sigmoid or tanh over a C-contiguous float32/float64 array (to test their error).");

  m.def("lstm_forward", &lstm_forward_py, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("weight_ih"),
        py::arg("weight_hh"), py::arg("bias_ih").none(true), py::arg("bias_hh").none(true),
        py::arg("weight_hr").none(true), py::arg("p_i").none(true), py::arg("p_f").none(true),
        py::arg("p_o").none(true), py::arg("batch_sizes").none(true), py::arg("training"), py::arg("reverse") = false,
        "-> (out, h_n, c_n, gates, cells); gates and cells are None unless training.");
  m.def("lstm_backward", &lstm_backward_py, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("weight_ih"),
        py::arg("weight_hh"), py::arg("weight_hr").none(true), py::arg("p_i").none(true), py::arg("p_f").none(true),
        py::arg("p_o").none(true), py::arg("batch_sizes").none(true), py::arg("out"), py::arg("gates"),
        py::arg("cells"), py::arg("dout"), py::arg("dh_n").none(true), py::arg("dc_n").none(true),
        py::arg("dweight_ih"), py::arg("dweight_hh"), py::arg("dbias_ih").none(true), py::arg("dbias_hh").none(true),
        py::arg("dweight_hr").none(true), py::arg("dp_i").none(true), py::arg("dp_f").none(true),
        py::arg("dp_o").none(true), py::arg("reverse") = false,
        "-> (dx, dh0, dc0); accumulates into dweight_ih, dweight_hh, dbias_ih, dbias_hh, dweight_hr, dp_*.");
  m.def("gru_forward", &gru_forward_py, py::arg("x"), py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"),
        py::arg("bias_ih").none(true), py::arg("bias_hh").none(true), py::arg("reset_after"),
        py::arg("batch_sizes").none(true), py::arg("training"), py::arg("reverse") = false,
        "-> (out, h_n, gates); gates is None unless training.");
  m.def("gru_backward", &gru_backward_py, py::arg("x"), py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"),
        py::arg("batch_sizes").none(true), py::arg("out"), py::arg("gates"), py::arg("reset_after"), py::arg("dout"),
        py::arg("dh_n").none(true), py::arg("dweight_ih"), py::arg("dweight_hh"), py::arg("dbias_ih").none(true),
        py::arg("dbias_hh").none(true), py::arg("reverse") = false,
        "-> (dx, dh0); accumulates into dweight_ih, dweight_hh, dbias_ih, dbias_hh.");
  m.def("rnn_forward", &rnn_forward_py, py::arg("x"), py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"),
        py::arg("bias_ih").none(true), py::arg("bias_hh").none(true), py::arg("nonlinearity"),
        py::arg("batch_sizes").none(true), py::arg("reverse") = false, "-> (out, h_n).");
  m.def("rnn_backward", &rnn_backward_py, py::arg("x"), py::arg("h0"), py::arg("weight_ih"), py::arg("weight_hh"),
        py::arg("batch_sizes").none(true), py::arg("out"), py::arg("nonlinearity"), py::arg("dout"),
        py::arg("dh_n").none(true), py::arg("dweight_ih"), py::arg("dweight_hh"), py::arg("dbias_ih").none(true),
        py::arg("dbias_hh").none(true), py::arg("reverse") = false,
        "-> (dx, dh0); accumulates into dweight_ih, dweight_hh, dbias_ih, dbias_hh.");

  bind_training(m);
  bind_optimizers(m);
  bind_blas_pools(m);
}
