// core/error.h: the one exception type of the library and the macros that raise it.
//
// User mistakes (wrong shapes, dtypes, devices, bad files) throw aft::Error with a message that
// names the op and the offending values, e.g. "matmul: inner dimensions differ: [2, 3] @ [4, 5]".
// Broken internal invariants are bugs of aft itself: AFT_ASSERT prints where and aborts.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace aft {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An op called on a device for which it has no kernel, e.g. "max backward: not implemented on
// CUDA". A type of its own so that a harness (tests/cuda/test_op_parity.cpp) can report the op
// as unsupported instead of failing; op() is the op's name.
class NotImplementedError : public Error {
 public:
  NotImplementedError(const std::string& op, const std::string& device)
      : Error(op + ": not implemented on " + device), op_(op) {}
  const std::string& op() const { return op_; }

 private:
  std::string op_;
};

namespace detail {
template <class... Args>
[[noreturn]] void throw_error(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}
[[noreturn]] void assert_fail(const char* expr, const char* file, int line);
}  // namespace detail

}  // namespace aft

// AFT_CHECK(cond, "op: what is wrong: {} vs {}", a, b): throws aft::Error when cond is false.
#define AFT_CHECK(cond, ...)                                \
  do {                                                      \
    if (!(cond)) [[unlikely]]                               \
      ::aft::detail::throw_error(__VA_ARGS__);              \
  } while (0)

// AFT_ERROR("op: ...", args...): throws unconditionally.
#define AFT_ERROR(...) ::aft::detail::throw_error(__VA_ARGS__)

// AFT_ASSERT(cond): an internal invariant; checked in every build type.
#define AFT_ASSERT(cond)                                              \
  do {                                                                \
    if (!(cond)) [[unlikely]]                                         \
      ::aft::detail::assert_fail(#cond, __FILE__, __LINE__);          \
  } while (0)
