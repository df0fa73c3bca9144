// The optimizer updates and gradient tools of pylstm._core (private: pylstm.optim calls them). Each binding checks
// its arrays, releases the GIL and calls the kernel of training/optimizers.h. Errors name the argument as the
// binding names it, with what was expected and what came.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "bindings/checks.h"
#include "bindings/parts.h"
#include "training/optimizers.h"

namespace pylstm {
namespace {

// The arrays of one update: the parameter sets the dtype and shape that its gradient and state buffers must have.
// All are C-contiguous and aligned; the written ones are writeable; and no two share memory: the kernel reads and
// writes element i of each in one pass, so an overlap would feed it values it has already changed (a silent wrong
// answer).
class UpdateArrays {
 public:
  explicit UpdateArrays(const py::object& param) {
    param_ = ndarray(param, "param");
    check_float_dtype(param_, "param");
    check_layout(param_, "param");
    check_writeable(param_, "param");
    shape_ = shape_of(param_);
    ranges_.push_back({byte_range(param_), "param"});
  }

  // An array the kernel only reads.
  py::array read(const py::object& obj, const char* name) { return add(obj, name, false); }
  // An array the kernel reads and writes.
  py::array written(const py::object& obj, const char* name) { return add(obj, name, true); }
  // A written array that is present exactly when `wanted` (None otherwise), as `why` says.
  py::array optional_written(const py::object& obj, const char* name, bool wanted, const char* why) {
    if (obj.is_none() == wanted)
      throw py::value_error(std::string(name) + ": expected " + (wanted ? "an array" : "None") + " " + why +
                            ", got " + (wanted ? "None" : "an array"));
    return wanted ? written(obj, name) : absent();
  }

  const py::array& param() const { return param_; }
  int64_t size() const { return static_cast<int64_t>(param_.size()); }
  bool is_double() const { return same_dtype(param_.dtype(), py::dtype::of<double>()); }

 private:
  py::array add(const py::object& obj, const char* name, bool writes) {
    py::array a = ndarray(obj, name);
    if (!same_dtype(a.dtype(), param_.dtype()))
      throw py::type_error(std::string(name) + ": expected dtype " + dtype_str(param_) +
                           " (the dtype of param), got " + dtype_str(a));
    if (shape_of(a) != shape_)
      throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape_) +
                            " (the shape of param), got " + shape_str(shape_of(a)));
    check_layout(a, name);
    if (writes) check_writeable(a, name);
    const ByteRange r = byte_range(a);
    for (const auto& [other, other_name] : ranges_)
      if (overlap(r, other)) throw py::value_error(std::string(name) + ": must not share memory with " + other_name);
    ranges_.push_back({r, name});
    return a;
  }

  py::array param_;
  std::vector<int64_t> shape_;
  std::vector<std::pair<ByteRange, std::string>> ranges_;
};

// Runs kernel(tag) with a float or double tag, as the array's dtype, without the GIL.
template <typename Kernel>
void on_dtype(bool is_double, Kernel&& kernel) {
  KernelCall call;
  if (is_double)
    kernel(double{});
  else
    kernel(float{});
}

// A C-contiguous float32/float64 array that a gradient tool reads (and writes when `writes`).
py::array tool_array(const py::object& obj, bool writes) {
  py::array a = ndarray(obj, "x");
  check_float_dtype(a, "x");
  check_layout(a, "x");
  if (writes) check_writeable(a, "x");
  return a;
}

bool is_double(const py::array& a) { return same_dtype(a.dtype(), py::dtype::of<double>()); }

void sgd_step_py(const py::object& param, const py::object& grad, const py::object& momentum_buffer, double lr,
                 double momentum, double dampening, double weight_decay, bool nesterov, bool first_step) {
  UpdateArrays a(param);
  py::array g = a.read(grad, "grad");
  py::array buf = a.optional_written(momentum_buffer, "momentum_buffer", momentum != 0, "exactly when momentum != 0");
  const SgdOptions options{lr, momentum, dampening, weight_decay, nesterov};
  on_dtype(a.is_double(), [&](auto tag) {
    using T = decltype(tag);
    sgd_step<T>(a.size(), mptr<T>(a.param()), cptr<T>(g), mptr<T>(buf), first_step, options);
  });
}

void adam_step_py(const py::object& param, const py::object& grad, const py::object& exp_avg,
                  const py::object& exp_avg_sq, const py::object& max_exp_avg_sq, int64_t step, double lr,
                  double beta1, double beta2, double eps, double weight_decay, bool decoupled_weight_decay) {
  if (step < 1) throw py::value_error("step: expected an int >= 1 (this step's count), got " + std::to_string(step));
  UpdateArrays a(param);
  py::array g = a.read(grad, "grad");
  py::array m = a.written(exp_avg, "exp_avg");
  py::array v = a.written(exp_avg_sq, "exp_avg_sq");
  py::array v_max = max_exp_avg_sq.is_none() ? absent() : a.written(max_exp_avg_sq, "max_exp_avg_sq");
  const AdamOptions options{lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, step};
  on_dtype(a.is_double(), [&](auto tag) {
    using T = decltype(tag);
    adam_step<T>(a.size(), mptr<T>(a.param()), cptr<T>(g), mptr<T>(m), mptr<T>(v), mptr<T>(v_max), options);
  });
}

