// core/gemm/dispatch.cpp: which micro-kernel path (core/gemm/kernels.h) the CPU GEMM uses.
// Chosen once, at the first gemm: AFT_CPU_ISA if set (avx512 | avx2 | scalar), else the widest
// path CPUID reports; tests and benchmarks switch paths with gemm_set_isa.
#include <atomic>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/gemm/gemm.h"
#include "core/gemm/kernels.h"

namespace aft {
namespace {

// -1 until the first gemm (or gemm_set_isa) fixes the path.
std::atomic<int> g_isa{-1};

std::string supported_list() {
  std::string s;
  for (int i = 2; i >= 0; --i)
    if (gemm_isa_supported(GemmIsa(i))) s += std::string(s.empty() ? "" : ", ") + gemm_isa_name(GemmIsa(i));
  return s;
}

}  // namespace

GemmIsa gemm_detail::parse_isa(const char* env) {
  if (env == nullptr || *env == '\0') {
    if (gemm_isa_supported(GemmIsa::avx512)) return GemmIsa::avx512;
    if (gemm_isa_supported(GemmIsa::avx2)) return GemmIsa::avx2;
    return GemmIsa::scalar;
  }
  const std::string v = env;
  for (GemmIsa isa : kGemmIsas)
    if (v == gemm_isa_name(isa)) {
      AFT_CHECK(gemm_isa_supported(isa),
                "AFT_CPU_ISA={}: this CPU does not support that instruction set (it supports: {})",
                v, supported_list());
      return isa;
    }
  AFT_ERROR("AFT_CPU_ISA='{}' is not a known instruction set; use one of avx512, avx2, scalar "
            "(this CPU supports: {}), or unset it for the widest", v, supported_list());
}

const char* gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::scalar: return "scalar";
    case GemmIsa::avx2: return "avx2";
    case GemmIsa::avx512: return "avx512";
  }
  AFT_ASSERT(false && "gemm_isa_name: not a GemmIsa");
  return "";
}

bool gemm_isa_supported(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::scalar: return true;
    case GemmIsa::avx2: return gemm_detail::cpu_has_avx2_fma();
    case GemmIsa::avx512: return gemm_detail::cpu_has_avx512();
  }
  return false;
}

GemmIsa gemm_isa() {
  int v = g_isa.load(std::memory_order_acquire);
  if (v < 0) {
    // Two threads racing here compute the same answer; an invalid AFT_CPU_ISA throws and
    // leaves the choice open, so every later gemm reports it too.
    v = static_cast<int>(gemm_detail::parse_isa(std::getenv("AFT_CPU_ISA")));
    g_isa.store(v, std::memory_order_release);
  }
  return static_cast<GemmIsa>(v);
}

void gemm_set_isa(GemmIsa isa) {
  AFT_CHECK(gemm_isa_supported(isa), "gemm_set_isa({}): this CPU does not support it (it supports: {})",
            gemm_isa_name(isa), supported_list());
  g_isa.store(static_cast<int>(isa), std::memory_order_release);
}

namespace {
template <GemmIsa I>
std::string kernel_label() {
  using F = gemm_detail::Config<float, I>;
  using D = gemm_detail::Config<double, I>;
  return fmt::format("{} (f32 {}x{}, f64 {}x{})", gemm_isa_name(I), F::MR, F::NR, D::MR, D::NR);
}
}  // namespace

const char* gemm_kernel_name() {
  static const std::string names[] = {kernel_label<GemmIsa::scalar>(),
                                      kernel_label<GemmIsa::avx2>(),
                                      kernel_label<GemmIsa::avx512>()};
  return names[static_cast<int>(gemm_isa())].c_str();
}

}  // namespace aft
