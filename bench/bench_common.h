// bench/bench_common.h: what every benchmark program prints and summarises its runs with: the
// CPU's name (from /proc/cpuinfo) and the median of a set of timings.
#pragma once

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace aft_bench {

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

// The middle value (the mean of the two middle ones for an even count); v must not be empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace aft_bench
