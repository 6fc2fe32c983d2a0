// core/dispatch.h: from a runtime DType to a C++ type, for kernels written as templates:
//
//   dispatch_float(x.dtype(), "exp", [&]<class T>() { ... T is float or double ... });
#pragma once

#include "core/dtype.h"
#include "core/error.h"

namespace aft {

// dispatch_float(dt, "op", [&]<class T>() { ... }): runs the lambda with T = float or double.
template <class F>
decltype(auto) dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::Float32: return f.template operator()<float>();
    case DType::Float64: return f.template operator()<double>();
    default: AFT_ERROR("{}: expected a float32 or float64 tensor, got {}", op, dtype_name(dt));
  }
}

// dispatch_all(dt, "op", f): float32, float64, int64 and bool.
template <class F>
decltype(auto) dispatch_all(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::Float32: return f.template operator()<float>();
    case DType::Float64: return f.template operator()<double>();
    case DType::Int64: return f.template operator()<int64_t>();
    case DType::Bool: return f.template operator()<bool>();
    default: AFT_ERROR("{}: dtype {} is not supported yet", op, dtype_name(dt));
  }
}

}  // namespace aft
