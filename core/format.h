// core/format.h: fmt formatters for Shape ("[2, 3]"), DType ("float32"), Device ("cuda:0") and
// Tensor (values, summarised with "..." past 6 per dimension, then dtype, device, grad info).
#pragma once

#include <fmt/format.h>

#include <string>

#include "core/device.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace aft {
class Tensor;
std::string to_string(const Shape& s);
std::string to_string(Device d);
std::string to_string(const Tensor& t);
}  // namespace aft

template <>
struct fmt::formatter<aft::Shape> : fmt::formatter<std::string> {
  auto format(const aft::Shape& s, format_context& ctx) const {
    return fmt::formatter<std::string>::format(aft::to_string(s), ctx);
  }
};

template <>
struct fmt::formatter<aft::DType> : fmt::formatter<std::string_view> {
  auto format(aft::DType d, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(aft::dtype_name(d), ctx);
  }
};

template <>
struct fmt::formatter<aft::Device> : fmt::formatter<std::string> {
  auto format(aft::Device d, format_context& ctx) const {
    return fmt::formatter<std::string>::format(aft::to_string(d), ctx);
  }
};

template <>
struct fmt::formatter<aft::Tensor> : fmt::formatter<std::string> {
  auto format(const aft::Tensor& t, format_context& ctx) const {
    return fmt::formatter<std::string>::format(aft::to_string(t), ctx);
  }
};
