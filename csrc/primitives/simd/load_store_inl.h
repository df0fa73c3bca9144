// Loads and stores of whole or partial registers over Vec<T>, compiled once per ISA (for_isa_inl.h includes this
// file in every ISA's namespace, before the body it compiles).
namespace pylstm {
namespace PYLSTM_SIMD_NS {

// Loads/stores `w` lanes (w = kLanes: a whole register).
template <typename V>
inline typename V::Reg load_n(const typename V::T* p, int w) {
  return w == V::kLanes ? V::load(p) : V::load_partial(p, w);
}
template <typename V>
inline void store_n(typename V::T* p, typename V::Reg v, int w) {
  if (w == V::kLanes) V::store(p, v);
  else V::store_partial(p, v, w);
}

// Stores a value of an output too large to stay in the caches (the caller decides which; for the time loops,
// sequence/outputs.h): with `stream`, a whole register at an aligned address goes to memory past the caches (a
// non-temporal store), without the line first being read in for it. The caller ends its streams with store_fence
// (cpu.h).
template <typename V>
inline void store_stream(typename V::T* p, typename V::Reg v, int w, bool stream) {
  if (stream && w == V::kLanes && reinterpret_cast<uintptr_t>(p) % sizeof(typename V::Reg) == 0) V::stream(p, v);
  else store_n<V>(p, v, w);
}


}  // namespace PYLSTM_SIMD_NS
}  // namespace pylstm
