// The Elman RNN's per-unit step updates over Vec<T>, compiled once per ISA by units.cpp into RnnUnits (units.h).
// Each works on units [0, n) of one batch row, `n` counted from the pointers given (the caller offsets them to its
// first unit); gate g of a (G*H)-wide row is at offset g * H (PyTorch's gate-blocked layout). Stores to a saved or
// gradient output take store_stream's `stream` (primitives/simd/load_store_inl.h).

namespace pylstm {
namespace PYLSTM_SIMD_NS {

// RNN step: h = act(pre) in place (tanh, or relu keeping NaN).
template <typename V>
void rnn_forward_units(int64_t n, bool relu, typename V::T* h) {
  using Reg = typename V::Reg;
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg p = load_n<V>(h + j, w);
    // relu: p where p > 0, 0 where p <= 0, NaN where NaN (compares false on both tests).
    const Reg y = relu ? V::select(V::ge(V::zero(), p), V::zero(), p) : tanh<V>(p);
    store_n<V>(h + j, y, w);
  }
}

// RNN step backward: dpre = (dh + dout) * act'(h), act' from h itself (tanh: 1 - h^2; relu: h > 0); dpre with
// store_stream's `stream`.
template <typename V>
void rnn_backward_units(int64_t n, bool relu, const typename V::T* h, const typename V::T* dout,
                        const typename V::T* dh, typename V::T* dpre, bool stream) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1);
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg hj = load_n<V>(h + j, w);
    const Reg d = V::add(load_n<V>(dh + j, w), load_n<V>(dout + j, w));
    const Reg grad = relu ? V::select(V::gt(hj, V::zero()), one, V::zero()) : V::fnmadd(hj, hj, one);
    store_stream<V>(dpre + j, V::mul(d, grad), w, stream);
  }
}

// This ISA's table (primitives/simd/for_isa_inl.h).
template <typename T>
constexpr RnnUnits<T> make_table() {
  using V = Vec<T>;
  RnnUnits<T> units{};
  units.forward = &rnn_forward_units<V>;
  units.backward = &rnn_backward_units<V>;
  return units;
}

}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm
