// The GRU's per-unit step updates over Vec<T>, compiled once per ISA by units.cpp into GruUnits (units.h): r, z, n
// are the reset gate, the update gate and the candidate state.
// Each works on units [0, n) of one batch row, `n` counted from the pointers given (the caller offsets them to its
// first unit); gate g of a (G*H)-wide row is at offset g * H (PyTorch's gate-blocked layout). Stores to a saved or
// gradient output take store_stream's `stream` (primitives/simd/load_store_inl.h).

namespace pylstm {
namespace PYLSTM_SIMD_NS {

// GRU step, reset_after. pre: r, z, n input pre-activations (b_ih and b_hr, b_hz folded in), row width >= 3H;
// gh: the recurrent part W_hh h + [0, 0, b_hn] (3H). saved (when not null): r, z, n and hn (4H wide, out;
// store_stream's `stream`).
// h = (1 - z) * n + z * h_prev.
template <typename V>
void gru_forward_after_units(int64_t n, int64_t H, const typename V::T* pre, const typename V::T* gh,
                             const typename V::T* h_prev, typename V::T* h, typename V::T* saved, bool stream) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1);
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg r = sigmoid<V>(V::add(load_n<V>(pre + j, w), load_n<V>(gh + j, w)));
    const Reg z = sigmoid<V>(V::add(load_n<V>(pre + H + j, w), load_n<V>(gh + H + j, w)));
    const Reg hn = load_n<V>(gh + 2 * H + j, w);
    const Reg nn = tanh<V>(V::add(load_n<V>(pre + 2 * H + j, w), V::mul(r, hn)));
    store_n<V>(h + j, V::add(V::mul(V::sub(one, z), nn), V::mul(z, load_n<V>(h_prev + j, w))), w);
    if (saved != nullptr) {
      store_stream<V>(saved + j, r, w, stream);
      store_stream<V>(saved + H + j, z, w, stream);
      store_stream<V>(saved + 2 * H + j, nn, w, stream);
      store_stream<V>(saved + 3 * H + j, hn, w, stream);
    }
  }
}

// GRU step, reset_before, first half: r and z from pre (all biases folded) + grz (W_hr h, W_hz h); z written over
// pre's z (gru_forward_before_candidate_units reads it), r and z to saved when not null; rh = r * h_prev.
template <typename V>
void gru_forward_before_reset_update_units(int64_t n, int64_t H, typename V::T* pre, const typename V::T* grz,
                                           int64_t grz_h, const typename V::T* h_prev, typename V::T* rh,
                                           typename V::T* saved, bool stream) {
  using Reg = typename V::Reg;
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg r = sigmoid<V>(V::add(load_n<V>(pre + j, w), load_n<V>(grz + j, w)));
    const Reg z = sigmoid<V>(V::add(load_n<V>(pre + H + j, w), load_n<V>(grz + grz_h + j, w)));
    store_n<V>(pre + H + j, z, w);
    if (saved != nullptr) {
      store_stream<V>(saved + j, r, w, stream);
      store_stream<V>(saved + H + j, z, w, stream);
    }
    store_n<V>(rh + j, V::mul(r, load_n<V>(h_prev + j, w)), w);
  }
}

// GRU step, reset_before, second half: n = tanh(pre_n + gn) (gn = W_hn (r * h)), written to saved's n when not
// null; h = (1 - z) * n + z * h_prev (z from pre).
template <typename V>
void gru_forward_before_candidate_units(int64_t n, int64_t H, const typename V::T* pre, const typename V::T* gn,
                                        const typename V::T* h_prev, typename V::T* h, typename V::T* saved,
                                        bool stream) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1);
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg z = load_n<V>(pre + H + j, w);
    const Reg nn = tanh<V>(V::add(load_n<V>(pre + 2 * H + j, w), load_n<V>(gn + j, w)));
    if (saved != nullptr) store_stream<V>(saved + 2 * H + j, nn, w, stream);
    store_n<V>(h + j, V::add(V::mul(V::sub(one, z), nn), V::mul(z, load_n<V>(h_prev + j, w))), w);
  }
}

// GRU step backward, reset_after. gates: r, z, n, hn (4H); dh: in, gradient w.r.t. h_t from step t+1; out, its
// direct part dh_t * z (the caller adds dgh @ W_hh). dgx, dgh: the ih and hh pre-activation gradients (3H each;
// store_stream's `stream`).
template <typename V>
void gru_backward_after_units(int64_t n, int64_t H, const typename V::T* gates, const typename V::T* h_prev,
                              const typename V::T* dout, typename V::T* dh, typename V::T* dgx, typename V::T* dgh,
                              bool stream) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1);
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg r = load_n<V>(gates + j, w), z = load_n<V>(gates + H + j, w);
    const Reg nn = load_n<V>(gates + 2 * H + j, w), hn = load_n<V>(gates + 3 * H + j, w);
    const Reg dht = V::add(load_n<V>(dh + j, w), load_n<V>(dout + j, w));
    const Reg dn = V::mul(V::mul(dht, V::sub(one, z)), V::fnmadd(nn, nn, one));
    const Reg dz = V::mul(V::mul(V::mul(dht, V::sub(load_n<V>(h_prev + j, w), nn)), z), V::sub(one, z));
    const Reg dr = V::mul(V::mul(V::mul(dn, hn), r), V::sub(one, r));
    store_stream<V>(dgx + j, dr, w, stream);
    store_stream<V>(dgx + H + j, dz, w, stream);
    store_stream<V>(dgx + 2 * H + j, dn, w, stream);
    store_stream<V>(dgh + j, dr, w, stream);
    store_stream<V>(dgh + H + j, dz, w, stream);
    store_stream<V>(dgh + 2 * H + j, V::mul(dn, r), w, stream);
    store_n<V>(dh + j, V::mul(dht, z), w);
  }
}

// GRU step backward, reset_before, first half: dz and dn pre-activation gradients into dg (3H), dh -> dh_t * z
// (in: the gradient from step t+1).
template <typename V>
void gru_backward_before_update_candidate_units(int64_t n, int64_t H, const typename V::T* gates,
                                                const typename V::T* h_prev, const typename V::T* dout,
                                                typename V::T* dh, typename V::T* dg) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1);
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg z = load_n<V>(gates + H + j, w), nn = load_n<V>(gates + 2 * H + j, w);
    const Reg dht = V::add(load_n<V>(dh + j, w), load_n<V>(dout + j, w));
    store_n<V>(dg + H + j, V::mul(V::mul(V::mul(dht, V::sub(load_n<V>(h_prev + j, w), nn)), z), V::sub(one, z)), w);
    store_n<V>(dg + 2 * H + j, V::mul(V::mul(dht, V::sub(one, z)), V::fnmadd(nn, nn, one)), w);
    store_n<V>(dh + j, V::mul(dht, z), w);
  }
}

// GRU step backward, reset_before, second half: given drh = d(r * h_prev) = dn_pre @ W_hn, the r gradient into dg,
// dh += drh * r, and rh = r * h_prev (kept for dW_hn).
template <typename V>
void gru_backward_before_reset_units(int64_t n, const typename V::T* gates, const typename V::T* h_prev,
                                     const typename V::T* drh, typename V::T* dh, typename V::T* dg,
                                     typename V::T* rh) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1);
  for (int64_t j = 0; j < n; j += V::kLanes) {
    const int w = static_cast<int>(std::min<int64_t>(V::kLanes, n - j));
    const Reg r = load_n<V>(gates + j, w), hp = load_n<V>(h_prev + j, w), d = load_n<V>(drh + j, w);
    store_n<V>(dg + j, V::mul(V::mul(V::mul(d, hp), r), V::sub(one, r)), w);
    store_n<V>(dh + j, V::add(load_n<V>(dh + j, w), V::mul(d, r)), w);
    store_n<V>(rh + j, V::mul(r, hp), w);
  }
}

// This ISA's table (primitives/simd/for_isa_inl.h).
template <typename T>
constexpr GruUnits<T> make_table() {
  using V = Vec<T>;
  GruUnits<T> units{};
  units.forward_after = &gru_forward_after_units<V>;
  units.forward_before_reset_update = &gru_forward_before_reset_update_units<V>;
  units.forward_before_candidate = &gru_forward_before_candidate_units<V>;
  units.backward_after = &gru_backward_after_units<V>;
  units.backward_before_update_candidate = &gru_backward_before_update_candidate_units<V>;
  units.backward_before_reset = &gru_backward_before_reset_units<V>;
  return units;
}

}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm
