// ops/cpu_loops.h: the strided, broadcasting, multithreaded element loop of the CPU kernels.
//
// An elementwise kernel sees N operands (operand 0 is the output) over one common shape, each
// with its own strides (0 where an input is broadcast). make_plan() drops extent-1 dimensions
// and merges neighbours that are contiguous for every operand, so a dense tensor becomes one
// flat dimension. cpu_loop() splits the flat element range [0, numel) into one chunk per
// thread and calls loop1d(pointers, inner byte strides, n) on runs of the innermost dimension.
// cpu_map() builds the loop for a lambda `out = f(in...)`, with a unit-stride fast path that
// the compiler vectorises.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "core/parallel.h"
#include "core/tensor.h"
#include "ops/op_utils.h"

namespace aft {

inline constexpr int64_t kElementwiseGrain = 32768;

template <size_t N>
struct LoopPlan {
  Shape shape;                    // coalesced extents, innermost last
  std::array<Strides, N> stride;  // in bytes
};

template <size_t N>
LoopPlan<N> make_plan(const Shape& shape, const std::array<Strides, N>& byte_strides) {
  LoopPlan<N> p;
  for (int d = 0; d < shape.ndim(); ++d) {
    if (shape[d] == 1) continue;
    int last = p.shape.ndim() - 1;
    bool merge = last >= 0;
    for (size_t k = 0; k < N && merge; ++k)
      merge = p.stride[k][last] == byte_strides[k][d] * shape[d];
    if (merge) {
      p.shape[last] *= shape[d];
      for (size_t k = 0; k < N; ++k) p.stride[k][last] = byte_strides[k][d];
    } else {
      p.shape.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) p.stride[k].push_back(byte_strides[k][d]);
    }
  }
  if (p.shape.ndim() == 0) {  // a single element
    p.shape.push_back(1);
    for (size_t k = 0; k < N; ++k) p.stride[k].push_back(0);
  }
  return p;
}

// loop1d(const std::array<char*, N>& ptrs, const std::array<int64_t, N>& inner_strides, int64_t n)
template <size_t N, class Loop1d>
void cpu_loop(const LoopPlan<N>& plan, const std::array<char*, N>& base, Loop1d&& loop1d,
              int64_t grain = kElementwiseGrain) {
  const Shape& sh = plan.shape;
  const int nd = sh.ndim();
  const int64_t total = sh.numel();
  if (total == 0) return;
  const int64_t inner = sh[nd - 1];
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = plan.stride[k][nd - 1];
  parallel_for(0, total, grain, [&](int64_t begin, int64_t end) {
    // Multi-index of `begin`.
    std::array<int64_t, kMaxDims> idx{};
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = rem % sh[d];
      rem /= sh[d];
    }
    int64_t pos = begin;
    while (pos < end) {
      std::array<char*, N> p;
      for (size_t k = 0; k < N; ++k) {
        char* q = base[k];
        for (int d = 0; d < nd; ++d) q += idx[d] * plan.stride[k][d];
        p[k] = q;
      }
      int64_t n = std::min(inner - idx[nd - 1], end - pos);
      loop1d(p, inner_stride, n);
      pos += n;
      idx[nd - 1] += n;
      for (int d = nd - 1; d > 0 && idx[d] == sh[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  });
}

template <class T>
inline Strides byte_strides(const Strides& elem_strides) {
  Strides s = elem_strides;
  for (auto& v : s) v *= static_cast<int64_t>(sizeof(T));
  return s;
}

namespace detail {
template <class TOut, class... TIn, class F, size_t... I>
inline void map_run(F& f, const std::array<char*, sizeof...(TIn) + 1>& p,
                    const std::array<int64_t, sizeof...(TIn) + 1>& s, int64_t n,
                    std::index_sequence<I...>) {
  constexpr size_t N = sizeof...(TIn) + 1;
  bool dense = s[0] == sizeof(TOut) && ((s[I + 1] == sizeof(TIn)) && ...);
  if (dense) {
    TOut* o = reinterpret_cast<TOut*>(p[0]);
    std::tuple<const TIn*...> in{reinterpret_cast<const TIn*>(p[I + 1])...};
    for (int64_t i = 0; i < n; ++i) o[i] = f(std::get<I>(in)[i]...);
    return;
  }
  (void)N;
  for (int64_t i = 0; i < n; ++i)
    *reinterpret_cast<TOut*>(p[0] + i * s[0]) =
        f(*reinterpret_cast<const TIn*>(p[I + 1] + i * s[I + 1])...);
}
}  // namespace detail

// out = f(in...) elementwise; each input is broadcast to out's shape.
// Template arguments: the C++ types of the output and of each input.
template <class TOut, class... TIn, class F>
void cpu_map(const Tensor& out, F f, const std::conditional_t<true, Tensor, TIn>&... in) {
  constexpr size_t N = sizeof...(TIn) + 1;
  std::array<char*, N> base{static_cast<char*>(out.raw_data()), static_cast<char*>(in.raw_data())...};
  std::array<Strides, N> st{byte_strides<TOut>(out.strides()),
                            byte_strides<TIn>(broadcast_strides(in, out.shape()))...};
  LoopPlan<N> plan = make_plan<N>(out.shape(), st);
  cpu_loop<N>(plan, base, [&](const std::array<char*, N>& p, const std::array<int64_t, N>& s, int64_t n) {
    detail::map_run<TOut, TIn...>(f, p, s, n, std::index_sequence_for<TIn...>{});
  });
}

}  // namespace aft
