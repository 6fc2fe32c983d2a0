// core/format.cpp: printing of shapes, devices and tensors.
#include "core/format.h"

#include <cstring>

#include "core/tensor.h"

namespace aft {

std::string to_string(const Shape& s) {
  std::string out = "[";
  for (int i = 0; i < s.ndim(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

std::string to_string(Device d) {
  return d.is_cpu() ? std::string("cpu") : fmt::format("cuda:{}", d.index);
}

Device parse_device(const char* s) {
  std::string str = s ? s : "";
  if (str == "cpu") return kCPU;
  if (str == "cuda") return Device::cuda(0);
  if (str.rfind("cuda:", 0) == 0) {
    const char* num = str.c_str() + 5;
    char* endp = nullptr;
    long idx = std::strtol(num, &endp, 10);
    if (*num && endp && *endp == 0 && idx >= 0 && idx < 1024) return Device::cuda(static_cast<int>(idx));
  }
  AFT_ERROR("device: cannot parse '{}' (expected cpu, cuda or cuda:N)", str);
}

namespace {

constexpr int64_t kEdge = 3;  // elements shown at each end of a summarised dimension

void format_values(std::string& out, const Tensor& t, const std::vector<double>& v,
                   int dim, int64_t base, const Strides& st, int indent) {
  int64_t n = t.shape()[dim];
  out += "[";
  bool summarise = n > 2 * kEdge;
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && i == kEdge) {
      out += dim + 1 == t.ndim() ? "..., " : "...,\n" + std::string(indent + 1, ' ');
      i = n - kEdge;
    }
    int64_t pos = base + i * st[dim];
    if (dim + 1 == t.ndim()) {
      double x = v[pos];
      if (t.dtype() == kInt64) out += fmt::format("{}", static_cast<int64_t>(x));
      else if (t.dtype() == kBool) out += x != 0 ? "true" : "false";
      else out += fmt::format("{:.4g}", x);
    } else {
      format_values(out, t, v, dim + 1, pos, st, indent + 1);
    }
    if (i + 1 < n) out += dim + 1 == t.ndim() ? ", " : ",\n" + std::string(indent + 1, ' ');
  }
  out += "]";
}

}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  std::string out = "tensor(";
  if (t.dtype() == DType::BFloat16 || t.dtype() == DType::Float16) {
    out += fmt::format("<{} values>", t.numel());
  } else {
    std::vector<double> v = t.to_vector<double>();
    Strides st = contiguous_strides(t.shape());
    if (t.ndim() == 0) out += fmt::format("{:.4g}", v.empty() ? 0.0 : v[0]);
    else if (t.numel() == 0) out += "[]";
    else format_values(out, t, v, 0, 0, st, 7);
  }
  out += fmt::format(", shape={}, dtype={}, device={}", t.shape(), t.dtype(), t.device());
  if (t.requires_grad()) out += t.is_leaf() ? ", requires_grad" : ", grad_fn";
  return out + ")";
}

}  // namespace aft
