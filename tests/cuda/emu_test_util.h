// tests/cuda/emu_test_util.h: what the SIMT emulator's test programs share
// (tests/cuda/test_emulator.cpp, tests/cuda/test_emulator_catches.cpp): device buffers, running
// a test under every order, inputs, and running a test case in a child process (for the
// sanitizers' reports, which end the process). Outside EMULATE builds it makes the program
// exit with 77 (ctest: skipped).
#pragma once

#include <doctest/doctest.h>

#if !AFT_CUDA_EMULATE
#include <cstdio>
#include <cstdlib>
TEST_CASE("emulator: needs an AFT_CUDA=EMULATE build") {
  std::fprintf(stderr, "skipped: the SIMT emulator's tests run in AFT_CUDA=EMULATE builds\n");
  std::exit(77);
}
#else

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../helpers.h"
#include "cuda/launch.h"
#include "tests/cuda/emu_kernels.h"

extern char** environ;

namespace aft::emu_test {
namespace emu = aft::cuda::emu;


// A device buffer of n T (host memory from the emulator's allocator).
template <class T>
struct Dev {
  size_t n;
  T* p;
  explicit Dev(size_t count) : n(count), p(static_cast<T*>(cuda::allocate(count * sizeof(T), 0))) {}
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) { set(v); }
  ~Dev() { cuda::deallocate(p, n * sizeof(T), 0); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void set(const std::vector<T>& v) { cuda::copy_h2d(p, v.data(), n * sizeof(T)); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    cuda::copy_d2h(v.data(), p, n * sizeof(T));
    return v;
  }
};

// Every standard order (forward, reverse, shuffle), serial and on the pool.
inline std::vector<emu::Options> all_orders() {
  std::vector<emu::Options> v;
  for (bool parallel : {false, true}) {
    emu::Options base = emu::options();
    base.parallel = parallel;
    for (const emu::Options& o : emu::standard_orders(base)) v.push_back(o);
  }
  return v;
}

// Runs f once under each of all_orders().
template <class F>
void for_each_order(F&& f) {
  for (const emu::Options& o : all_orders()) {
    emu::ScopedOptions scoped(o);
    INFO("order ", emu::describe_order(o), o.parallel ? " parallel" : " serial");
    f();
  }
}

// The options of now with the race checker off: the tests that show how the orders expose a
// race need the racy kernels to run to the end.
inline emu::Options without_racecheck() {
  emu::Options o = emu::options();
  o.racecheck = false;
  return o;
}

inline std::vector<int> iota_mod(size_t n, int mod) {
  std::vector<int> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<int>((i * 7 + 3) % mod);
  return v;
}
template <class T>
std::vector<T> small_ints(size_t n) {  // exact in float: sums do not depend on the order
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(static_cast<int>(i * 37 % 19) - 9);
  return v;
}


#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

// Runs this binary's test case `name` (marked skip) in a child; returns its exit status and
// sets `err` to what it printed.
inline int run_child(const std::string& name, std::string* err) {
  char path[] = "/tmp/aft_emu_child_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  std::string filter = "--test-case=" + name;
  std::string exe = "/proc/self/exe";
  char* argv[] = {exe.data(), filter.data(), const_cast<char*>("--no-skip=true"), nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  int status = 0;
  waitpid(pid, &status, 0);
  close(fd);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *err = ss.str();
  unlink(path);
  return status;
}

}  // namespace aft::emu_test

#endif  // AFT_CUDA_EMULATE
