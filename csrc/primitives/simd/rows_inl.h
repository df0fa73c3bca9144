// Elementwise activations over arrays and the pieces of a softmax over a row, over Vec<T>, compiled once per ISA into
// the Ops table (ops_table_inl.h).
namespace pylstm {
namespace PYLSTM_SIMD_NS {

// ------------------------------------------------------------------------------------------------- activations

template <typename V>
void sigmoid_array(int64_t n, const typename V::T* x, typename V::T* y) {
  constexpr int L = V::kLanes;
  int64_t j = 0;
  for (; j + L <= n; j += L) V::store(y + j, sigmoid<V>(V::load(x + j)));
  if (j < n) V::store_partial(y + j, sigmoid<V>(V::load_partial(x + j, static_cast<int>(n - j))), static_cast<int>(n - j));
}

template <typename V>
void tanh_array(int64_t n, const typename V::T* x, typename V::T* y) {
  constexpr int L = V::kLanes;
  int64_t j = 0;
  for (; j + L <= n; j += L) V::store(y + j, tanh<V>(V::load(x + j)));
  if (j < n) V::store_partial(y + j, tanh<V>(V::load_partial(x + j, static_cast<int>(n - j))), static_cast<int>(n - j));
}

// --------------------------------------------------------------------------------------------------- row sums
// The pieces of a numerically stable softmax over one row of n values (a cross-entropy's hot path): the row's
// maximum, the exponentials shifted by it together with their sum, and an affine map of the row in place. Sums are
// kept in the register's lanes and added across them at the end, so a row's result depends on the ISA but never on
// the thread that computes it.

// The sum of a register's lanes through memory, lane 0 first. (Not V::reduce_add: GCC 12 warns about its AVX-512
// form here, a false positive in its own header, and a row needs only one such sum.)
template <typename V>
inline typename V::T lanes_sum(typename V::Reg a) {
  alignas(64) typename V::T lanes[V::kLanes];
  V::store(lanes, a);
  typename V::T sum = lanes[0];
  for (int k = 1; k < V::kLanes; ++k) sum += lanes[k];
  return sum;
}

// The largest of x[0..n) (n >= 1). A NaN may or may not win; the caller's exponentials turn NaN either way.
template <typename V>
typename V::T row_max(int64_t n, const typename V::T* x) {
  using T = typename V::T;
  constexpr int L = V::kLanes;
  int64_t j = 0;
  T m = x[0];
  if (n >= L) {
    typename V::Reg acc = V::load(x);
    for (j = L; j + L <= n; j += L) acc = V::max(acc, V::load(x + j));
    m = V::reduce_max(acc);
  }
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;  // the tail one by one: a partial load's zeros would join the max
  return m;
}

// The sum of x[0..n).
template <typename V>
typename V::T row_sum(int64_t n, const typename V::T* x) {
  constexpr int L = V::kLanes;
  typename V::Reg acc = V::zero();
  int64_t j = 0;
  for (; j + L <= n; j += L) acc = V::add(acc, V::load(x + j));
  if (j < n) acc = V::add(acc, V::load_partial(x + j, static_cast<int>(n - j)));
  return lanes_sum<V>(acc);
}

// y[j] = exp(x[j] - shift) for j < n, where shift >= every x[j] (so exp sees arguments <= 0 only and cannot
// overflow); returns the sum of the y[j]. y may alias x.
template <typename V>
typename V::T exp_minus_sum(int64_t n, const typename V::T* x, typename V::T shift, typename V::T* y) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int L = V::kLanes;
  const Reg s = V::set1(shift);
  Reg acc = V::zero();
  int64_t j = 0;
  for (; j + L <= n; j += L) {
    const Reg e = exp_nonpositive<V>(V::sub(V::load(x + j), s));
    V::store(y + j, e);
    acc = V::add(acc, e);
  }
  T tail = T(0);
  if (j < n) {  // the missing lanes of a partial load would be exp(0 - shift): summed from the stored values instead
    const int w = static_cast<int>(n - j);
    V::store_partial(y + j, exp_nonpositive<V>(V::sub(V::load_partial(x + j, w), s)), w);
    for (int k = 0; k < w; ++k) tail += y[j + k];
  }
  return lanes_sum<V>(acc) + tail;
}

// y[j] = a * y[j] - b for j < n, in place.
template <typename V>
void scale_minus(int64_t n, typename V::T* y, typename V::T a, typename V::T b) {
  constexpr int L = V::kLanes;
  const typename V::Reg va = V::set1(a), vb = V::set1(b);
  int64_t j = 0;
  for (; j + L <= n; j += L) V::store(y + j, V::sub(V::mul(V::load(y + j), va), vb));
  if (j < n) {
    const int w = static_cast<int>(n - j);
    V::store_partial(y + j, V::sub(V::mul(V::load_partial(y + j, w), va), vb), w);
  }
}

}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm
