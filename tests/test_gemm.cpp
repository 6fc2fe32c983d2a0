// tests/test_gemm.cpp: the CPU gemm (core/gemm/gemm.h) against a naive triple loop on every
// micro-kernel path this CPU supports (AVX-512, AVX2+FMA, scalar; each is switched on in turn
// and the paths the CPU lacks are reported as not run): odd sizes around each path's tiles and
// blocks, the four transposes, alpha/beta, padded leading dims, skinny shapes (K large, M·N
// small), identical bits on 1 and 2 threads, and the AFT_CPU_ISA override's parsing and errors.
#include <cstdio>
#include <cstring>
#include <tuple>

#include "helpers.h"
#include "core/gemm/gemm.h"
#include "core/gemm/kernels.h"

using namespace aft;
using namespace aft::test;

namespace {

// Values uniform in [-1, 1) from a fixed xorshift stream (deterministic, any length).
template <class T>
std::vector<T> random_values(size_t n, uint64_t seed) {
  std::vector<T> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& e : v) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    e = static_cast<T>(static_cast<double>(x >> 11) / 4503599627370496.0 - 1.0);
  }
  return v;
}

// C = alpha · op(A) @ op(B) + beta · C, the obvious way, summed in double.
template <class T>
void naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const T* A,
                int64_t lda, const T* B, int64_t ldb, double beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t p = 0; p < K; ++p)
        s += static_cast<double>(ta ? A[p * lda + i] : A[i * lda + p]) *
             static_cast<double>(tb ? B[j * ldb + p] : B[p * ldb + j]);
      double c = beta == 0 ? 0.0 : beta * static_cast<double>(C[i * ldc + j]);
      C[i * ldc + j] = static_cast<T>(alpha * s + c);
    }
}

// Runs gemm and the naive loop on the same random operands with padded leading dims (lda, ldb,
// ldc larger than needed); checks the result and that C's padding is untouched.
template <class T>
void check_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta, int64_t pad) {
  CAPTURE(ta);
  CAPTURE(tb);
  CAPTURE(M);
  CAPTURE(N);
  CAPTURE(K);
  CAPTURE(alpha);
  CAPTURE(beta);
  const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const int64_t a_rows = ta ? K : M, b_rows = tb ? N : K;
  std::vector<T> A = random_values<T>(a_rows * lda + 1, 1 + M);
  std::vector<T> B = random_values<T>(b_rows * ldb + 1, 2 + N);
  std::vector<T> C = random_values<T>(M * ldc + 1, 3 + K);
  if (beta == T(0)) std::fill(C.begin(), C.end(), std::numeric_limits<T>::quiet_NaN());
  std::vector<T> R = C;
  gemm<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  naive_gemm<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, R.data(), ldc);
  // Error bound of a K-term sum of products of values in [-1, 1].
  const double eps = std::is_same_v<T, float> ? 6e-8 : 1.2e-16;
  const double tol = 4 * eps * (K + 2) * (std::fabs(alpha) + std::fabs(beta) + 1);
  double worst = 0;
  int64_t worst_k = 0;
  bool padding_changed = false;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const int64_t k = i * ldc + j;
      if (j >= N) {  // padding: must keep its old bits (NaN stays the same NaN)
        padding_changed |= std::memcmp(&C[k], &R[k], sizeof(T)) != 0;
        continue;
      }
      double d = std::fabs(static_cast<double>(C[k]) - static_cast<double>(R[k]));
      if (!(d <= worst)) {
        worst = std::isnan(d) ? INFINITY : d;
        worst_k = k;
      }
    }
  CHECK_MESSAGE(worst <= tol, "max error ", worst, " > ", tol, " at element ", worst_k);
  CHECK_MESSAGE(!padding_changed, "gemm wrote into C's padding (columns >= N)");
}

template <class T>
void gemm_suite() {
  // (M, N, K): odd sizes; exact tiles of each path (6 x 16 / 6 x 8, 14 x 32 / 14 x 16) and one
  // more or less; several MC, KC and NC blocks.
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> sizes = {
      {1, 1, 1},     {7, 33, 100},   {33, 7, 257},  {100, 257, 7}, {257, 100, 33},
      {6, 16, 256},  {12, 32, 512},  {13, 17, 300}, {1, 257, 33},  {257, 1, 100},
      {14, 32, 256}, {28, 64, 513},  {15, 31, 129}, {29, 65, 40},  {14, 16, 3},
      {2, 3, 1},     {150, 40, 520}, {7, 4100, 3},  {5, 700, 90},  {5, 9, 0},
      {0, 4, 5},     {4, 0, 5},      {170, 90, 257}};
  for (auto [M, N, K] : sizes)
    for (int t = 0; t < 4; ++t) check_gemm<T>(t & 1, t & 2, M, N, K, T(1), T(0), 3);
  // Long K and wide N: packed B spans several regions (K-block ranges) of the parallel loop.
  check_gemm<T>(false, true, 7, 2100, 1100, T(1), T(0.5), 2);
  // Skinny: K much larger than M·N (the dW = X^T·G shape), every transpose.
  for (int t = 0; t < 4; ++t) {
    check_gemm<T>(t & 1, t & 2, 30, 50, 4100, T(1), T(0), 1);
    check_gemm<T>(t & 1, t & 2, 3, 5, 9000, T(0.5), T(2), 0);
  }
  // alpha / beta, dense and padded leading dims.
  for (auto [alpha, beta] : {std::pair{0.5, 0.0}, {1.0, 1.0}, {-2.0, 0.25}, {0.0, 3.0}, {0.0, 0.0}})
    for (int t = 0; t < 4; ++t) {
      check_gemm<T>(t & 1, t & 2, 37, 45, 301, T(alpha), T(beta), 0);
      check_gemm<T>(t & 1, t & 2, 19, 70, 11, T(alpha), T(beta), 5);
    }
}

// Runs f once on every path this CPU supports (with that path switched on) and prints which
// paths ran and which the CPU lacks; restores the path in use before.
template <class F>
void for_each_path(const char* what, F&& f) {
  const GemmIsa saved = gemm_isa();
  int ran = 0;
  for (GemmIsa isa : kGemmIsas) {
    if (!gemm_isa_supported(isa)) {
      std::printf("[gemm] %s: path %s not run (this CPU lacks it)\n", what, gemm_isa_name(isa));
      continue;
    }
    gemm_set_isa(isa);
    REQUIRE(gemm_isa() == isa);
    CAPTURE(gemm_kernel_name());
    std::printf("[gemm] %s: path %s\n", what, gemm_kernel_name());
    f();
    ++ran;
  }
  gemm_set_isa(saved);
  CHECK(ran >= 1);
}

}  // namespace

TEST_CASE("gemm matches a naive loop on every path: transposes, odd sizes, alpha/beta, strides") {
  for_each_path("naive-loop comparison", [] {
    gemm_suite<float>();
    gemm_suite<double>();
  });
}

TEST_CASE("gemm gives the same bits on 1 and 2 threads on every path") {
  // A square-ish product, a skinny one (K >> M·N) and one with several column regions.
  const std::vector<std::tuple<bool, bool, int64_t, int64_t, int64_t>> shapes = {
      {false, true, 200, 150, 300}, {true, false, 40, 60, 5000}, {false, false, 90, 5000, 70}};
  const int saved = num_threads();
  for_each_path("1 vs 2 threads", [&] {
    for (auto [ta, tb, M, N, K] : shapes) {
      CAPTURE(M);
      CAPTURE(N);
      CAPTURE(K);
      auto A = random_values<float>(M * K, 7), B = random_values<float>(K * N, 8);
      std::vector<float> C1(M * N), C2(M * N);
      set_num_threads(1);
      gemm<float>(ta, tb, M, N, K, 1.f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.f,
                  C1.data(), N);
      set_num_threads(2);
      gemm<float>(ta, tb, M, N, K, 1.f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.f,
                  C2.data(), N);
      CHECK(std::memcmp(C1.data(), C2.data(), C1.size() * sizeof(float)) == 0);
    }
  });
  set_num_threads(saved);
}

TEST_CASE("gemm paths: the widest supported is the default; switching to a missing one throws") {
  // The default (AFT_CPU_ISA unset) is the widest path the CPU supports.
  GemmIsa widest = GemmIsa::scalar;
  for (GemmIsa isa : kGemmIsas)
    if (gemm_isa_supported(isa)) widest = isa;
  CHECK(gemm_detail::parse_isa(nullptr) == widest);
  CHECK(gemm_detail::parse_isa("") == widest);
  CHECK(gemm_isa_supported(GemmIsa::scalar));
  for (GemmIsa isa : kGemmIsas) {
    CAPTURE(gemm_isa_name(isa));
    if (gemm_isa_supported(isa)) {
      CHECK(gemm_detail::parse_isa(gemm_isa_name(isa)) == isa);
    } else {
      CHECK_THROWS_AS(gemm_detail::parse_isa(gemm_isa_name(isa)), Error);
      CHECK_THROWS_AS(gemm_set_isa(isa), Error);
    }
  }
  CHECK_THROWS_WITH_AS(gemm_detail::parse_isa("avx-512"),
                       doctest::Contains("AFT_CPU_ISA='avx-512' is not a known instruction set"),
                       Error);
  CHECK_THROWS_AS(gemm_detail::parse_isa("AVX2"), Error);  // names are lower case
  CHECK_THROWS_AS(gemm_detail::parse_isa("sse"), Error);
}
