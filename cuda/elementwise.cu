// cuda/elementwise.cu: elementwise kernels: fill, unary forward/backward, binary forward.
//
// The scalar formulas are those of the CPU ops (ops/elementwise_math.h). This first version
// handles dense operands of one shape: one thread per element, grid-stride loop, 256 threads
// a block.
#include "cuda/desc.h"
#include "cuda/launch.h"
#include "ops/elementwise_math.h"

namespace aft::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 ? b : 65535);
}

#define AFT_GRID_STRIDE(i, n)                                                               \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// out[i] = value
template <class T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  AFT_GRID_STRIDE(i, n) out[i] = value;
}

// y[i] = f(x[i])
template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* y, int64_t n, T p) {
  AFT_GRID_STRIDE(i, n) y[i] = emath::unary_forward<T>(op, x[i], p);
}

// dx[i] = g[i] * f'(x[i])  (from_y: the saved tensor is y = f(x) instead of x)
template <class T>
__global__ void unary_backward_kernel(UnaryOp op, const T* g, const T* s, T* dx, int64_t n,
                                      bool from_y, T p) {
  AFT_GRID_STRIDE(i, n) {
    dx[i] = from_y ? emath::unary_backward<T>(op, g[i], T(0), s[i], p)
                   : emath::unary_backward<T>(op, g[i], s[i], T(0), p);
  }
}

// out[i] = a[i] (op) b[i]
template <class T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, int64_t n) {
  AFT_GRID_STRIDE(i, n) out[i] = emath::binary_forward<T>(op, a[i], b[i]);
}

void require_dense(const TensorDesc& t, const char* op) {
  if (!t.is_contiguous()) raise_error(op);
}

}  // namespace

void fill_contiguous(void* out, int64_t n, int dtype_bytes, double value) {
  if (dtype_bytes == 4)
    AFT_LAUNCH(fill_kernel<float>, grid_for(n), kThreads, 0, static_cast<float*>(out), n,
               static_cast<float>(value));
  else
    AFT_LAUNCH(fill_kernel<double>, grid_for(n), kThreads, 0, static_cast<double*>(out), n, value);
}

void unary_forward(UnaryOp op, const TensorDesc& x, const TensorDesc& y, double p) {
  require_dense(x, "unary op on CUDA: only dense tensors in this build");
  int64_t n = x.numel();
  if (x.dtype == DType::Float32)
    AFT_LAUNCH(unary_kernel<float>, grid_for(n), kThreads, 0, op, x.ptr<const float>(),
               y.ptr<float>(), n, static_cast<float>(p));
  else
    AFT_LAUNCH(unary_kernel<double>, grid_for(n), kThreads, 0, op, x.ptr<const double>(),
               y.ptr<double>(), n, p);
}

void unary_backward(UnaryOp op, const TensorDesc& g, const TensorDesc& s, const TensorDesc& dx,
                    bool from_y, double p) {
  require_dense(g, "unary backward on CUDA: only dense tensors in this build");
  require_dense(s, "unary backward on CUDA: only dense tensors in this build");
  int64_t n = g.numel();
  if (g.dtype == DType::Float32)
    AFT_LAUNCH(unary_backward_kernel<float>, grid_for(n), kThreads, 0, op, g.ptr<const float>(),
               s.ptr<const float>(), dx.ptr<float>(), n, from_y, static_cast<float>(p));
  else
    AFT_LAUNCH(unary_backward_kernel<double>, grid_for(n), kThreads, 0, op, g.ptr<const double>(),
               s.ptr<const double>(), dx.ptr<double>(), n, from_y, p);
}

void binary_forward(BinaryOp op, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out) {
  const char* msg = "binary op on CUDA: only dense tensors of the same shape in this build";
  require_dense(a, msg);
  require_dense(b, msg);
  if (a.numel() != out.numel() || b.numel() != out.numel()) raise_error(msg);
  int64_t n = out.numel();
  if (out.dtype == DType::Float32)
    AFT_LAUNCH(binary_kernel<float>, grid_for(n), kThreads, 0, op, a.ptr<const float>(),
               b.ptr<const float>(), out.ptr<float>(), n);
  else
    AFT_LAUNCH(binary_kernel<double>, grid_for(n), kThreads, 0, op, a.ptr<const double>(),
               b.ptr<const double>(), out.ptr<double>(), n);
}

}  // namespace aft::cuda
