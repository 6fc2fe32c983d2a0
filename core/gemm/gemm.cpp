// core/gemm/gemm.cpp: the CPU GEMM of core/gemm/gemm.h, C = alpha · op(A) @ op(B) + beta · C, row-major.
//
// Structure (BLIS, Van Zee & van de Geijn 2015), loops from the outside in:
//   jc: columns of C in blocks of up to NC     } a region: its packed B (K blocks x columns,
//   kb: K blocks of KC, a few per region        }   at most 4 MiB) is shared and stays in L3
//   row blocks of up to MC rows (a unit of work) op(A) block [MC, KC] packed per unit (L2)
//   jr: NR-wide micro-panels of B                one B micro-panel [KC, NR] in L1 (or L2)
//   ir: MR-tall micro-panels of the A block
//   micro-kernel: the MR x NR tile of C, kept in registers for the whole KC loop:
//     C[i, j] = alpha · Σ_p Apanel[p, i] · Bpanel[p, j] + beta · C[i, j]
// Packing lays each micro-panel out in the exact order the micro-kernel reads it (A: MR
// values per p, B: NR values per p), zero-padded to whole panels, so the kernel streams two
// contiguous arrays and every edge case is moved out of it: a partial tile at the right or
// bottom edge of C is computed into a small local tile and merged. The first K block applies
// the caller's beta, the later ones accumulate (beta = 1).
//
// Threads: one parallel region per (column block, K-block range). Units of work (a row block,
// or for short C a row block times part of the columns) are taken from a shared counter, so a
// core slowed down by another process does less of the work instead of holding the other up;
// B is packed on demand in small chunks by whichever thread needs a chunk first, so there is
// no separate packing phase and no barrier inside a region. Every C element gets its K sum in
// the same order whoever computes it: results depend neither on the thread count nor on the
// scheduling. Skinny products (M·N small, K long) instead split K into slices fixed by the
// shape and add the slices' products in order (gemm_split_k), which keeps that promise.
//
// Micro-kernels (core/gemm/kernels.h): one set per instruction-set path (AVX-512 14x32 /
// 14x16, AVX2+FMA 6x16 / 6x8, plain C++), each with its own tile and block sizes. The driver
// below is a template over the path's Config, so packing and loops are compiled for its tile
// shape; gemm() picks the instance of the path chosen in core/gemm/dispatch.cpp.
#include "core/gemm/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>

#include "core/error.h"
#include "core/gemm/kernels.h"
#include "core/parallel.h"

namespace aft {
namespace {

using gemm_detail::Config;
using gemm_detail::MicroKernel;

// ---------------------------------------------------------------- packing

// Rows of a stored operand this far ahead are prefetched while packing.
constexpr int64_t kPackAhead = 4;

// Fetches the n values at src into the cache (one prefetch per 64-byte line).
template <class T>
inline void prefetch_row(const T* src, int64_t n) {
  const char* b = reinterpret_cast<const char*>(src);
  const char* e = reinterpret_cast<const char*>(src + n);
  for (; b < e; b += 64) __builtin_prefetch(b);
}

// Rows [i0, i0 + mc) x columns [p0, p0 + kc) of op(A) -> ceil(mc / MR) micro-panels, each
// holding (i, p) at p·MR + i; rows past mc are zero.
template <class T, int MR>
void pack_a(bool trans, const T* A, int64_t lda, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            T* dst) {
  if (trans) {
    // op(A)(i, p) = A[p·lda + i]: row p of the stored A holds column p of the block. Each row
    // is read once, contiguously (reading MR values per row per panel would touch a new cache
    // line and page for every p), and dealt out MR values at a time to the panels. Consecutive
    // rows lie lda apart, usually in another page, where the hardware prefetchers stop: the
    // row kPackAhead ahead is fetched by hand.
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = A + (p0 + p) * lda + i0;
      if (p + kPackAhead < kc) prefetch_row(src + kPackAhead * lda, mc);
      T* d = dst + p * MR;
      int64_t ir = 0;
      for (; ir + MR <= mc; ir += MR, d += kc * MR)
        for (int i = 0; i < MR; ++i) d[i] = src[ir + i];
      if (ir < mc)
        for (int i = 0; i < MR; ++i) d[i] = ir + i < mc ? src[ir + i] : T(0);
    }
    return;
  }
  // op(A)(i, p) = A[i·lda + p]: the MR rows of a panel are read side by side along p.
  for (int64_t ir = 0; ir < mc; ir += MR, dst += kc * MR) {
    const int mr = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    const T* src = A + (i0 + ir) * lda + p0;
    if (mr == MR) {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[i * lda + p];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = i < mr ? src[i * lda + p] : T(0);
    }
  }
}

// Columns [j0 + jp·NR, ...) of micro-panels [jp_begin, jp_end) of the op(B) block
// rows [p0, p0 + kc) x columns [j0, j0 + nc): panel jp holds (p, j) at jp·kc·NR + p·NR + j;
// columns past nc are zero.
template <class T, int NR>
void pack_b(bool trans, const T* B, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            int64_t jp_begin, int64_t jp_end, T* dst) {
  if (!trans) {
    // op(B)(p, j) = B[p·ldb + j]: row p of the block's columns is read once, contiguously
    // (prefetched kPackAhead rows ahead, as in pack_a), and dealt out NR values per panel.
    const int64_t jb = jp_begin * NR, je = std::min(nc, jp_end * NR);
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = B + (p0 + p) * ldb + j0;
      if (p + kPackAhead < kc) prefetch_row(src + kPackAhead * ldb + jb, je - jb);
      for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
        const int64_t jr = jp * NR;
        const int nr = static_cast<int>(std::min<int64_t>(NR, nc - jr));
        T* d = dst + jp * kc * NR + p * NR;
        if (nr == NR) {
          std::memcpy(d, src + jr, sizeof(T) * NR);
        } else {
          for (int j = 0; j < nr; ++j) d[j] = src[jr + j];
          for (int j = nr; j < NR; ++j) d[j] = T(0);
        }
      }
    }
    return;
  }
  // op(B)(p, j) = B[j·ldb + p]: NR columns of B^T read side by side.
  for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
    const int64_t jr = jp * NR;
    const int nr = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    T* d = dst + jp * kc * NR;
    const T* src = B + (j0 + jr) * ldb + p0;
    for (int64_t p = 0; p < kc; ++p, d += NR)
      for (int j = 0; j < NR; ++j) d[j] = j < nr ? src[j * ldb + p] : T(0);
  }
}

// ---------------------------------------------------------------- buffers and splits

// A grow-only, 64-byte-aligned scratch buffer; one per thread and role (packed A, packed B).
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(ptr); }
  template <class T>
  T* get(size_t n) {
    size_t need = (n * sizeof(T) + 63) / 64 * 64;
    if (need > bytes) {
      std::free(ptr);
      ptr = std::aligned_alloc(64, need);
      AFT_CHECK(ptr != nullptr, "gemm: cannot allocate {} bytes of packing space", need);
      bytes = need;
    }
    return static_cast<T*>(ptr);
  }
};
thread_local Scratch t_pack_a, t_pack_b;

// [begin, end) of part `i` of `n` parts of `units` units (parts differ by at most one unit).
inline void split_range(int64_t units, int64_t n, int64_t i, int64_t* begin, int64_t* end) {
  *begin = units * i / n;
  *end = units * (i + 1) / n;
}

// Block sizes of at most `max`, all equal up to `unit` granularity: K = 300 gives 2 blocks of
// 150 rather than 256 + 44 (a short block wastes the kernel's fixed costs).
inline int64_t even_block(int64_t total, int64_t max, int64_t unit) {
  int64_t nblocks = (total + max - 1) / max;
  int64_t b = (total + nblocks - 1) / nblocks;
  return std::min(max, (b + unit - 1) / unit * unit);
}

// C (m x n, ldc) = alpha · t + beta · C, t an MR x NR tile with row stride NR.
template <class T, int NR>
void merge_tile(const T* t, int m, int n, T* c, int64_t ldc, T alpha, T beta) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      c[i * ldc + j] = beta == T(0) ? alpha * t[i * NR + j] : alpha * t[i * NR + j] + beta * c[i * ldc + j];
}

