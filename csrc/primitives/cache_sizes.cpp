#include "primitives/cache_sizes.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "primitives/cpu.h"  // PYLSTM_X86

#ifdef PYLSTM_X86
#include <cpuid.h>
#endif

namespace pylstm {

namespace {

constexpr int64_t kMaxBytes = int64_t(1) << 40;

// " 512K " -> 524288: a whole number of bytes with an optional K, M or G (powers of 1024, either case, optionally
// followed by "B" or "iB"); throws std::invalid_argument saying what was wrong.
int64_t parse_size(const std::string& field) {
  size_t a = 0, b = field.size();
  while (a < b && std::isspace(static_cast<unsigned char>(field[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(field[b - 1]))) --b;
  const std::string s = field.substr(a, b - a);
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0) throw std::invalid_argument("'" + s + "' is not a size (a whole number, then K, M or G)");
  if (digits > 13) throw std::invalid_argument("'" + s + "' is larger than 1T");
  int64_t value = std::stoll(s.substr(0, digits));
  std::string unit;
  for (size_t k = digits; k < s.size(); ++k) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(s[k])));
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit[0] == 'K' || unit[0] == 'M' || unit[0] == 'G') {
    const std::string rest = unit.substr(1);
    if (rest.empty() || rest == "B" || rest == "IB") shift = unit[0] == 'K' ? 10 : unit[0] == 'M' ? 20 : 30;
  }
  if (shift < 0) throw std::invalid_argument("'" + s + "' has an unknown unit (expected K, M or G)");
  if (value > (kMaxBytes >> shift)) throw std::invalid_argument("'" + s + "' is larger than 1T");
  value <<= shift;
  if (value <= 0) throw std::invalid_argument("'" + s + "' is not positive");
  if (value < 1024) throw std::invalid_argument("'" + s + "' is less than 1K (a K, M or G left out?)");
  return value;
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return {};
  return line;
}

// Sizes of cpu0's caches from Linux's sysfs; l1d and l2 stay 0 where it says nothing (not Linux, a container
// without /sys).
CacheSizes from_sysfs() {
  CacheSizes c = {0, 0, 0, "sysfs"};
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    const std::string level = read_line(dir + "level"), type = read_line(dir + "type"), size = read_line(dir + "size");
    if (level.empty() || size.empty()) continue;
    if (type != "Data" && type != "Unified") continue;
    int64_t bytes = 0;
    try {
      bytes = parse_size(size);
    } catch (const std::invalid_argument&) {
      continue;
    }
    if (level == "1") c.l1d = bytes;
    else if (level == "2") c.l2 = bytes;
    else if (level == "3") c.l3 = bytes;
  }
  return c;
}

// Sizes from CPUID's deterministic cache parameters: leaf 4 (Intel), else 0x8000001D (AMD; the same layout); l1d and
// l2 stay 0 where neither answers.
CacheSizes from_cpuid() {
  CacheSizes c = {0, 0, 0, "cpuid"};
#ifdef PYLSTM_X86
  auto walk = [&](unsigned leaf) {
    for (unsigned sub = 0; sub < 16; ++sub) {
      unsigned eax, ebx, ecx, edx;
      __cpuid_count(leaf, sub, eax, ebx, ecx, edx);
      const unsigned type = eax & 0x1Fu, level = (eax >> 5) & 0x7u;
      if (type == 0) break;       // no more caches
      if (type == 2) continue;    // instructions
      const int64_t ways = ((ebx >> 22) & 0x3FFu) + 1, partitions = ((ebx >> 12) & 0x3FFu) + 1;
      const int64_t line = (ebx & 0xFFFu) + 1, sets = int64_t(ecx) + 1;
      const int64_t bytes = ways * partitions * line * sets;
      if (level == 1) c.l1d = bytes;
      else if (level == 2) c.l2 = bytes;
      else if (level == 3) c.l3 = bytes;
    }
  };
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_max(0, nullptr) >= 4) walk(4);
  if ((c.l1d == 0 || c.l2 == 0) && __get_cpuid_max(0x80000000u, nullptr) >= 0x8000001Du &&
      __get_cpuid(0x80000001u, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 22))) {  // topology extensions
    c = {0, 0, 0, "cpuid"};
    walk(0x8000001Du);
  }
#endif
  return c;
}

CacheSizes detect() {
  for (const CacheSizes& c : {from_sysfs(), from_cpuid()})
    if (c.l1d > 0 && c.l2 > 0) return c;
  return kDefaultCacheSizes;
}

struct Found {
  CacheSizes sizes;
  std::string error;
};

Found find() {
  Found f{detect(), {}};
  const char* text = std::getenv("PYLSTM_CACHE_SIZES");
  if (text == nullptr || *text == '\0') return f;
  try {
    f.sizes = parse_cache_sizes(text);
  } catch (const std::invalid_argument& e) {
    f.error = std::string("PYLSTM_CACHE_SIZES='") + text + "': " + e.what();
  }
  return f;
}

const Found& found() {
  static const Found f = find();
  return f;
}

}  // namespace

CacheSizes parse_cache_sizes(const std::string& text) {
  std::vector<std::string> fields(1);
  for (char ch : text) {
    if (ch == ',') fields.emplace_back();
    else fields.back() += ch;
  }
  if (fields.size() != 3)
    throw std::invalid_argument("expected three sizes L1D,L2,L3 such as 32K,512K,32M, got " +
                                std::to_string(fields.size()) + " field" + (fields.size() == 1 ? "" : "s"));
  const CacheSizes c = {parse_size(fields[0]), parse_size(fields[1]), parse_size(fields[2]), "override"};
  if (c.l1d > c.l2 || c.l2 > c.l3)
    throw std::invalid_argument("expected L1D <= L2 <= L3 (three sizes L1D,L2,L3 such as 32K,512K,32M)");
  return c;
}

const CacheSizes& cache_sizes() { return found().sizes; }

const std::string& cache_sizes_error() { return found().error; }

}  // namespace pylstm
