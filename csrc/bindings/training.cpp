// The blocks and the loss of a training step: linear, embedding, cross-entropy. Each binding checks its arguments,
// allocates the outputs, releases the GIL and calls the kernel in training/. Errors name the argument as
// pylstm.functional names it, with what was expected and what came.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "bindings/checks.h"
#include "bindings/parts.h"
#include "training/cross_entropy.h"
#include "training/embedding.h"
#include "training/linear.h"

namespace pylstm {
namespace {

// A C-contiguous aligned float32/float64 array; with `like`, of the same dtype.
py::array float_array(const py::object& obj, const char* name, const py::array* like = nullptr) {
  py::array a = ndarray(obj, name);
  if (like != nullptr) {
    if (!same_dtype(a.dtype(), like->dtype()))
      throw py::type_error(std::string(name) + ": expected dtype " + dtype_str(*like) + ", got " + dtype_str(a));
  } else {
    check_float_dtype(a, name);
  }
  check_layout(a, name);
  return a;
}

// A C-contiguous aligned int64 array -> the call's own copy of it, which the call then checks and uses. The kernels
// index tables with these values without the GIL: had they read the caller's array, another thread could change it
// between the check and the use, and an index past the table would read or write out of bounds.
py::array index_array(const py::object& obj, const char* name) {
  py::array a = ndarray(obj, name);
  if (!same_dtype(a.dtype(), py::dtype::of<int64_t>()))
    throw py::type_error(std::string(name) + ": expected dtype int64, got " + dtype_str(a));
  check_layout(a, name);
  py::array_t<int64_t> copy(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
  if (a.nbytes() > 0) std::memcpy(copy.mutable_data(), a.data(), static_cast<size_t>(a.nbytes()));
  return copy;
}

void expect_shape(const py::array& a, const char* name, const std::vector<int64_t>& shape, const char* meaning) {
  if (shape_of(a) != shape)
    throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + " (" + meaning + "), got " +
                          shape_str(shape_of(a)));
}

// An array the kernel writes into: writeable and sharing no memory with the call's inputs.
void expect_output(const py::array& a, const char* name, const std::vector<const py::array*>& inputs) {
  check_writeable(a, name);
  for (const py::array* in : inputs)
    if (*in && overlap(byte_range(a), byte_range(*in)))
      throw py::value_error(std::string(name) + ": must not share memory with an input array of this call");
}

// x (..., I) -> its leading dimensions and its number of rows.
std::vector<int64_t> leading_shape(const py::array& x) {
  std::vector<int64_t> shape = shape_of(x);
  shape.pop_back();
  return shape;
}
int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

// ------------------------------------------------------------------------------------------------------- linear

// weight (O, I) sets the dtype; x (..., I); bias (O,) or None.
struct LinearArgs {
  py::array weight, x;
  int64_t in = 0, out = 0, rows = 0;
  std::vector<int64_t> leading;
  LinearArgs(const py::object& x_obj, const py::object& w_obj) {
    weight = float_array(w_obj, "weight");
    if (weight.ndim() != 2)
      throw py::value_error("weight: expected shape (out_features, in_features), got " +
                            shape_str(shape_of(weight)));
    out = weight.shape(0);
    in = weight.shape(1);
    x = float_array(x_obj, "x", &weight);
    if (x.ndim() < 1 || x.shape(x.ndim() - 1) != in)
      throw py::value_error("x: expected shape (..., " + std::to_string(in) +
                            ") (the last axis in_features = weight.shape[1]), got " + shape_str(shape_of(x)));
    leading = leading_shape(x);
    rows = product(leading);
  }
  std::vector<int64_t> with_last(int64_t width) const {
    std::vector<int64_t> shape = leading;
    shape.push_back(width);
    return shape;
  }
};

py::array linear_forward_py(const py::object& x_obj, const py::object& w_obj, const py::object& b_obj) {
  LinearArgs a(x_obj, w_obj);
  py::array bias = absent();
  if (!b_obj.is_none()) {
    bias = float_array(b_obj, "bias", &a.weight);
    expect_shape(bias, "bias", {a.out}, "out_features");
  }
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto y = new_output<T>(a.with_last(a.out));
    T* yp = y.mutable_data();
    KernelCall call;
    linear_forward<T>(a.rows, a.in, a.out, cptr<T>(a.x), cptr<T>(a.weight), cptr<T>(bias), yp);
    return y;
  };
  return same_dtype(a.weight.dtype(), py::dtype::of<double>()) ? run(double{}) : run(float{});
}

py::object linear_backward_py(const py::object& x_obj, const py::object& w_obj, const py::object& dy_obj,
                              const py::object& dw_obj, const py::object& db_obj, bool need_dx) {
  LinearArgs a(x_obj, w_obj);
  py::array dy = float_array(dy_obj, "dy", &a.weight);
  expect_shape(dy, "dy", a.with_last(a.out), "x's leading axes and out_features");
  py::array dweight = float_array(dw_obj, "dweight", &a.weight);
  expect_shape(dweight, "dweight", {a.out, a.in}, "the shape of weight");
  expect_output(dweight, "dweight", {&a.x, &a.weight, &dy});
  py::array dbias = absent();
  if (!db_obj.is_none()) {
    dbias = float_array(db_obj, "dbias", &a.weight);
    expect_shape(dbias, "dbias", {a.out}, "out_features");
    expect_output(dbias, "dbias", {&a.x, &a.weight, &dy, &dweight});
  }
  auto run = [&](auto tag) -> py::object {
    using T = decltype(tag);
    py::object result = py::none();
    T* dxp = nullptr;
    if (need_dx) {
      auto dx = new_output<T>(a.with_last(a.in));
      dxp = dx.mutable_data();
      result = dx;
    }
    KernelCall call;
    linear_backward<T>(a.rows, a.in, a.out, cptr<T>(a.x), cptr<T>(a.weight), cptr<T>(dy), dxp, mptr<T>(dweight),
                       mptr<T>(dbias));
    return result;
  };
  return same_dtype(a.weight.dtype(), py::dtype::of<double>()) ? run(double{}) : run(float{});
}

// ---------------------------------------------------------------------------------------------------- embedding

void check_ids(const py::array& ids, int64_t num_embeddings) {
  int64_t bad;
  {
    KernelCall call;
    bad = first_invalid_id(ids.size(), static_cast<const int64_t*>(ids.data()), num_embeddings);
  }
  if (bad >= 0)
    throw py::value_error("ids: expected integers in [0, " + std::to_string(num_embeddings) +
                          ") (num_embeddings = weight.shape[0]), got " +
                          std::to_string(static_cast<const int64_t*>(ids.data())[bad]) + " at flat index " +
                          std::to_string(bad));
}

py::array embedding_forward_py(const py::object& ids_obj, const py::object& w_obj) {
  py::array weight = float_array(w_obj, "weight");
  if (weight.ndim() != 2)
    throw py::value_error("weight: expected shape (num_embeddings, embedding_dim), got " +
                          shape_str(shape_of(weight)));
  py::array ids = index_array(ids_obj, "ids");
  check_ids(ids, weight.shape(0));
  std::vector<int64_t> shape = shape_of(ids);
  const int64_t dim = weight.shape(1);
  shape.push_back(dim);
  auto run = [&](auto tag) -> py::array {
    using T = decltype(tag);
    auto out = new_output<T>(shape);
    T* op = out.mutable_data();
    KernelCall call;
    embedding_forward<T>(ids.size(), dim, static_cast<const int64_t*>(ids.data()), cptr<T>(weight), op);
    return out;
  };
  return same_dtype(weight.dtype(), py::dtype::of<double>()) ? run(double{}) : run(float{});
}

void embedding_backward_py(const py::object& ids_obj, const py::object& dout_obj, const py::object& dw_obj,
                           int64_t padding_idx) {
  py::array dweight = float_array(dw_obj, "dweight");
  if (dweight.ndim() != 2)
    throw py::value_error("dweight: expected shape (num_embeddings, embedding_dim), got " +
                          shape_str(shape_of(dweight)));
  py::array ids = index_array(ids_obj, "ids");
  check_ids(ids, dweight.shape(0));
  py::array dout = float_array(dout_obj, "dout", &dweight);
  std::vector<int64_t> shape = shape_of(ids);
  shape.push_back(dweight.shape(1));
  expect_shape(dout, "dout", shape, "ids.shape + (embedding_dim,)");
  expect_output(dweight, "dweight", {&ids, &dout});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    KernelCall call;
    embedding_backward<T>(ids.size(), dweight.shape(1), static_cast<const int64_t*>(ids.data()), cptr<T>(dout),
                          padding_idx, mptr<T>(dweight));
  };
  same_dtype(dweight.dtype(), py::dtype::of<double>()) ? run(double{}) : run(float{});
}

// ------------------------------------------------------------------------------------------------ cross-entropy

py::tuple cross_entropy_py(const py::object& logits_obj, const py::object& targets_obj, int64_t ignore_index,
                           double label_smoothing, const std::string& reduction, bool need_grad) {
  if (reduction != "mean" && reduction != "sum" && reduction != "none")
    throw py::value_error("reduction: expected 'mean', 'sum' or 'none', got '" + reduction + "'");
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
    throw py::value_error("label_smoothing: expected a number in [0, 1], got " + std::to_string(label_smoothing));
  py::array logits = float_array(logits_obj, "logits");
  if (logits.ndim() < 1 || logits.shape(logits.ndim() - 1) < 1)
    throw py::value_error("logits: expected shape (..., C) with C >= 1 classes, got " + shape_str(shape_of(logits)));
  const std::vector<int64_t> leading = leading_shape(logits);
  const int64_t rows = product(leading), classes = logits.shape(logits.ndim() - 1);
  py::array targets = index_array(targets_obj, "targets");
  expect_shape(targets, "targets", leading, "logits.shape[:-1]: one class index per row of logits");
  const int64_t* tp = static_cast<const int64_t*>(targets.data());
  int64_t bad, counted;
  {
    KernelCall call;
    counted = count_targets(rows, tp, classes, ignore_index, &bad);
  }
  if (bad >= 0)
    throw py::value_error("targets: expected class indices in [0, " + std::to_string(classes) +
                          ") (C = logits.shape[-1]) or ignore_index = " + std::to_string(ignore_index) + ", got " +
                          std::to_string(tp[bad]) + " at flat index " + std::to_string(bad));
  // The mean is over the counted rows; with none counted it is 0/0 (NaN, as torch), and every gradient is zero.
  const double scale = reduction == "mean" ? (counted > 0 ? 1.0 / static_cast<double>(counted) : 0.0) : 1.0;
  std::vector<double> row_losses(static_cast<size_t>(rows));
  auto run = [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    py::object grad = py::none();
    T* gp = nullptr;
    if (need_grad) {
      auto g = new_output<T>(shape_of(logits));
      gp = g.mutable_data();
      grad = g;
    }
    double total = 0.0;
    {
      KernelCall call;
      cross_entropy<T>(rows, classes, cptr<T>(logits), tp, ignore_index, label_smoothing, scale, gp,
                       row_losses.data());
      for (const double l : row_losses) total += l;  // in row order: the same sum for any thread count
    }
    if (reduction == "none") {
      auto per_row = py::array_t<T>(std::vector<py::ssize_t>(leading.begin(), leading.end()));
      T* lp = per_row.mutable_data();
      for (int64_t r = 0; r < rows; ++r) lp[r] = static_cast<T>(row_losses[static_cast<size_t>(r)]);
      return py::make_tuple(per_row, grad);
    }
    const double loss = reduction == "sum" ? total
                        : counted > 0      ? total / static_cast<double>(counted)
                                           : std::numeric_limits<double>::quiet_NaN();
    return py::make_tuple(loss, grad);
  };
  return same_dtype(logits.dtype(), py::dtype::of<double>()) ? run(double{}) : run(float{});
}

}  // namespace

