// cuda/aft_tiles.cu: the tiled AFT engine, forward and backward, serving AFT-full (w [T, T],
// cuda/aft_full.cu) and the band part of AFT-local (cuda/aft_local.cu adds the far keys'
// prefix/suffix sums); its entry points are declared in cuda/aft_tiles.cuh. The math and the
// stable form are those of ops/aft_full.cpp; docs/aft.md section 7 explains the tiling.
//
//   y[t] = sigmoid(q[t]) · Σ_t' e^{k[t'] + w[t,t']} v[t'] / Σ_t' e^{k[t'] + w[t,t']}
//
// Why a fused tiled kernel and not cuBLAS. e^{k + w} = e^w · e^k, so per batch Num = E @ (P ⊙ v)
// and Den = E @ P with E = e^{w - rowmax w}, P = e^{k - max_t k}: two GEMMs and a division (the
// brief's alternative, and what the public PyTorch ports do). That form shifts k and w
// separately, which prevents overflow but not underflow: with k = 80 at the key where w = -80
// and k = -80 elsewhere (w = 20 there), both shifted factors of every term round to 0 in
// float32 and the row is 0/0 although the answer is well defined. The only shift that is safe
// for all inputs is the maximum of k + w per (row, channel), and it does not factor, so no GEMM
// can apply it. This kernel gets both: per tile of keys J it uses the separable shift
// c = Mk[J,d] + Mw[t,J] (a small matrix product, 2 FMA per (t, t', d)), certifies with two
// candidates for the maximum that c is within kSafeGap (50 in float32, 600 in float64) of the
// tile's true max of k + w (else that (row, tile, channel) is summed exactly, one exp per term:
// adversarial inputs only), and merges the tiles of a row with the stable running sum Acc, so
// the per-(t, d) maximum is maintained online and Den >= 1 always.
// What a GPU measurement should compare it with (bench/bench_aft_cuda.cpp, bench/aft_torch.py):
// the two-GEMM form in cuBLAS (FP32, and TF32 if its accuracy were acceptable: it is not at
// 1e-4) as the speed bound of this FLOP count, and PyTorch eager / torch.compile of the paper's
// formula. Both kernels do 2 FMA per (b, t, t', d) in the forward; a 3xTF32 tensor-core
// version of the tile product (a portable SIMT twin kept for the emulator) is the next step if
// the measurement shows the FMA pipe as the limit (docs/BENCHMARKS.md has the GPU figures).
//
// Thread mapping (float32; float64 uses halves of the tiles to fit in shared memory):
//   forward   block = (batch, 64 target rows, 32 channels), 128 threads, each 4 rows × 4
//             channels (16 running sums in registers). Per key tile of 64 keys: the bias tile
//             w'[64 × 64] and the raw keys k[64 × 32] are staged in shared memory, row maxima
//             Mw (one thread per row) and key maxima Mk (one thread per channel) computed there,
//             E = e^{w' - Mw} and (P·v, P) = e^{k - Mk}·(v, 1) formed in place, then each thread
//             accumulates its 16 (Num, Den) pairs over the 64 keys (4 scalar E loads, broadcast
//             in the warp, and two 16-byte (P·v, P) loads per 32 FMA).
//   dk, dv    block = (batch, 64 keys, 32 channels), 128 threads, each 4 keys × 4 channels, P and
//             v in registers; loops over target tiles of 64 rows: w' tile, row maxima, E, and
//             per (target, channel) G = gr·e^{Mk + Mw - L} and r staged; per term
//             x = G·E·P (= gr·a),  dv += x,  dk += x·(v - r)   (v - r per term: no cancellation).
//   dw        block = (64 rows, 64 keys) of dw, 256 threads, each 4 × 4 cells; E tile and row
//             maxima once; loops over batch and chunks of 16 channels staging P, v, G, r;
//             per term  acc += G·P·(v - r),  dw = E·acc at the end.
// Every output element is owned by one thread of one block and summed in a fixed order: no
// atomics, the bits depend only on the shapes. Work: forward 2·B·T²·D FMA (half causal), dk/dv
// about 5·B·T²·D flops, dw 3·B·T²·D; exps: O(T²) per (batch, channel tile) for E and O(T·D) per
// tile for P, both small next to the FMAs. No T×T×D tensor, no T-sized per-thread buffer.
#include "cuda/aft_tiles.cuh"

namespace aft::cuda::aftk {
namespace {

template <class T>
struct Tile;
template <>
struct Tile<float> {
  static constexpr int TI = 64, TJ = 64;  // forward: rows per block, keys per tile; kv: the reverse
  static constexpr int WI = 64, WJ = 64;  // dw: cells per block
};
template <>
struct Tile<double> {
  static constexpr int TI = 32, TJ = 32;
  static constexpr int WI = 32, WJ = 32;
};
constexpr int kDC = 32;  // channels per block (forward, dk/dv)
constexpr int kWC = 16;  // channels per step of the dw kernel
constexpr int kR = 4;    // rows (keys) per thread
constexpr int kC = 4;    // channels (keys of dw) per thread

template <class T>
constexpr int fwd_threads() {
  return (kDC / kC) * (Tile<T>::TI / kR);
}
template <class T>
constexpr int kv_threads() {
  return (kDC / kC) * (Tile<T>::TJ / kR);
}
template <class T>
constexpr int w_threads() {
  return (Tile<T>::WJ / kC) * (Tile<T>::WI / kR);
}

// Four consecutive values from 16-byte aligned shared memory (one vector load for float32).
template <class T>
__device__ __forceinline__ void load4(const T* p, T (&o)[4]) {
#if !AFT_CUDA_EMULATE
  if constexpr (sizeof(T) == 4) {
    const float4 f = *reinterpret_cast<const float4*>(p);
    o[0] = f.x, o[1] = f.y, o[2] = f.z, o[3] = f.w;
    return;
  }
#endif
  o[0] = p[0], o[1] = p[1], o[2] = p[2], o[3] = p[3];
}

// Four interleaved pairs (a0, b0, a1, b1, ...) from 16-byte aligned shared memory: two vector loads.
template <class T>
__device__ __forceinline__ void load_pairs(const T* p, T (&a)[4], T (&b)[4]) {
  T x[4], y[4];
  load4(p, x);
  load4(p + 4, y);
  a[0] = x[0], a[1] = x[2], a[2] = y[0], a[3] = y[2];
  b[0] = x[1], b[1] = x[3], b[2] = y[1], b[3] = y[3];
}

// ---------------------------------------------------------------- the bias and the ranges

// Does row t sum key t'? (Both in [0, T).)
template <class T>
__device__ __forceinline__ bool sees(const BiasSpec<T>& b, int64_t t, int64_t tp) {
  return !b.causal || tp <= t;
}
// w'[t, t']: w itself, or the band's cell (0 outside the band).
template <class T>
__device__ __forceinline__ T bias_at(const BiasSpec<T>& b, int64_t t, int64_t tp) {
  if (!b.band()) return b.w[t * b.n + tp];
  const int64_t j = tp - t + b.W - 1;
  return j >= 0 && j < b.nb ? b.w[t * b.nb + j] : T(0);
}

struct Range {
  int64_t lo, hi;
};
__host__ __device__ inline int64_t floor_chunk(int64_t x) { return x < 0 ? 0 : x / kChunk * kChunk; }
__host__ __device__ inline int64_t ceil_chunk(int64_t x, int64_t n) {
  const int64_t c = (x + kChunk - 1) / kChunk * kChunk;
  return c < n ? c : n;
}

// Keys summed directly by the rows [t0, t1): all (full), or the band of the tile widened to
// 32-key boundaries (band: keys outside are the far sums, whose chunk boundaries these are).
template <class T>
__host__ __device__ Range key_range(const BiasSpec<T>& b, int64_t t0, int64_t t1) {
  if (!b.band()) return {0, b.causal ? t1 : b.n};
  return {floor_chunk(t0 - b.W + 1), b.causal ? t1 : ceil_chunk(t1 + b.W - 1, b.n)};
}
// Targets summed directly for the keys [j0, j1) (the mirror image).
template <class T>
__host__ __device__ Range target_range(const BiasSpec<T>& b, int64_t j0, int64_t j1) {
  if (!b.band()) return {b.causal ? j0 : 0, b.n};
  return {floor_chunk(b.causal ? j0 : j0 - b.W + 1), ceil_chunk(j1 + b.W - 1, b.n)};
}

// The shift lb of a separable tile, seen from row t and one channel: a lower bound of the
// tile's largest k + w', from two candidates (the key of largest w': mw + kcw; the key tp of
// largest k: mk + w'[t, tp], when the row sees it). True when the separable shift mk + mw is
// within the safe gap of lb, i.e. the tile's largest term e^{max - (mk + mw)} is at least
// e^{-gap}: every term that matters is then a normal number.
template <class T>
__device__ __forceinline__ bool certify(const BiasSpec<T>& bias, int64_t t, int64_t tp, T mk, T mw, T kcw, T& lb) {
  lb = mw + kcw;
  if (mk + mw - lb <= aft_math::safe_gap<T>()) return true;
  if (sees(bias, t, tp)) {
    const T w2 = bias_at(bias, t, tp);
    if (mk + w2 > lb) lb = mk + w2;
  }
  return mk + mw - lb <= aft_math::safe_gap<T>();
}

// ---------------------------------------------------------------- tile staging (all three kernels)

// The largest of p[j·stride], j in [0, n), if above m (else m), and its first index (0: none).
template <class T>
__device__ __forceinline__ void argmax(const T* p, int stride, int n, T m, T& mo, int& at) {
  int a = 0;
  for (int j = 0; j < n; ++j)
    if (p[j * stride] > m) m = p[j * stride], a = j;
  mo = m, at = a;
}

// E[i][j] = w'[t0 + i, j0 + j] for i < ni, j < nj where row t0 + i sees the key; -inf elsewhere
// (no term). The block's NT threads cover the TI × TJ tile.
template <int TI, int TJ, int NT, class T, int LD>
__device__ __forceinline__ void stage_bias(T (*E)[LD], const BiasSpec<T>& bias, int64_t t0, int ni, int64_t j0,
                                           int nj, int tid) {
  for (int idx = tid; idx < TI * TJ; idx += NT) {
    const int i = idx / TJ, j = idx % TJ;
    const int64_t t = t0 + i, tp = j0 + j;
    E[i][j] = i < ni && j < nj && sees(bias, t, tp) ? bias_at(bias, t, tp) : static_cast<T>(-INFINITY);
  }
}

// After stage_bias and a barrier: Mw[i] = max_j w'[i][j] (-inf: the row sees no key of the tile)
// and cw[i] its key, one thread per row (tid < TI).
template <int TI, class T, int LD>
__device__ __forceinline__ void bias_row_max(T (*E)[LD], T* Mw, int* cw, int nj, int tid) {
  if (tid < TI) argmax(&E[tid][0], 1, nj, static_cast<T>(-INFINITY), Mw[tid], cw[tid]);
}

// After bias_row_max and a barrier: E = e^{w' - Mw} <= 1, 0 where there is no term.
template <int TI, int TJ, int NT, class T, int LD>
__device__ __forceinline__ void exp_bias(T (*E)[LD], const T* Mw, int tid) {
  for (int idx = tid; idx < TI * TJ; idx += NT) {
    const int i = idx / TJ, j = idx % TJ;
    const T x = E[i][j];
    E[i][j] = x > static_cast<T>(-INFINITY) ? std::exp(x - Mw[i]) : T(0);
  }
}

// K[j][c] = k[b, j0 + j, d0 + c] (0 outside [0, nj) × [0, D - d0)): the raw keys of a tile.
template <int TJ, int NT, class T>
__device__ __forceinline__ void stage_keys(T (*K)[kDC], const T* k, int64_t base, int64_t j0, int nj, int64_t d0,
                                           int64_t D, int tid) {
  for (int idx = tid; idx < TJ * kDC; idx += NT) {
    const int j = idx / kDC, c = idx % kDC;
    K[j][c] = j < nj && d0 + c < D ? k[base + (j0 + j) * D + d0 + c] : T(0);
  }
}

// The backward's view of target t (element e of [B, T, D]) in one key tile and channel: where
// the tile's separable shift is certified, G = gr·e^{mk + mw - L} (then gr·e^{k + w' - L} =
// G·E·P, and G <= gr·e^{gap}); otherwise G = 0 and exact (its terms are summed one by one).
// live: the cell exists; mw = -inf: the target sees no key of the tile (no terms).
template <class T>
struct TargetScale {
  T G = 0, r = 0;
  bool exact = false;
};
template <class T>
__device__ __forceinline__ TargetScale<T> scale_target(bool live, const BiasSpec<T>& bias, int64_t t, int64_t tp_ak,
                                                       T mk, T mw, T kcw, const T* gr, const T* L, const T* r,
                                                       int64_t e) {
  TargetScale<T> s;
  if (!live || !(mw > static_cast<T>(-INFINITY))) return s;
  s.r = r[e];
  T lb;
  if (certify(bias, t, tp_ak, mk, mw, kcw, lb)) s.G = gr[e] * std::exp(mk + mw - L[e]);
  else s.exact = true;
  return s;
}

// The exponent k + w'[t, tp] of one term, exactly (the flagged path); false: t does not see tp.
template <class T>
__device__ __forceinline__ bool exact_exponent(const BiasSpec<T>& bias, int64_t t, int64_t tp, T k, T& s) {
  if (!sees(bias, t, tp)) return false;
  s = k + bias_at(bias, t, tp);
  return true;
}

// One backward term, exactly (the flagged path): x = gr·e^{k + w'[t, tp] - L}; false: no term.
template <class T>
__device__ __forceinline__ bool exact_grad(const BiasSpec<T>& bias, int64_t t, int64_t tp, T k, T g, T l, T& x) {
  T s;
  if (!exact_exponent(bias, t, tp, k, s)) return false;
  x = g * std::exp(s - l);
  return true;
}

// ---------------------------------------------------------------- forward

// One block: batch b, rows [t0, t0 + TI), channels [d0, d0 + 32). See the file comment.
template <class T>
__global__ void __launch_bounds__(fwd_threads<T>()) tiles_forward_kernel(const T* q, const T* k, const T* v,
                                                                         BiasSpec<T> bias, const Acc<T>* pre,
                                                                         const Acc<T>* suf, T* y, T* L, T* r,
                                                                         int64_t D, int64_t nI) {
  constexpr int TI = Tile<T>::TI, TJ = Tile<T>::TJ, NT = fwd_threads<T>();
  struct alignas(16) Smem {
    T E[TI][TJ + 1];     // w', then E = e^{w' - Mw}   [row][key]
    T K[TJ][kDC];        // raw k                      [key][channel]
    T PP[TJ][2 * kDC];   // (P·v, P) interleaved       [key][channel]
    T Mw[TI], Mk[kDC];
    int cw[TI], ak[kDC];
  };
  AFT_SHARED(Smem, sm_, 1);
  Smem& sm = sm_[0];
  const int tid = threadIdx.x, cx = tid % (kDC / kC), ry = tid / (kDC / kC);
  const int64_t T_ = bias.n, b = blockIdx.x / nI, I = nI - 1 - blockIdx.x % nI;  // late rows first
  const int64_t t0 = I * TI, t1 = t0 + TI < T_ ? t0 + TI : T_, d0 = static_cast<int64_t>(blockIdx.y) * kDC;
  const int64_t base = b * T_ * D;
  const bool active = t0 + ry * kR < t1 && d0 + cx * kC < D;
  const Range kr = key_range(bias, t0, t1);

  Acc<T> acc[kR][kC];
  for (int i = 0; i < kR; ++i)
    for (int c = 0; c < kC; ++c) acc[i][c] = Acc<T>::empty();

  for (int64_t j0 = kr.lo; j0 < kr.hi; j0 += TJ) {
    const int nj = static_cast<int>(kr.hi - j0 < TJ ? kr.hi - j0 : TJ);
    __syncthreads();  // the previous tile's readers are done
    // 1. Stage the raw bias tile (-inf where the row does not see the key) and the raw keys.
    stage_bias<TI, TJ, NT>(sm.E, bias, t0, static_cast<int>(t1 - t0), j0, nj, tid);
    stage_keys<TJ, NT>(sm.K, k, base, j0, nj, d0, D, tid);
    __syncthreads();
    // 2. Maxima: of w' per row (threads [0, TI)), of k per channel (threads [TI, TI + 32)).
    bias_row_max<TI>(sm.E, sm.Mw, sm.cw, nj, tid);
    if (tid >= TI && tid < TI + kDC) {
      const int c = tid - TI;
      argmax(&sm.K[0][c], kDC, nj, sm.K[0][c], sm.Mk[c], sm.ak[c]);
    }
    __syncthreads();
    // 3. E = e^{w' - Mw} <= 1 (0 where unseen), (P·v, P) with P = e^{k - Mk} <= 1.
    exp_bias<TI, TJ, NT>(sm.E, sm.Mw, tid);
    for (int idx = tid; idx < TJ * kDC; idx += NT) {
      const int j = idx / kDC, c = idx % kDC;
      const bool ok = j < nj && d0 + c < D;
      const T p = ok ? std::exp(sm.K[j][c] - sm.Mk[c]) : T(0);
      sm.PP[j][2 * c] = ok ? p * v[base + (j0 + j) * D + d0 + c] : T(0);
      sm.PP[j][2 * c + 1] = p;
    }
    __syncthreads();
    // 4. The tile product: n = Σ_j E[i][j]·P[j][c]·v[j][c],  dn = Σ_j E[i][j]·P[j][c].
    T n[kR][kC] = {}, dn[kR][kC] = {};
    if (active) {
      for (int j = 0; j < nj; ++j) {
        T e[kR], pv[kC], p[kC];
        for (int i = 0; i < kR; ++i) e[i] = sm.E[ry * kR + i][j];
        load_pairs(&sm.PP[j][2 * cx * kC], pv, p);
#pragma unroll
        for (int i = 0; i < kR; ++i)
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            n[i][c] += e[i] * pv[c];
            dn[i][c] += e[i] * p[c];
          }
      }
    }
    // 5. Push each (row, channel) into its running sum at a certified shift, or flag it.
    bool exact[kR][kC] = {}, any = false;
    for (int i = 0; i < kR && active; ++i) {
      const int ii = ry * kR + i;
      const int64_t t = t0 + ii;
      if (t >= t1 || !(sm.Mw[ii] > static_cast<T>(-INFINITY))) continue;  // sees no key of the tile
      for (int c = 0; c < kC; ++c) {
        const int cc = cx * kC + c;
        if (d0 + cc >= D) continue;
        const T mk = sm.Mk[cc], mw = sm.Mw[ii];
        T lb;
        if (certify(bias, t, j0 + sm.ak[cc], mk, mw, sm.K[sm.cw[ii]][cc], lb)) {
          const T f = std::exp(mk + mw - lb);  // <= e^{gap}
          acc[i][c].push(lb, n[i][c] * f, dn[i][c] * f);
        } else {
          exact[i][c] = any = true;
        }
      }
    }
    // 6. Flagged (row, channel): the exact tile, max of k + w' first, then e^{k + w' - max}.
    if (__syncthreads_or(any)) {
      for (int i = 0; i < kR; ++i)
        for (int c = 0; c < kC; ++c) {
          if (!exact[i][c]) continue;
          const int64_t t = t0 + ry * kR + i, d = d0 + cx * kC + c;
          T mx = static_cast<T>(-INFINITY), s;
          for (int j = 0; j < nj; ++j)
            if (exact_exponent(bias, t, j0 + j, sm.K[j][cx * kC + c], s)) mx = s > mx ? s : mx;
          T A = 0, Bs = 0;
          for (int j = 0; j < nj; ++j)
            if (exact_exponent(bias, t, j0 + j, sm.K[j][cx * kC + c], s)) {
              const T e = std::exp(s - mx);
              A += e * v[base + (j0 + j) * D + d];
              Bs += e;
            }
          acc[i][c].push(mx, A, Bs);
        }
    }
  }
  // The far keys (band): prefix before the range, suffix after it; then the gate and the division.
  const int64_t nch = row_chunks(T_);
  for (int i = 0; i < kR && active; ++i) {
    const int64_t t = t0 + ry * kR + i;
    if (t >= t1) continue;
    for (int c = 0; c < kC; ++c) {
      const int64_t d = d0 + cx * kC + c;
      if (d >= D) continue;
      if (pre) acc[i][c].merge(chunk_sum(pre, b, nch, kr.lo / kChunk, D, d));
      if (suf) acc[i][c].merge(chunk_sum(suf, b, nch, chunk_index(kr.hi, T_), D, d));
      const int64_t e = base + t * D + d;
      finish_row(acc[i][c], q[e], &y[e], &L[e], &r[e]);
    }
  }
}

// ---------------------------------------------------------------- backward: dk, dv

// One block: batch b, keys [j0, j0 + TJ), channels [d0, d0 + 32). See the file comment.
template <class T>
__global__ void __launch_bounds__(kv_threads<T>()) tiles_kv_kernel(const T* k, const T* v, const T* L, const T* r,
                                                                   const T* gr, BiasSpec<T> bias, const Acc<T>* pre,
                                                                   const Acc<T>* suf, T* dk, T* dv, int64_t D,
                                                                   int64_t nJ) {
  constexpr int TI = Tile<T>::TI, TJ = Tile<T>::TJ, NT = kv_threads<T>();
  struct alignas(16) Smem {
    T E[TI][TJ + 4];         // w', then E   [target][key] (rows 16-byte aligned)
    T GR[TI][2 * kDC];       // (G, r)       [target][channel]
    T K[TJ][kDC];            // raw k        [key][channel]
    T Mw[TI], Mk[kDC];
    int cw[TI], ak[kDC];
    unsigned char X[TI][kDC];  // 1: (target, channel) needs the exact form
  };
  AFT_SHARED(Smem, sm_, 1);
  Smem& sm = sm_[0];
  const int tid = threadIdx.x, cx = tid % (kDC / kC), jy = tid / (kDC / kC);
  const int64_t T_ = bias.n, b = blockIdx.x / nJ, j0 = (blockIdx.x % nJ) * TJ;
  const int64_t j1 = j0 + TJ < T_ ? j0 + TJ : T_, d0 = static_cast<int64_t>(blockIdx.y) * kDC;
  const int nj = static_cast<int>(j1 - j0);
  const int64_t base = b * T_ * D;
  const bool active = jy * kR < nj && d0 + cx * kC < D;

  stage_keys<TJ, NT>(sm.K, k, base, j0, nj, d0, D, tid);
  __syncthreads();
  if (tid < kDC) argmax(&sm.K[0][tid], kDC, nj, sm.K[0][tid], sm.Mk[tid], sm.ak[tid]);
  __syncthreads();
  // The thread's keys: P = e^{k - Mk} and v in registers.
  T P[kR][kC], V[kR][kC], dva[kR][kC] = {}, dka[kR][kC] = {};
  for (int j = 0; j < kR; ++j)
    for (int c = 0; c < kC; ++c) {
      const int jj = jy * kR + j, cc = cx * kC + c;
      const bool ok = jj < nj && d0 + cc < D;
      P[j][c] = ok ? std::exp(sm.K[jj][cc] - sm.Mk[cc]) : T(0);
      V[j][c] = ok ? v[base + (j0 + jj) * D + d0 + cc] : T(0);
    }

  const Range tr = target_range(bias, j0, j1);
  for (int64_t ts = tr.lo; ts < tr.hi; ts += TI) {
    const int ni = static_cast<int>(tr.hi - ts < TI ? tr.hi - ts : TI);
    __syncthreads();
    stage_bias<TI, TJ, NT>(sm.E, bias, ts, ni, j0, nj, tid);
    __syncthreads();
    bias_row_max<TI>(sm.E, sm.Mw, sm.cw, nj, tid);
    __syncthreads();
    exp_bias<TI, TJ, NT>(sm.E, sm.Mw, tid);
    // G = gr·e^{Mk + Mw - L} (a = G·E·P) where the shift is certified, else flagged.
    bool any = false;
    for (int idx = tid; idx < TI * kDC; idx += NT) {
      const int i = idx / kDC, c = idx % kDC;
      const int64_t t = ts + i, d = d0 + c;
      const TargetScale<T> g = scale_target(i < ni && d < D, bias, t, j0 + sm.ak[c], sm.Mk[c], sm.Mw[i],
                                            sm.K[sm.cw[i]][c], gr, L, r, base + t * D + d);
      sm.GR[i][2 * c] = g.G, sm.GR[i][2 * c + 1] = g.r, sm.X[i][c] = g.exact;
      any = any || g.exact;
    }
    const bool exact = __syncthreads_or(any);
    if (!active) continue;
    for (int i = 0; i < ni; ++i) {
      T e[4], G[kC], R[kC];
      load4(&sm.E[i][jy * kR], e);
      load_pairs(&sm.GR[i][2 * cx * kC], G, R);
#pragma unroll
      for (int j = 0; j < kR; ++j)
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          const T x = G[c] * P[j][c] * e[j];  // gr·a
          dva[j][c] += x;
          dka[j][c] += x * (V[j][c] - R[c]);
        }
    }
    if (!exact) continue;
    // Flagged (target, channel): a = e^{k + w' - L} term by term.
    for (int i = 0; i < ni; ++i)
      for (int c = 0; c < kC; ++c) {
        const int cc = cx * kC + c;
        if (!sm.X[i][cc]) continue;
        const int64_t t = ts + i, e = base + t * D + d0 + cc;
        const T g = gr[e], l = L[e], rv = r[e];
        for (int j = 0; j < kR; ++j) {
          const int jj = jy * kR + j;
          T x;
          if (jj >= nj || !exact_grad(bias, t, j0 + jj, sm.K[jj][cc], g, l, x)) continue;
          dva[j][c] += x;
          dka[j][c] += x * (V[j][c] - rv);
        }
      }
  }
  // The far targets (band): before and after the range; then write.
  const int64_t nch = row_chunks(T_);
  for (int j = 0; j < kR && active; ++j) {
    const int jj = jy * kR + j;
    if (jj >= nj) continue;
    for (int c = 0; c < kC; ++c) {
      const int cc = cx * kC + c;
      const int64_t d = d0 + cc;
      if (d >= D) continue;
      if (pre) far_grad(sm.K[jj][cc], V[j][c], chunk_sum(pre, b, nch, tr.lo / kChunk, D, d), dva[j][c], dka[j][c]);
      if (suf)
        far_grad(sm.K[jj][cc], V[j][c], chunk_sum(suf, b, nch, chunk_index(tr.hi, T_), D, d), dva[j][c], dka[j][c]);
      const int64_t e = base + (j0 + jj) * D + d;
      dk[e] = dka[j][c];
      dv[e] = dva[j][c];
    }
  }
}

// ---------------------------------------------------------------- backward: dw

// The key tiles a dw block row tile covers: all, or those meeting the band of rows [t0, t1).
template <class T>
__host__ __device__ Range w_key_range(const BiasSpec<T>& b, int64_t t0, int64_t t1) {
  constexpr int WJ = Tile<T>::WJ;
  if (!b.band()) return {0, b.causal ? t1 : b.n};
  int64_t lo = t0 - b.W + 1;
  lo = lo < 0 ? 0 : lo / WJ * WJ;
  int64_t hi = b.causal ? t1 : t1 + b.W - 1;
  return {lo, hi < b.n ? hi : b.n};
}

// One block: cells rows [t0, t0 + WI) × keys [j0, j0 + WJ) of dw. See the file comment.
template <class T>
__global__ void __launch_bounds__(w_threads<T>()) tiles_w_kernel(const T* k, const T* v, const T* L, const T* r,
                                                                 const T* gr, BiasSpec<T> bias, T* dw, int64_t B,
                                                                 int64_t D, int64_t nJx) {
  constexpr int WI = Tile<T>::WI, WJ = Tile<T>::WJ, NT = w_threads<T>();
  struct alignas(16) Smem {
    T E[WI][WJ + 4];  // w', then E  [row][key]
    T K[kWC][WJ];     // raw k       [channel][key]
    T P[kWC][WJ];     // e^{k - Mk}
    T V[kWC][WJ];
    T G[kWC][WI];     // gr·e^{Mk + Mw - L}  [channel][row]
    T R[kWC][WI];
    T Mw[WI], Mk[kWC];
    int cw[WI], ak[kWC];
    unsigned char X[kWC][WI];
  };
  AFT_SHARED(Smem, sm_, 1);
  Smem& sm = sm_[0];
  const int64_t T_ = bias.n, nI = (T_ + WI - 1) / WI, I = blockIdx.x / nJx;
  const int64_t t0 = I * WI, t1 = t0 + WI < T_ ? t0 + WI : T_;
  const Range kr = w_key_range(bias, t0, t1);
  const int64_t j0 = kr.lo + (blockIdx.x % nJx) * WJ;
  if (I >= nI || j0 >= kr.hi) return;  // the whole block: no cell of the band here
  const int64_t j1 = j0 + WJ < T_ ? j0 + WJ : T_;
  const int ni = static_cast<int>(t1 - t0), nj = static_cast<int>(j1 - j0);
  const int tid = threadIdx.x, jx = tid % (WJ / kC), ry = tid / (WJ / kC);
  const bool active = ry * kR < ni && jx * kC < nj;

  stage_bias<WI, WJ, NT>(sm.E, bias, t0, ni, j0, nj, tid);
  __syncthreads();
  bias_row_max<WI>(sm.E, sm.Mw, sm.cw, nj, tid);
  __syncthreads();
  exp_bias<WI, WJ, NT>(sm.E, sm.Mw, tid);

  T acc[kR][kC] = {}, accx[kR][kC] = {};  // separable terms (times E at the end), exact terms
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d0 = 0; d0 < D; d0 += kWC) {
      const int nc = static_cast<int>(D - d0 < kWC ? D - d0 : kWC);
      const int64_t base = b * T_ * D;
      __syncthreads();
      for (int idx = tid; idx < WJ * kWC; idx += NT) {
        const int j = idx / kWC, c = idx % kWC;
        const bool ok = j < nj && c < nc;
        const int64_t e = base + (j0 + j) * D + d0 + c;
        sm.K[c][j] = ok ? k[e] : T(0);
        sm.V[c][j] = ok ? v[e] : T(0);
      }
      __syncthreads();
      if (tid < kWC) argmax(&sm.K[tid][0], 1, nj, sm.K[tid][0], sm.Mk[tid], sm.ak[tid]);
      __syncthreads();
      for (int idx = tid; idx < WJ * kWC; idx += NT) {
        const int c = idx / WJ, j = idx % WJ;
        sm.P[c][j] = j < nj && c < nc ? std::exp(sm.K[c][j] - sm.Mk[c]) : T(0);
      }
      bool any = false;
      for (int idx = tid; idx < WI * kWC; idx += NT) {
        const int c = idx / WI, i = idx % WI;
        const int64_t t = t0 + i;
        const TargetScale<T> g = scale_target(i < ni && c < nc, bias, t, j0 + sm.ak[c], sm.Mk[c], sm.Mw[i],
                                              sm.K[c][sm.cw[i]], gr, L, r, base + t * D + d0 + c);
        sm.G[c][i] = g.G, sm.R[c][i] = g.r, sm.X[c][i] = g.exact;
        any = any || g.exact;
      }
      const bool exact = __syncthreads_or(any);
      if (!active) continue;
      for (int c = 0; c < nc; ++c) {
        T g[4], rr[4], p[4], vv[4];
        load4(&sm.G[c][ry * kR], g);
        load4(&sm.R[c][ry * kR], rr);
        load4(&sm.P[c][jx * kC], p);
        load4(&sm.V[c][jx * kC], vv);
#pragma unroll
        for (int i = 0; i < kR; ++i)
#pragma unroll
          for (int j = 0; j < kC; ++j) acc[i][j] += g[i] * p[j] * (vv[j] - rr[i]);
      }
      if (!exact) continue;
      for (int c = 0; c < nc; ++c)
        for (int i = 0; i < kR; ++i) {
          const int ii = ry * kR + i;
          if (ii >= ni || !sm.X[c][ii]) continue;
          const int64_t t = t0 + ii, e = base + t * D + d0 + c;
          const T gv = gr[e], l = L[e], rv = r[e];
          for (int j = 0; j < kC; ++j) {
            const int jj = jx * kC + j;
            T x;
            if (jj < nj && exact_grad(bias, t, j0 + jj, sm.K[c][jj], gv, l, x)) accx[i][j] += x * (sm.V[c][jj] - rv);
          }
        }
    }
  if (!active) return;
  for (int i = 0; i < kR; ++i) {
    const int ii = ry * kR + i;
    if (ii >= ni) continue;
    const int64_t t = t0 + ii;
    for (int j = 0; j < kC; ++j) {
      const int jj = jx * kC + j;
      const int64_t tp = j0 + jj;
      if (jj >= nj || !sees(bias, t, tp)) continue;
      const T val = sm.E[ii][jj] * acc[i][j] + accx[i][j];
      if (!bias.band()) {
        dw[t * T_ + tp] = val;
      } else {
        const int64_t cell = tp - t + bias.W - 1;
        if (cell >= 0 && cell < bias.nb) dw[t * bias.nb + cell] = val;
      }
    }
  }
}

}  // namespace

// ---------------------------------------------------------------- launchers

template <class T>
void tiles_forward(const T* q, const T* k, const T* v, const BiasSpec<T>& bias, const Acc<T>* pre, const Acc<T>* suf,
                   T* y, T* L, T* r, int64_t B, int64_t D) {
  const int64_t T_ = bias.n, nI = (T_ + Tile<T>::TI - 1) / Tile<T>::TI;
  if (B == 0 || T_ == 0 || D == 0) return;
  AFT_LAUNCH(tiles_forward_kernel<T>, dim3(static_cast<unsigned>(B * nI), blocks_for(D, kDC)), dim3(fwd_threads<T>()),
             0, q, k, v, bias, pre, suf, y, L, r, D, nI);
}

template <class T>
void tiles_backward_kv(const T* k, const T* v, const T* L, const T* r, const T* gr, const BiasSpec<T>& bias,
                       const Acc<T>* pre, const Acc<T>* suf, T* dk, T* dv, int64_t B, int64_t D) {
  const int64_t T_ = bias.n, nJ = (T_ + Tile<T>::TJ - 1) / Tile<T>::TJ;
  if (B == 0 || T_ == 0 || D == 0) return;
  AFT_LAUNCH(tiles_kv_kernel<T>, dim3(static_cast<unsigned>(B * nJ), blocks_for(D, kDC)), dim3(kv_threads<T>()), 0, k,
             v, L, r, gr, bias, pre, suf, dk, dv, D, nJ);
}

template <class T>
void tiles_backward_w(const T* k, const T* v, const T* L, const T* r, const T* gr, const BiasSpec<T>& bias, T* dw,
                      int64_t B, int64_t D) {
  constexpr int WI = Tile<T>::WI, WJ = Tile<T>::WJ;
  const int64_t T_ = bias.n, nI = (T_ + WI - 1) / WI, nJ = (T_ + WJ - 1) / WJ;
  if (B == 0 || T_ == 0 || D == 0) return;
  // Key tiles per row tile: all, or enough to cover the band of WI rows (blocks past it exit).
  int64_t nJx = nJ;
  if (bias.band()) {
    const int64_t span = (bias.causal ? WI : WI + bias.W - 1) + bias.W - 1;  // keys of the band of a row tile
    const int64_t need = (span + WJ - 1) / WJ + 1;
    nJx = need < nJ ? need : nJ;
  }
  AFT_LAUNCH(tiles_w_kernel<T>, dim3(static_cast<unsigned>(nI * nJx)), dim3(w_threads<T>()), 0, k, v, L, r, gr, bias,
             dw, B, D, nJx);
}

#define AFT_TILES_INSTANTIATE(T)                                                                                    \
  template void tiles_forward<T>(const T*, const T*, const T*, const BiasSpec<T>&, const Acc<T>*, const Acc<T>*, T*, \
                                 T*, T*, int64_t, int64_t);                                                          \
  template void tiles_backward_kv<T>(const T*, const T*, const T*, const T*, const T*, const BiasSpec<T>&,          \
                                     const Acc<T>*, const Acc<T>*, T*, T*, int64_t, int64_t);                       \
  template void tiles_backward_w<T>(const T*, const T*, const T*, const T*, const T*, const BiasSpec<T>&, T*,       \
                                    int64_t, int64_t);
AFT_TILES_INSTANTIATE(float)
AFT_TILES_INSTANTIATE(double)
#undef AFT_TILES_INSTANTIATE

}  // namespace aft::cuda::aftk