void rmsprop_step_py(const py::object& param, const py::object& grad, const py::object& square_avg,
                     const py::object& grad_avg, const py::object& momentum_buffer, double lr, double alpha,
                     double eps, double weight_decay, double momentum) {
  UpdateArrays a(param);
  py::array g = a.read(grad, "grad");
  py::array sq = a.written(square_avg, "square_avg");
  py::array ga = grad_avg.is_none() ? absent() : a.written(grad_avg, "grad_avg");
  py::array buf = a.optional_written(momentum_buffer, "momentum_buffer", momentum > 0, "exactly when momentum > 0");
  const RmspropOptions options{lr, alpha, eps, weight_decay, momentum};
  on_dtype(a.is_double(), [&](auto tag) {
    using T = decltype(tag);
    rmsprop_step<T>(a.size(), mptr<T>(a.param()), cptr<T>(g), mptr<T>(sq), mptr<T>(ga), mptr<T>(buf), options);
  });
}

// A reduction over x in double: reduce(n, data) for x's element type, without the GIL.
template <typename Reduce>
double reduce_py(const py::object& x, Reduce&& reduce) {
  py::array a = tool_array(x, false);
  double result = 0;
  on_dtype(is_double(a), [&](auto tag) {
    using T = decltype(tag);
    result = reduce(static_cast<int64_t>(a.size()), cptr<T>(a));
  });
  return result;
}

}  // namespace

void bind_optimizers(py::module_& m) {
  using py::arg;
  m.def("sgd_step", &sgd_step_py, arg("param"), arg("grad"), arg("momentum_buffer").none(true), py::kw_only(),
        arg("lr"), arg("momentum"), arg("dampening"), arg("weight_decay"), arg("nesterov"), arg("first_step"),
        "One torch.optim.SGD update of param in place (training/optimizers.h). momentum_buffer: None exactly when "
        "momentum == 0; first_step: the buffer is set to the (decayed) gradient instead of read.");
  m.def("adam_step", &adam_step_py, arg("param"), arg("grad"), arg("exp_avg"), arg("exp_avg_sq"),
        arg("max_exp_avg_sq").none(true), py::kw_only(), arg("step"), arg("lr"), arg("beta1"), arg("beta2"),
        arg("eps"), arg("weight_decay"), arg("decoupled_weight_decay"),
        "One torch.optim.Adam (AdamW with decoupled_weight_decay) update of param in place; step counts this step "
        "(>= 1); max_exp_avg_sq: an array with amsgrad, else None.");
  m.def("rmsprop_step", &rmsprop_step_py, arg("param"), arg("grad"), arg("square_avg"), arg("grad_avg").none(true),
        arg("momentum_buffer").none(true), py::kw_only(), arg("lr"), arg("alpha"), arg("eps"), arg("weight_decay"),
        arg("momentum"),
        "One torch.optim.RMSprop update of param in place; grad_avg: an array when centered, else None; "
        "momentum_buffer: None exactly when momentum == 0.");
  m.def(
      "sum_squares",
      [](const py::object& x) {
        return reduce_py(x, [](int64_t n, const auto* p) { return sum_squares(n, p); });
      },
      arg("x"), "The sum of x's squares in double, in an order that does not depend on the thread count.");
  m.def(
      "sum_abs_pow",
      [](const py::object& x, double p) {
        if (!(p > 0) || std::isinf(p))
          throw py::value_error("p: expected a finite number > 0, got " + py::repr(py::float_(p)).cast<std::string>());
        return reduce_py(x, [p](int64_t n, const auto* data) { return sum_abs_pow(n, data, p); });
      },
      arg("x"), arg("p"), "The sum of |x|**p in double, in an order that does not depend on the thread count.");
  m.def(
      "max_abs",
      [](const py::object& x) { return reduce_py(x, [](int64_t n, const auto* p) { return max_abs(n, p); }); },
      arg("x"), "The largest |x| (0.0 for an empty x; NaN when x holds a NaN).");
  m.def(
      "scale_",
      [](const py::object& x, double factor) {
        py::array a = tool_array(x, true);
        on_dtype(is_double(a), [&](auto tag) {
          using T = decltype(tag);
          scale<T>(static_cast<int64_t>(a.size()), mptr<T>(a), factor);
        });
      },
      arg("x"), arg("factor"), "x *= factor in place (factor rounded to x's dtype first; one below the dtype's smallest normal\n"
      "number multiplies in a wider type, as flush-to-zero would read it as 0).");
  m.def(
      "clamp_",
      [](const py::object& x, double limit) {
        if (!(limit >= 0))
          throw py::value_error("limit: expected a number >= 0, got " +
                                py::repr(py::float_(limit)).cast<std::string>());
        py::array a = tool_array(x, true);
        on_dtype(is_double(a), [&](auto tag) {
          using T = decltype(tag);
          clamp<T>(static_cast<int64_t>(a.size()), mptr<T>(a), limit);
        });
      },
      arg("x"), arg("limit"), "Clamp x to [-limit, limit] in place (NaN stays NaN).");
}

}  // namespace pylstm
