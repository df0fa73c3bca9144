// The CPU's cache sizes, read once at run time, from which the kernels' scheduling choices follow (threads of a
// loop, work items, streamed stores, blocking that does not change sums). Never the arithmetic order: what decides
// how a sum is split or in which order its terms add (the GEMM's k blocks, dots against packed panels) stays a fixed
// constant, so results are bitwise the same on every CPU of one ISA whatever its caches.
//
// Where they come from, the first that answers: the environment variable PYLSTM_CACHE_SIZES (below); Linux's sysfs
// (/sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}); CPUID (leaf 4 on Intel, 0x8000001D on AMD); else
// defaults of a recent server core (kDefaultCacheSizes).
//
// PYLSTM_CACHE_SIZES="L1D,L2,L3", e.g. "32K,512K,32M": three sizes in bytes, each a whole number with an optional
// suffix K, M or G (powers of 1024, either case, optionally followed by "B" or "iB"), blanks around them allowed;
// each from 1K to 1T, and L1D <= L2 <= L3. Meant for trying on one CPU the choices another would make.
#pragma once
#include <cstdint>
#include <string>

namespace pylstm {

struct CacheSizes {
  int64_t l1d;         // one core's L1 data cache
  int64_t l2;          // one core's L2 (shared only by its hyperthreads)
  int64_t l3;          // the L3 that cpu0 shares with its neighbours, all of it; 0 when none was reported
  const char* source;  // "override", "sysfs", "cpuid" or "default"
};

constexpr CacheSizes kDefaultCacheSizes = {int64_t(48) << 10, int64_t(2) << 20, int64_t(32) << 20, "default"};

// The sizes the kernels use, found once (above). Never throws: a malformed PYLSTM_CACHE_SIZES leaves the detected
// sizes in use and its error in cache_sizes_error().
const CacheSizes& cache_sizes();

// Empty, or why PYLSTM_CACHE_SIZES was rejected (a message that names the variable and its value). The module's
// import raises it as a ValueError, so that a mistyped override is not silently ignored.
const std::string& cache_sizes_error();

// PYLSTM_CACHE_SIZES's format (above) parsed; throws std::invalid_argument saying what was wrong.
CacheSizes parse_cache_sizes(const std::string& text);

}  // namespace pylstm