// The macro-kernel: C block rows [0, mc) x columns of B panels [jp_begin, jp_end), from a
// packed A block (mc rows) and the packed B block.
template <class T, class Cfg>
void macro_kernel(int64_t mc, int64_t nc, int64_t kc, const T* pa,
                  const T* pb, int64_t jp_begin, int64_t jp_end, T* C, int64_t ldc, T alpha,
                  T beta) {
  constexpr int MR = Cfg::MR, NR = Cfg::NR;
  constexpr MicroKernel<T> kernel = Cfg::kernel;
  alignas(64) T tile[MR * NR];
  for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
    const int64_t jr = jp * NR;
    const int nr = static_cast<int>(std::min<int64_t>(NR, nc - jr));
    const T* b = pb + jp * kc * NR;
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int mr = static_cast<int>(std::min<int64_t>(MR, mc - ir));
      const T* a = pa + ir * kc;
      T* c = C + ir * ldc + jr;
      if (mr == MR && nr == NR) {
        kernel(kc, a, b, c, ldc, alpha, beta);
      } else {
        kernel(kc, a, b, tile, NR, T(1), T(0));
        merge_tile<T, NR>(tile, mr, nr, c, ldc, alpha, beta);
      }
    }
  }
}

// C = beta · C (the whole answer when K = 0 or alpha = 0).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// Below this many multiply-adds a gemm runs on the calling thread: waking the pool costs more.
constexpr double kParallelMinMacs = 64.0 * 64 * 64;
// Packed B of one region is kept within this size, so that it stays in L3 while every row
// block streams through it.
constexpr int64_t kRegionBytes = 4 << 20;
// B panels per packing chunk (the unit in which threads share the packing of B).
constexpr int64_t kChunkPanels = 4;

// The arguments of one gemm call and its blocking.
template <class T>
struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  T alpha;
  const T* A;
  int64_t lda;
  const T* B;
  int64_t ldb;
  T beta;
  T* C;
  int64_t ldc;
  int nt;             // threads
  int64_t m_tiles;    // MR-row tiles of C
  int64_t mb;         // row blocks (each at most MC rows)
  int64_t kc_max;     // K block
};

// One region: columns [jc, jc + nc) of C and K blocks [kb0, kb1). Units of work are a row
// block times a range of B chunks; threads take them from a shared counter. For each K block a
// unit packs its A block, then runs the macro-kernel over its B chunks, each packed by
// whichever thread needs it first: a chunk goes 0 (free) -> 1 (being packed) -> 2 (ready), and
// a thread that finds its chunk being packed packs later chunks meanwhile, then waits.
template <class T, class Cfg>
void run_region(const Problem<T>& p, int64_t jc, int64_t nc, int64_t kb0, int64_t kb1) {
  constexpr int MR = Cfg::MR, NR = Cfg::NR;
  const int64_t n_panels = (nc + NR - 1) / NR;
  const int64_t n_chunks = (n_panels + kChunkPanels - 1) / kChunkPanels;
  // Short C: too few row blocks to go round, so units also split the columns.
  int64_t nb = 1;
  if (p.nt > 1 && p.mb < 2 * p.nt) nb = std::min(n_chunks, (2 * p.nt + p.mb - 1) / p.mb);
  const int64_t units = p.mb * nb;
  const int64_t kb_stride = n_panels * NR * p.kc_max;  // packed B elements per K block
  T* pb = t_pack_b.get<T>(static_cast<size_t>((kb1 - kb0) * kb_stride));
  std::unique_ptr<std::atomic<int>[]> state(new std::atomic<int>[(kb1 - kb0) * n_chunks]);
  for (int64_t i = 0; i < (kb1 - kb0) * n_chunks; ++i) state[i].store(0, std::memory_order_relaxed);

  auto chunk_state = [&](int64_t kb, int64_t c) -> std::atomic<int>& {
    return state[(kb - kb0) * n_chunks + c];
  };
  auto try_pack = [&](int64_t kb, int64_t c) {
    int expect = 0;
    if (!chunk_state(kb, c).compare_exchange_strong(expect, 1, std::memory_order_acquire)) return;
    const int64_t pc = kb * p.kc_max, kc = std::min(p.kc_max, p.K - pc);
    pack_b<T, NR>(p.trans_b, p.B, p.ldb, pc, kc, jc, nc, c * kChunkPanels,
                  std::min(n_panels, (c + 1) * kChunkPanels), pb + (kb - kb0) * kb_stride);
    chunk_state(kb, c).store(2, std::memory_order_release);
  };
  auto ensure_packed = [&](int64_t kb, int64_t c, int64_t c_end) {
    try_pack(kb, c);
    if (chunk_state(kb, c).load(std::memory_order_acquire) == 2) return;
    for (int64_t d = c + 1; d < c_end; ++d) try_pack(kb, d);
    for (int spin = 0; chunk_state(kb, c).load(std::memory_order_acquire) != 2; ++spin)
      if (spin > 64) std::this_thread::yield();
  };

  std::atomic<int64_t> next{0};
  auto work = [&](int64_t, int64_t) {
    for (int64_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < units;) {
      int64_t t0, t1, c0, c1;
      split_range(p.m_tiles, p.mb, u / nb, &t0, &t1);
      split_range(n_chunks, nb, u % nb, &c0, &c1);
      const int64_t row0 = t0 * MR, mc = std::min(p.M, t1 * MR) - row0;
      T* pa = t_pack_a.get<T>(static_cast<size_t>((t1 - t0) * MR * p.kc_max));
      T* c_block = p.C + row0 * p.ldc + jc;
      for (int64_t kb = kb0; kb < kb1; ++kb) {
        const int64_t pc = kb * p.kc_max, kc = std::min(p.kc_max, p.K - pc);
        pack_a<T, MR>(p.trans_a, p.A, p.lda, row0, mc, pc, kc, pa);
        for (int64_t c = c0; c < c1; ++c) {
          ensure_packed(kb, c, c1);
          macro_kernel<T, Cfg>(mc, nc, kc, pa, pb + (kb - kb0) * kb_stride,
                          c * kChunkPanels, std::min(n_panels, (c + 1) * kChunkPanels), c_block,
                          p.ldc, p.alpha, kb == 0 ? p.beta : T(1));
        }
      }
    }
  };
  if (p.nt > 1 && units > 1) parallel_for(0, p.nt, 1, work);
  else work(0, 1);
}

// One gemm on the path Cfg (arguments already checked; M, N, K > 0, alpha != 0).
template <class T, class Cfg>
void gemm_blocked(Problem<T> p) {
  constexpr int MR = Cfg::MR, NR = Cfg::NR;
  const int64_t M = p.M, N = p.N, K = p.K;
  if (!in_parallel_region() && static_cast<double>(M) * N * K >= kParallelMinMacs)
    p.nt = num_threads();
  p.m_tiles = (M + MR - 1) / MR;
  p.kc_max = even_block(K, Cfg::KC, 4);
  // Row blocks of at most MC rows; with threads, a multiple of their count, and at least 4 per
  // thread while that leaves 8 tiles per block (finer units balance better when a core is
  // busy with something else).
  p.mb = (p.m_tiles + Cfg::MC / MR - 1) / (Cfg::MC / MR);
  if (p.nt > 1) {
    p.mb = std::max(p.mb, std::min<int64_t>(4 * p.nt, p.m_tiles / 8));
    p.mb = std::min(p.m_tiles, (p.mb + p.nt - 1) / p.nt * p.nt);
  }
  // Regions: column blocks of at most NC, times as many K blocks as fit kRegionBytes of packed B.
  constexpr int64_t region_elems = kRegionBytes / static_cast<int64_t>(sizeof(T));
  const int64_t nc_cap = std::max<int64_t>(NR * kChunkPanels, region_elems / p.kc_max / NR * NR);
  const int64_t nc_max = even_block(N, std::min<int64_t>(Cfg::NC, nc_cap), NR);
  const int64_t n_kb = (K + p.kc_max - 1) / p.kc_max;
  const int64_t kb_fit = std::max<int64_t>(1, region_elems / (p.kc_max * nc_max));
  const int64_t k_regions = (n_kb + kb_fit - 1) / kb_fit;
  const int64_t kb_per = (n_kb + k_regions - 1) / k_regions;
  for (int64_t jc = 0; jc < N; jc += nc_max)
    for (int64_t kb = 0; kb < n_kb; kb += kb_per)
      run_region<T, Cfg>(p, jc, std::min(nc_max, N - jc), kb, std::min(n_kb, kb + kb_per));
}

// Skinny products (the dW = X^T·G shape with few outputs: M·N small, K long) have too few
// tiles of C to share among threads. Their K range is cut into S slices, S a function of the
// shape alone (at most kSplitMaxSlices, each at least kSplitMinK long); each slice's product
// op(A)[:, Ks] @ op(B)[Ks, :] goes to its own buffer (a slice is a unit of work for any
// thread), then C = alpha · (((P_0 + P_1) + P_2) + ...) + beta · C, in slice order. The order
// of every sum depends on the shape only, so the bits do not depend on the thread count.
constexpr int64_t kSplitMaxOutputs = 128 * 128;  // M·N at most this
constexpr int64_t kSplitMinK = 1024;
constexpr int64_t kSplitMaxSlices = 16;

int64_t k_slices(int64_t M, int64_t N, int64_t K) {
  if (M * N > kSplitMaxOutputs) return 1;
  return std::min(kSplitMaxSlices, K / kSplitMinK);
}

template <class T, class Cfg>
void gemm_split_k(const Problem<T>& p, int64_t slices) {
  const int64_t M = p.M, N = p.N, MN = M * N;
  std::unique_ptr<T[]> part(new T[static_cast<size_t>(slices * MN)]);
  std::atomic<int64_t> next{0};
  auto work = [&](int64_t, int64_t) {
    for (int64_t sl; (sl = next.fetch_add(1, std::memory_order_relaxed)) < slices;) {
      // Slice boundaries on multiples of 4, as the K blocks are.
      const int64_t k0 = p.K * sl / slices / 4 * 4;
      const int64_t k1 = sl + 1 == slices ? p.K : p.K * (sl + 1) / slices / 4 * 4;
      Problem<T> q = p;
      q.K = k1 - k0;
      q.A = p.A + (p.trans_a ? k0 * p.lda : k0);
      q.B = p.B + (p.trans_b ? k0 : k0 * p.ldb);
      q.alpha = T(1);
      q.beta = T(0);
      q.C = part.get() + sl * MN;
      q.ldc = N;
      gemm_blocked<T, Cfg>(q);
    }
  };
  const bool small = static_cast<double>(M) * N * p.K < kParallelMinMacs;
  const int nt = in_parallel_region() || small ? 1 : num_threads();
  if (nt > 1) parallel_for(0, std::min<int64_t>(nt, slices), 1, work);
  else work(0, 1);
  for (int64_t i = 0; i < M; ++i) {
    T* c = p.C + i * p.ldc;
    for (int64_t j = 0; j < N; ++j) {
      T sum = part[i * N + j];
      for (int64_t sl = 1; sl < slices; ++sl) sum += part[sl * MN + i * N + j];
      c[j] = p.beta == T(0) ? p.alpha * sum : p.alpha * sum + p.beta * c[j];
    }
  }
}

template <class T, class Cfg>
void gemm_path(const Problem<T>& p) {
  const int64_t slices = k_slices(p.M, p.N, p.K);
  if (slices > 1) gemm_split_k<T, Cfg>(p, slices);
  else gemm_blocked<T, Cfg>(p);
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  AFT_ASSERT(M >= 0 && N >= 0 && K >= 0);
  AFT_ASSERT(ldc >= std::max<int64_t>(N, 1));
  AFT_ASSERT(lda >= std::max<int64_t>(trans_a ? M : K, 1));
  AFT_ASSERT(ldb >= std::max<int64_t>(trans_b ? K : N, 1));
  const GemmIsa isa = gemm_isa();  // first call: may throw for a bad AFT_CPU_ISA
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const Problem<T> p{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 1, 0, 0, 0};
  switch (isa) {
    case GemmIsa::avx512: return gemm_path<T, Config<T, GemmIsa::avx512>>(p);
    case GemmIsa::avx2: return gemm_path<T, Config<T, GemmIsa::avx2>>(p);
    case GemmIsa::scalar: return gemm_path<T, Config<T, GemmIsa::scalar>>(p);
  }
  AFT_ASSERT(false && "gemm: unknown GemmIsa");
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace aft
