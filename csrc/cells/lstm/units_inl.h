// The LSTM's per-unit step updates over Vec<T>, compiled once per ISA by units.cpp into LstmUnits (units.h).
// Each works on units [0, n) of one batch row, `n` counted from the pointers given (the caller offsets them to its
// first unit); gate g of a (G*H)-wide row is at offset g * H (PyTorch's gate-blocked layout). Stores to a saved or
// gradient output take store_stream's `stream` (primitives/simd/load_store_inl.h).

namespace pylstm {
namespace PYLSTM_SIMD_NS {

// LSTM step. pre: the i, f, g, o pre-activations without the peephole terms (input and recurrent parts summed,
// biases included), row width >= 4H (in); saved (when not null): i, f, g, o, at the same offsets (out; store_stream's
// `stream`). c_prev in;
// c = f * c_prev + i * g and h = o * tanh(c) out (h is m, before a projection). c may alias c_prev.
// Peepholes (all three or none): i and f see p * c_prev, o sees p_o * c.
template <typename V, bool kPeepholes>
inline void lstm_forward_loop(int64_t n, int64_t H, const typename V::T* pre, const typename V::T* c_prev,
                              typename V::T* c, typename V::T* h, const Peepholes<typename V::T>& p,
                              typename V::T* saved, bool stream) {
  using Reg = typename V::Reg;
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg cp = load_n<V>(c_prev + j, w);
    Reg pi = load_n<V>(pre + j, w), pf = load_n<V>(pre + H + j, w), po = load_n<V>(pre + 3 * H + j, w);
    if (kPeepholes) {
      pi = V::fmadd(load_n<V>(p.i + j, w), cp, pi);
      pf = V::fmadd(load_n<V>(p.f + j, w), cp, pf);
    }
    const Reg i = sigmoid<V>(pi), f = sigmoid<V>(pf), g = tanh<V>(load_n<V>(pre + 2 * H + j, w));
    const Reg cj = V::add(V::mul(f, cp), V::mul(i, g));
    if (kPeepholes) po = V::fmadd(load_n<V>(p.o + j, w), cj, po);
    const Reg o = sigmoid<V>(po);
    store_n<V>(c + j, cj, w);
    store_n<V>(h + j, V::mul(o, tanh<V>(cj)), w);
    if (saved != nullptr) {
      store_stream<V>(saved + j, i, w, stream);
      store_stream<V>(saved + H + j, f, w, stream);
      store_stream<V>(saved + 2 * H + j, g, w, stream);
      store_stream<V>(saved + 3 * H + j, o, w, stream);
    }
  }
}

template <typename V>
void lstm_forward_units(int64_t n, int64_t H, const typename V::T* pre, const typename V::T* c_prev, typename V::T* c,
                        typename V::T* h, const Peepholes<typename V::T>& p, typename V::T* saved, bool stream) {
  if (p.i != nullptr) lstm_forward_loop<V, true>(n, H, pre, c_prev, c, h, p, saved, stream);
  else lstm_forward_loop<V, false>(n, H, pre, c_prev, c, h, p, saved, stream);
}

// LSTM step backward. gates: saved i, f, g, o; c: c_t; dh: gradient w.r.t. h_t (m_t with a projection) from later
// steps, plus dout when dout is not null (read); dc: w.r.t. c_t from step t+1 (in), w.r.t. c_{t-1} (out); dpre: the
// (4H) pre-activation gradients (out; store_stream's `stream`); m: o * tanh(c_t) (out, when not null: a projection's
// weight gradient needs it).
template <typename V, bool kPeepholes>
inline void lstm_backward_loop(int64_t n, int64_t H, const typename V::T* gates, const typename V::T* c,
                               const typename V::T* c_prev, const typename V::T* dout, const typename V::T* dh,
                               typename V::T* dc, typename V::T* dpre, const Peepholes<typename V::T>& p,
                               typename V::T* m, bool stream) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1);
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg i = load_n<V>(gates + j, w), f = load_n<V>(gates + H + j, w);
    const Reg g = load_n<V>(gates + 2 * H + j, w), o = load_n<V>(gates + 3 * H + j, w);
    const Reg cp = load_n<V>(c_prev + j, w);
    const Reg dht = dout == nullptr ? load_n<V>(dh + j, w) : V::add(load_n<V>(dh + j, w), load_n<V>(dout + j, w));
    const Reg tanh_c = tanh<V>(load_n<V>(c + j, w));
    const Reg dpo = V::mul(V::mul(V::mul(dht, tanh_c), o), V::sub(one, o));
    Reg dct = V::add(load_n<V>(dc + j, w), V::mul(V::mul(dht, o), V::fnmadd(tanh_c, tanh_c, one)));
    if (kPeepholes) dct = V::fmadd(dpo, load_n<V>(p.o + j, w), dct);
    const Reg dpi = V::mul(V::mul(V::mul(dct, g), i), V::sub(one, i));
    const Reg dpf = V::mul(V::mul(V::mul(dct, cp), f), V::sub(one, f));
    store_stream<V>(dpre + j, dpi, w, stream);
    store_stream<V>(dpre + H + j, dpf, w, stream);
    store_stream<V>(dpre + 2 * H + j, V::mul(V::mul(dct, i), V::fnmadd(g, g, one)), w, stream);
    store_stream<V>(dpre + 3 * H + j, dpo, w, stream);
    Reg dcp = V::mul(dct, f);
    if (kPeepholes) dcp = V::fmadd(dpf, load_n<V>(p.f + j, w), V::fmadd(dpi, load_n<V>(p.i + j, w), dcp));
    store_n<V>(dc + j, dcp, w);
    if (m != nullptr) store_n<V>(m + j, V::mul(o, tanh_c), w);
  }
}

template <typename V>
void lstm_backward_units(int64_t n, int64_t H, const typename V::T* gates, const typename V::T* c,
                         const typename V::T* c_prev, const typename V::T* dout, const typename V::T* dh,
                         typename V::T* dc, typename V::T* dpre, const Peepholes<typename V::T>& p, typename V::T* m,
                         bool stream) {
  if (p.i != nullptr) lstm_backward_loop<V, true>(n, H, gates, c, c_prev, dout, dh, dc, dpre, p, m, stream);
  else lstm_backward_loop<V, false>(n, H, gates, c, c_prev, dout, dh, dc, dpre, p, m, stream);
}

// This ISA's table (primitives/simd/for_isa_inl.h).
template <typename T>
constexpr LstmUnits<T> make_table() {
  using V = Vec<T>;
  LstmUnits<T> units{};
  units.forward = &lstm_forward_units<V>;
  units.backward = &lstm_backward_units<V>;
  return units;
}

}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm
