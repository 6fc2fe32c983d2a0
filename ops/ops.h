// ops/ops.h: every differentiable op of aft, on CPU and (where cuda/ has the kernel) CUDA.
//
// Conventions shared by all ops:
// - Inputs of a binary op have the same dtype and device (no implicit promotion or copies);
//   shapes broadcast as in NumPy.
// - Every op that gets an input requiring grad records itself on the autograd tape; its
//   backward sits beside its forward in the op's .cpp file under ops/.
// - Bad arguments throw aft::Error naming the op and the shapes, dtypes or devices involved.
// - A dims list {} in a reduction means "all dimensions".
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace aft {

// ---- elementwise unary (ops/unary.cpp)
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluApprox { Erf, Tanh };  // exact 0.5·x·(1 + erf(x/√2)), or the tanh approximation
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::Erf);
Tensor pow(const Tensor& x, double exponent);

// ---- elementwise binary with broadcasting (ops/binary.cpp)
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient goes to a where a >= b
Tensor minimum(const Tensor& a, const Tensor& b);  // gradient goes to a where a <= b
// Scalar forms: the scalar takes the tensor's dtype.
Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor sub(double a, const Tensor& b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor div(double a, const Tensor& b);

Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);

// ---- masks (ops/compare.cpp): comparisons return bool tensors; where selects by a bool mask.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);  // all three broadcast

// ---- reductions (ops/reduce.cpp)
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
struct MaxResult {
  Tensor values;   // the maxima
  Tensor indices;  // int64 position along dim of the first maximum
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (divides by n - correction).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false,
           int64_t correction = 1);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- linear algebra (ops/matmul.cpp; CPU GEMM in core/gemm/gemm.cpp)
// a [..., M, K] @ b [..., K, N] -> [..., M, N]; batch dims broadcast. A 1-d a is a row vector,
// a 1-d b a column vector (that dimension is removed from the result).
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- shape ops (ops/shape_ops.cpp)
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim);  // last may be short
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index: 1-d int64
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);  // out[i][j] = x[i][index[i][j]]
// weight [V, D], indices int64 of any shape -> [..., D]; the backward adds the rows of
// repeated indices.
Tensor embedding(const Tensor& weight, const Tensor& indices);

// ---- fused NN ops
// ops/layer_norm.cpp: normalises over the last dim; weight and bias [D] may be undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// ops/cross_entropy.cpp: logits [N, C], target int64 [N]; log-softmax and NLL fused.
enum class Reduction { Mean, Sum, None };
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, Reduction reduction = Reduction::Mean);
// ops/dropout.cpp: zeroes elements with probability p and scales the rest by 1/(1-p) while
// training; the mask comes from the Philox stream of gen (default generator when null).
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);
// ops/sigmoid_gate.cpp: sigmoid(q) * x, AFT's output gating, in one pass.
Tensor sigmoid_gate(const Tensor& q, const Tensor& x);

// ---- the Attention Free Transformer operators (ops/aft_*.cpp; docs/aft.md explains them)
// q, k, v are [B, T, D]; the result is [B, T, D]:
//   y[t] = sigmoid(q[t]) * sum_t' exp(k[t'] + w[t, t']) * v[t'] / sum_t' exp(k[t'] + w[t, t'])
// with the sums over t' <= t when causal.
// aft_full: w is [T, T].
Tensor aft_full(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w, bool causal);
// aft_local: w[t, t'] is used where |t - t'| < window and is 0 outside. Only the band is
// stored: w_band is [T, 2·window − 1] with column j holding offset t' − t = j − (window − 1);
// when causal, [T, window] with column j holding t' = t − (window − 1) + j.
Tensor aft_local(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w_band,
                 int64_t window, bool causal);
// aft_band_bias: the band of a factorised bias w = u·vᵀ, in aft_local's layout, without
// forming T×T: u, v [T, d'] -> [T, 2·window − 1] (causal: [T, window]) with
// out[t, j] = u[t]·v[t + j − (window − 1)], and 0 where that key index is outside [0, T).
Tensor aft_band_bias(const Tensor& u, const Tensor& v, int64_t window, bool causal);
// aft_simple: w = 0.
Tensor aft_simple(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);
// aft_conv: q, v [B, H, W, C] (channels last); k [B, H, W, heads] (one key per head, shared by
// its C/heads channels) or [B, H, W, C]; w [heads, s, s], s odd. Non-causal:
//   y = sigmoid(q) * (conv(e^k·v, e^w − 1) + Σ e^k·v) / (conv(e^k, e^w − 1) + Σ e^k)
Tensor aft_conv(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w, int64_t heads);

}  // namespace aft