void bind_training(py::module_& m) {
  m.def("linear_forward", &linear_forward_py, py::arg("x"), py::arg("weight"), py::arg("bias").none(true),
        "x (..., I), weight (O, I), bias (O,) or None -> y (..., O) = x @ weight.T + bias.");
  m.def("linear_backward", &linear_backward_py, py::arg("x"), py::arg("weight"), py::arg("dy"), py::arg("dweight"),
        py::arg("dbias").none(true), py::arg("need_dx"),
        "-> dx (..., I) or None; accumulates dy^T x into dweight and dy's column sums into dbias.");
  m.def("embedding_forward", &embedding_forward_py, py::arg("ids"), py::arg("weight"),
        "ids (...) int64, weight (V, D) -> out (..., D) = weight[ids].");
  m.def("embedding_backward", &embedding_backward_py, py::arg("ids"), py::arg("dout"), py::arg("dweight"),
        py::arg("padding_idx"),
        "dweight[ids[r]] += dout[r] for every id but padding_idx (-1: none), duplicates summed in order.");
  m.def("cross_entropy", &cross_entropy_py, py::arg("logits"), py::arg("targets"), py::arg("ignore_index"),
        py::arg("label_smoothing"), py::arg("reduction"), py::arg("need_grad"),
        "logits (..., C), targets (...) int64 -> (loss, grad or None); loss a float, or per row for 'none'.");
}

}  // namespace pylstm
