// What every binding shares: argument checks that name the argument, what was expected and what came, and the
// allocation of output arrays. Arrays are never converted: a wrong dtype, shape or layout is an error, not a copy.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "primitives/buffers.h"

namespace pylstm {

namespace py = pybind11;

inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::vector<int64_t> shape_of(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

inline std::string type_name(const py::handle& obj) {
  return py::str(py::type::of(obj).attr("__name__")).cast<std::string>();
}

// Equal dtypes (same type and byte order), not the same dtype object: numpy may hand out distinct but equivalent
// descriptor objects (e.g. with metadata), which must not be rejected as "expected float32, got float32".
inline bool same_dtype(const py::dtype& a, const py::dtype& b) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.ptr(), b.ptr());
}

inline bool is_float_dtype(const py::array& a) {
  return same_dtype(a.dtype(), py::dtype::of<float>()) || same_dtype(a.dtype(), py::dtype::of<double>());
}

// A float32 or float64 array, else a TypeError naming the argument: the one check of the dtype that sets a call's.
inline void check_float_dtype(const py::array& a, const std::string& name) {
  if (!is_float_dtype(a)) throw py::type_error(name + ": expected dtype float32 or float64, got " + dtype_str(a));
}

// Two optional arguments that come together (a bias pair, or their gradients): both arrays or both None.
inline void check_both_or_none(const py::object& a, const py::object& b, const std::string& a_name,
                               const std::string& b_name) {
  if (a.is_none() != b.is_none())
    throw py::value_error(a_name + ", " + b_name + ": expected both arrays or both None, got " +
                          (a.is_none() ? "None and an array" : "an array and None"));
}

// An absent optional array (None): a null handle, so that cptr/mptr give nullptr. (A default-constructed py::array
// is not null but a real empty float64 array, whose data pointer the kernels would read as a bias or dh_n.)
inline py::array absent() { return py::reinterpret_steal<py::array>(py::handle()); }

// obj as an ndarray, or a TypeError naming the argument.
inline py::array ndarray(const py::object& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " + type_name(obj));
  return py::reinterpret_borrow<py::array>(obj);
}

// The kernels read every array as one C-contiguous block of aligned elements.
inline void check_layout(const py::array& a, const char* name) {
  const int flags = a.flags();
  if (!(flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
    throw py::value_error(std::string(name) +
                          ": expected a C-contiguous array, got a strided view (use numpy.ascontiguousarray)");
  if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(std::string(name) + ": expected an array aligned to its element size, got a misaligned one");
}

inline void check_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + ": expected a writeable array, got a read-only one");
}

// The byte range of an array's data, to refuse outputs that overlap inputs (a silent wrong answer otherwise).
using ByteRange = std::pair<uintptr_t, uintptr_t>;
inline ByteRange byte_range(const py::array& a) {
  const auto begin = reinterpret_cast<uintptr_t>(a.data());
  return {begin, begin + static_cast<uintptr_t>(a.nbytes())};
}
inline bool overlap(const ByteRange& a, const ByteRange& b) {
  return a.first < b.second && b.first < a.second && a.first != a.second && b.first != b.second;
}

template <typename T>
const T* cptr(const py::array& a) {
  return a ? static_cast<const T*>(a.data()) : nullptr;
}
template <typename T>
T* mptr(const py::array& a) {
  return a ? static_cast<T*>(const_cast<void*>(a.data())) : nullptr;
}

// A new output array, its memory from allocate_output (primitives/buffers.h) when that gives a block, which goes back
// when NumPy frees the array.
template <typename T>
py::array_t<T> new_output(const std::vector<int64_t>& shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  size_t bytes = sizeof(T);
  for (const int64_t d : shape) bytes *= static_cast<size_t>(d);
  const OutputBlock block = allocate_output(bytes);
  if (block.data == nullptr) return py::array_t<T>(dims);
  return py::array_t<T>(dims, static_cast<T*>(block.data), py::capsule(block.data, block.release));
}

}  // namespace pylstm
