// ops/matmul.cpp: matmul, the batched matrix product with NumPy semantics, on top of the CPU
// GEMM of core/gemm/gemm.h (CUDA tensors: cuBLAS, cuda/blas.h).
//
//   a [..., M, K] @ b [..., K, N] -> out [..., M, N]
//   out[z, i, j] = Σ_k a[z, i, k] · b[z, k, j]      (z: the broadcast batch index)
// A 1-d a [K] is read as [1, K] and a 1-d b [K] as [K, 1]; that unit dimension is then removed
// from the result (so [K] @ [K] is a 0-d dot product). Batch dims broadcast as in NumPy.
//
// Layout: gemm reads a matrix either row-major (unit column stride, row stride ld) or as the
// transpose of a row-major matrix (unit row stride, column stride ld), so a transposed view such
// as w.t() or x.transpose(-1, -2) costs nothing; any other layout is copied to contiguous first.
// When b is the same matrix for every batch entry and a's batch rows are evenly spaced (the
// usual x [B, T, D] @ w [D, N]), the whole batch is one gemm with M = B·T.
//
// Backward, with G = d loss / d out [..., M, N]:
//   dA = G @ B^T   [..., M, K], summed over the batch dims a was broadcast along (sum_to)
//   dB = A^T @ G   [..., K, N], likewise; when b has no batch dims this is one gemm over all
//                  B·M rows: dB = A_flat^T @ G_flat, A_flat [B·M, K], G_flat [B·M, N].
// a is saved only when b needs a gradient and b only when a does.
//
// CUDA tensors: the same layouts go to cuBLAS (cuda/blas.h) as strided batches. The batch is
// split into an outer part, looped over on the host, and the longest run of inner batch dims
// over which a, b (and the dense output) advance by one fixed stride each, run as one
// strided-batched GEMM: x [B, H, T, D] @ w [D, N] or y [B, H, T, T] @ v [B, H, T, D] are one
// call, a [B, 1, M, K] @ b [H, K, N] is B calls of H products. TF32 stays off unless
// cuda::set_allow_tf32(true).
#include "autograd/tape.h"
#include "core/parallel.h"
#include "cuda/blas.h"
#include "core/gemm/gemm.h"
#include "ops/op_utils.h"
#include "ops/ops.h"

namespace aft {

namespace {

using autograd::SavedTensor;
using autograd::TensorList;

// How gemm reads the last two dims of an operand: row-major with row stride ld, or (trans)
// the transpose of a row-major matrix with row stride ld.
struct MatLayout {
  bool trans = false;
  int64_t ld = 1;
};

// Finds a gemm layout for a rows x cols matrix with strides (sr, sc); false when there is none.
// A stride along an extent-1 dim is never used, so it does not matter.
bool gemm_layout(int64_t rows, int64_t cols, int64_t sr, int64_t sc, MatLayout* out) {
  if ((cols <= 1 || sc == 1) && (rows <= 1 || sr >= std::max<int64_t>(cols, 1))) {
    *out = {false, rows <= 1 ? std::max<int64_t>(cols, 1) : sr};
    return true;
  }
  if ((rows <= 1 || sr == 1) && (cols <= 1 || sc >= std::max<int64_t>(rows, 1))) {
    *out = {true, cols <= 1 ? std::max<int64_t>(rows, 1) : sc};
    return true;
  }
  return false;
}

// The operand as gemm will read it: t itself, or a contiguous copy when no layout fits.
Tensor gemm_ready(const Tensor& t, MatLayout* layout) {
  const int n = t.ndim();
  if (gemm_layout(t.size(n - 2), t.size(n - 1), t.stride(n - 2), t.stride(n - 1), layout)) return t;
  Tensor c = t.contiguous();
  AFT_ASSERT(gemm_layout(c.size(n - 2), c.size(n - 1), c.stride(n - 2), c.stride(n - 1), layout));
  return c;
}

// True when the batch dims and the row dim of a (already broadcast to batch + [M, K]) are one
// evenly strided run of rows, so a batch of gemms with a shared b is a single gemm.
bool rows_fold(const Shape& shape, const Strides& strides, int nb, int64_t ld) {
  int64_t expect = ld * shape[nb];
  for (int d = nb - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

// Element offsets of a[z] and b[z] for the flat batch index z (strides as, bs over `batch`).
void batch_offsets(const Shape& batch, const Strides& as, const Strides& bs, int64_t z, int64_t* oa,
                   int64_t* ob) {
  *oa = *ob = 0;
  for (int d = batch.ndim() - 1; d >= 0; --d) {
    const int64_t i = z % batch[d];
    z /= batch[d];
    *oa += i * as[d];
    *ob += i * bs[d];
  }
}

// The stride s with which an operand of strides st advances over batch dims [d0, nb): the
// entry with flat index z over those dims starts at z·s. False when no single stride does.
bool batch_stride(const Shape& batch, const Strides& st, int d0, int64_t* s) {
  int64_t inner = 1;
  bool found = false;
  *s = 0;
  for (int d = batch.ndim() - 1; d >= d0; --d) {
    if (batch[d] == 1) continue;
    if (!found) *s = st[d], found = true;
    else if (st[d] != *s * inner) return false;
    inner *= batch[d];
  }
  return true;
}

// The CUDA forward (see the header comment): gemm_ready operands a, b with layouts la, lb and
// batch strides as, bs; out dense [batch..., M, N]; K >= 1.
void matmul_cuda(const Tensor& a, const MatLayout& la, const Strides& as, const Tensor& b, const MatLayout& lb,
                 const Strides& bs, const Shape& batch, bool one_gemm, const Tensor& out) {
  const int64_t M = out.size(-2), N = out.size(-1), K = a.size(-1);
  const auto esize = static_cast<int64_t>(a.element_size());
  const char* pa = static_cast<const char*>(a.raw_data());
  const char* pb = static_cast<const char*>(b.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  cuda::GemmBatch g{.trans_a = la.trans, .trans_b = lb.trans, .M = M, .N = N, .K = K, .A = pa, .lda = la.ld,
                    .B = pb, .ldb = lb.ld, .C = po, .ldc = N, .stride_c = M * N};
  if (one_gemm) {  // rows of all batch entries against the shared b
    g.M = batch.numel() * M;
    AFT_CUDA_CALL(cuda::gemm_strided_batched(a.dtype(), g, "matmul"));
    return;
  }
  int d0 = 0;  // the first inner batch dim; d0 = batch.ndim() (no inner dims) always fits
  while (!(batch_stride(batch, as, d0, &g.stride_a) && batch_stride(batch, bs, d0, &g.stride_b))) ++d0;
  int64_t outer = 1;
  for (int d = 0; d < d0; ++d) outer *= batch[d];
  g.batch = batch.numel() / outer;
  for (int64_t zo = 0; zo < outer; ++zo) {
    int64_t oa = 0, ob = 0;
    batch_offsets(batch, as, bs, zo * g.batch, &oa, &ob);
    g.A = pa + oa * esize;
    g.B = pb + ob * esize;
    g.C = po + zo * g.batch * M * N * esize;
    AFT_CUDA_CALL(cuda::gemm_strided_batched(a.dtype(), g, "matmul"));
  }
}

// out[z] = a[z] @ b[z] for a [..., M, K], b [..., K, N] (both at least 2-d, not tracked).
Tensor matmul_forward(const Tensor& a_in, const Tensor& b_in) {
  const int na = a_in.ndim(), nbd = b_in.ndim();
  const int64_t M = a_in.size(na - 2), K = a_in.size(na - 1), N = b_in.size(nbd - 1);
  Shape a_batch, b_batch;
  for (int d = 0; d < na - 2; ++d) a_batch.push_back(a_in.size(d));
  for (int d = 0; d < nbd - 2; ++d) b_batch.push_back(b_in.size(d));
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  const int nb = batch.ndim();
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = empty(out_shape, {a_in.dtype(), a_in.device()});
  if (out.numel() == 0) return out;
  if (K == 0) return out.zero_();  // empty sums (and a, b have no layout worth finding)

  MatLayout la, lb;
  Tensor a = gemm_ready(a_in, &la), b = gemm_ready(b_in, &lb);
  Shape a_full = batch, b_full = batch;
  a_full.push_back(M), a_full.push_back(K);
  b_full.push_back(K), b_full.push_back(N);
  const Strides as = broadcast_strides(a, a_full), bs = broadcast_strides(b, b_full);
  const int64_t batch_n = batch.numel();
  bool b_shared = true;
  for (int d = 0; d < nb; ++d) b_shared = b_shared && (bs[d] == 0 || batch[d] == 1);
  const bool one_gemm = b_shared && !la.trans && rows_fold(a_full, as, nb, la.ld);
  if (out.is_cuda()) {
    matmul_cuda(a, la, as, b, lb, bs, batch, one_gemm, out);
    return out;
  }

  dispatch_float(a.dtype(), "matmul", [&]<class T>() {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    if (one_gemm) {
      gemm<T>(false, lb.trans, batch_n * M, N, K, T(1), pa, la.ld, pb, lb.ld, T(0), po, N);
      return;
    }
    // One gemm per batch entry z; element offsets of a[z] and b[z] from the multi-index.
    auto one = [&](int64_t z) {
      int64_t oa = 0, ob = 0;
      batch_offsets(batch, as, bs, z, &oa, &ob);
      gemm<T>(la.trans, lb.trans, M, N, K, T(1), pa + oa, la.ld, pb + ob, lb.ld, T(0),
              po + z * M * N, N);
    };
    // Small matrices: threads take whole batch entries; large ones: each gemm is threaded.
    const double macs = static_cast<double>(M) * N * std::max<int64_t>(K, 1);
    constexpr double kBatchParallelMacs = 96.0 * 96 * 96;
    if (macs < kBatchParallelMacs && batch_n > 1) {
      const auto grain = static_cast<int64_t>(std::max(1.0, 32768.0 / macs));
      parallel_for(0, batch_n, grain, [&](int64_t z0, int64_t z1) {
        for (int64_t z = z0; z < z1; ++z) one(z);
      });
    } else {
      for (int64_t z = 0; z < batch_n; ++z) one(z);
    }
  });
  return out;
}

// matmul of operands with at least 2 dims, recorded on the tape.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  Tensor out = matmul_forward(a.detach(), b.detach());
  if (!autograd::needs_grad(a, b)) return out;
  const bool na = autograd::needs_grad(a), nb = autograd::needs_grad(b);
  SavedTensor save_a = nb ? SavedTensor(a) : SavedTensor();
  SavedTensor save_b = na ? SavedTensor(b) : SavedTensor();
  const Shape sa = a.shape(), sb = b.shape();
  autograd::record("matmul", {a, b}, {out}, [=](const TensorList& g) {
    const Tensor& G = g[0];
    Tensor ga, gb;
    if (na) ga = sum_to(matmul(G, save_b.get().transpose(-1, -2)), sa);  // G @ B^T
    if (nb) {
      const Tensor& A = save_a.get();
      const int64_t K = sa.back(), N = sb.back();
      if (sb.numel() == K * N && G.ndim() > 2) {  // b has no batch: one gemm over all rows
        gb = matmul(A.reshape({-1, K}).t(), G.reshape({-1, N})).reshape(sb);
      } else {
        gb = sum_to(matmul(A.transpose(-1, -2), G), sb);  // A^T @ G
      }
    }
    return TensorList{ga, gb};
  });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a, "a");
  check_defined("matmul", b, "b");
  AFT_CHECK(a.ndim() >= 1 && b.ndim() >= 1,
            "matmul: operands need at least 1 dimension, got {} @ {} (use mul for scalars)",
            a.shape(), b.shape());
  check_float_pair("matmul", a, b);
  const int64_t ka = a.shape().back(), kb = b.ndim() == 1 ? b.size(0) : b.shape().back(-2);
  AFT_CHECK(ka == kb, "matmul: inner dimensions differ: {} @ {}", a.shape(), b.shape());
  if (a.ndim() > 2 || b.ndim() > 2) {
    const int na = std::max(a.ndim() - 2, 0), nb = std::max(b.ndim() - 2, 0);
    for (int i = 1; i <= std::min(na, nb); ++i) {
      int64_t x = a.size(na - i), y = b.size(nb - i);
      AFT_CHECK(x == y || x == 1 || y == 1,
                "matmul: batch dimensions cannot be broadcast: {} @ {}", a.shape(), b.shape());
    }
  }

  // 1-d operands become matrices through recorded views, so their gradients need nothing more.
  const bool vec_a = a.ndim() == 1, vec_b = b.ndim() == 1;
  Tensor out = matmul_nd(vec_a ? a.unsqueeze(0) : a, vec_b ? b.unsqueeze(1) : b);
  if (vec_a) out = out.squeeze(-2);
  if (vec_b) out = out.squeeze(-1);
  return out;
}

}  // namespace aft
