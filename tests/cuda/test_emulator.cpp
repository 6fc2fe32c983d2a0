// tests/cuda/test_emulator.cpp: the SIMT emulator (cuda/emu/) itself, in EMULATE builds only.
//
//   - correct kernels (tests/cuda/emu_kernels.cu) give the plain loops' answers under every
//     thread and block order, serial and on the thread pool, with both fiber switches;
//   - each deliberately broken kernel (tests/cuda/emu_broken_kernels.cu) is caught: an error
//     naming the kernel and threads, NaN poison in the result, orders that disagree, or (in the
//     AddressSanitizer build) an ASan report from a child process;
//   - the real kernels of cuda/*.cu run through tensors;
//   - options, launch checks, and the cost of barriers (a benchmark, skipped by default:
//     test_emulator -tc="emulator benchmark*" --no-skip).
// In other builds the binary exits with 77 (ctest: skipped).
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

#include <barrier>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "../helpers.h"
#include "cuda/launch.h"
#include "tests/cuda/emu_kernels.h"

extern char** environ;

using namespace aft;
using namespace aft::emu_test;
namespace emu = aft::cuda::emu;

namespace {

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
std::vector<emu::Options> all_orders() {
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
emu::Options without_racecheck() {
  emu::Options o = emu::options();
  o.racecheck = false;
  return o;
}

std::vector<int> iota_mod(size_t n, int mod) {
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

}  // namespace

// ================================================================ correct kernels

TEST_CASE("emulator: block reduction with shared memory and barriers") {
  for (int threads : {32, 256, 1024}) {
    int n = 3 * threads - 5, blocks = 3;
    std::vector<float> x = small_ints<float>(n);
    std::vector<double> xd = small_ints<double>(n);
    std::vector<double> expect(blocks, 0.0);
    for (int i = 0; i < n; ++i) expect[i / threads] += x[i];
    Dev<float> dx(x), out(blocks);
    Dev<double> dxd(xd), outd(blocks);
    for_each_order([&] {
      block_sum(dx.p, out.p, n, blocks, threads);
      block_sum(dxd.p, outd.p, n, blocks, threads);
      std::vector<float> got = out.get();
      std::vector<double> gotd = outd.get();
      for (int b = 0; b < blocks; ++b) {
        CHECK(got[b] == expect[b]);
        CHECK(gotd[b] == expect[b]);
      }
    });
  }
}

TEST_CASE("emulator: warp all-reduce with __shfl_xor_sync") {
  int blocks = 2, threads = 128;
  std::vector<float> x = small_ints<float>(blocks * threads);
  Dev<float> dx(x), out(x.size());
  for_each_order([&] {
    warp_allreduce(dx.p, out.p, blocks, threads);
    std::vector<float> got = out.get();
    for (size_t i = 0; i < x.size(); ++i) {
      float s = 0;
      for (size_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) s += x[j];
      CHECK_MESSAGE(got[i] == s, "element ", i);
    }
  });
}

TEST_CASE("emulator: block scan with __shfl_up_sync, including partial warps") {
  for (int threads : {32, 100, 256, 1000}) {
    int blocks = 3, n = blocks * threads - 7;
    std::vector<int> x = iota_mod(n, 11);
    Dev<int> dx(x), out(n);
    for_each_order([&] {
      block_scan(dx.p, out.p, n, blocks, threads);
      std::vector<int> got = out.get();
      int running = 0;
      for (int i = 0; i < n; ++i) {
        running = (i % threads == 0 ? 0 : running) + x[i];
        REQUIRE_MESSAGE(got[i] == running, "threads ", threads, " element ", i);
      }
    });
  }
}

TEST_CASE("emulator: dynamic shared memory") {
  int blocks = 3, threads = 64;
  std::vector<double> x(blocks * threads);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5 * static_cast<double>(i);
  std::vector<float4> x4(x.size());
  for (size_t i = 0; i < x.size(); ++i) x4[i] = make_float4(float(i), float(i) + 0.25f, -float(i), 1.0f);
  Dev<double> dx(x), y(x.size());
  Dev<float4> dx4(x4), y4(x.size());
  CHECK(reinterpret_cast<uintptr_t>(dx4.p) % 16 == 0);
  for_each_order([&] {
    reverse_in_block(dx.p, y.p, blocks, threads);
    reverse_in_block(dx4.p, y4.p, blocks, threads);
    std::vector<double> got = y.get();
    std::vector<float4> got4 = y4.get();
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < threads; ++t) {
        size_t i = b * threads + t, j = b * threads + (threads - 1 - t);
        CHECK(got[i] == x[j]);
        CHECK((got4[i].x == x4[j].x && got4[i].y == x4[j].y && got4[i].z == x4[j].z && got4[i].w == x4[j].w));
      }
  });
}

TEST_CASE("emulator: atomics from many blocks") {
  int n = 20000;
  std::vector<int> x = iota_mod(n, 101);
  AtomicResults expect{};
  expect.imax = INT32_MIN;
  expect.imin = INT32_MAX;
  expect.fmax = -1.0f;
  for (int v : x) {
    expect.hist[v % 16]++;
    expect.fsum += static_cast<float>(v);  // integers below 2^24: exact in any order
    expect.dsum += v;
    expect.imax = std::max(expect.imax, v);
    expect.imin = std::min(expect.imin, v);
    expect.count++;
    expect.fmax = std::max(expect.fmax, 0.5f * static_cast<float>(v));
    expect.bits |= 1u << (v % 32);
    expect.ticket = expect.ticket >= 999 ? 0 : expect.ticket + 1;
    if (v == 7) expect.exch_seen = 1;
  }
  Dev<int> dx(x);
  Dev<AtomicResults> r(1);
  AtomicResults init{};
  init.imax = INT32_MIN;
  init.imin = INT32_MAX;
  init.fmax = -1.0f;
  for_each_order([&] {
    r.set({init});
    atomics(dx.p, n, r.p, 37, 96);
    AtomicResults got = r.get()[0];
    for (int k = 0; k < 16; ++k) CHECK(got.hist[k] == expect.hist[k]);
    CHECK(got.fsum == expect.fsum);
    CHECK(got.dsum == expect.dsum);
    CHECK(got.imax == expect.imax);
    CHECK(got.imin == expect.imin);
    CHECK(got.count == expect.count);
    CHECK(got.fmax == expect.fmax);
    CHECK(got.bits == expect.bits);
    CHECK(got.ticket == expect.ticket);  // n increments wrap the same way in any order
    CHECK(got.exch_seen == 1);
  });
}

TEST_CASE("emulator: grid-stride loop") {
  int64_t n = 5000;
  std::vector<double> x(n), y(n);
  for (int64_t i = 0; i < n; ++i) x[i] = 0.25 * double(i), y[i] = 1.0 - double(i);
  Dev<double> dx(x), dy(n);
  for_each_order([&] {
    dy.set(y);
    saxpy(3.0, dx.p, dy.p, n, 3, 64);  // 192 threads for 5000 elements
    std::vector<double> got = dy.get();
    for (int64_t i = 0; i < n; ++i) REQUIRE(got[i] == 3.0 * x[i] + y[i]);
  });
}

TEST_CASE("emulator: 3-D grids and blocks") {
  unsigned gx = 3, gy = 2, gz = 2, bx = 4, by = 3, bz = 5;
  size_t total = size_t(gx) * gy * gz * bx * by * bz;
  Dev<int> out(total);
  for_each_order([&] {
    out.set(std::vector<int>(total, -7));
    index_3d(out.p, gx, gy, gz, bx, by, bz);
    std::vector<int> got = out.get();
    size_t k = 0;
    for (unsigned z = 0; z < gz; ++z)
      for (unsigned y = 0; y < gy; ++y)
        for (unsigned x = 0; x < gx; ++x)
          for (unsigned tz = 0; tz < bz; ++tz)
            for (unsigned ty = 0; ty < by; ++ty)
              for (unsigned tx = 0; tx < bx; ++tx, ++k)
                REQUIRE(got[k] == int(tx + 10 * ty + 100 * tz + 1000 * x + 10000 * y + 100000 * z));
  });
}

TEST_CASE("emulator: warp reductions with a partial last warp") {
  for (int threads : {1, 20, 48, 100}) {
    std::vector<int> x = iota_mod(threads, 13);
    int warps = (threads + 31) / 32;
    Dev<int> dx(x), out(warps), out2(warps);
    for_each_order([&] {
      partial_warp_sum(dx.p, out.p, out2.p, threads);
      std::vector<int> got = out.get(), got2 = out2.get();
      for (int w = 0; w < warps; ++w) {
        int s = 0;
        for (int t = w * 32; t < std::min(threads, w * 32 + 32); ++t) s += x[t];
        CHECK_MESSAGE(got[w] == s, "threads ", threads, " warp ", w);
        CHECK_MESSAGE(got2[w] == s, "threads ", threads, " warp ", w);
      }
    });
  }
}

TEST_CASE("emulator: shuffle widths and out-of-segment sources") {
  Dev<int> out(32 * 16);
  out.set(std::vector<int>(32 * 16, 0));
  shuffle_widths(out.p);
  std::vector<int> got = out.get();
  for (int l = 0; l < 32; ++l) {
    const int* o = &got[l * 16];
    int seg = l / 8 * 8, seg_end = seg + 7;
    INFO("lane ", l);
    CHECK(o[0] == 100 + seg + 3);                                  // src 3 of the lane's 8-lane segment
    CHECK(o[1] == 103);                                            // src 35 is lane 3 (mod 32)
    CHECK(o[2] == 100 + (l - 2 >= seg ? l - 2 : l));              // up 2 within the segment
    CHECK(o[3] == 100 + (l + 3 <= seg_end ? l + 3 : l));          // down 3 within the segment
    CHECK(o[4] == 100 + (l ^ 4));                                  // stays in the segment
    CHECK(o[5] == 100 + ((l ^ 12) <= seg_end ? (l ^ 12) : l));    // earlier segments only
    CHECK(o[6] == 100 + (l < 31 ? l + 1 : l));
    CHECK(o[7] == 100 + (l > 0 ? l - 1 : l));                      // delta 33 acts as 1
    CHECK(o[8] == 2 * (100 + (l ^ 1)) + 1);                        // doubles move whole
    CHECK(o[9] == (l ^ 1) * 1000 + (l ^ 1));                       // so do 64-bit integers
  }
}

TEST_CASE("emulator: votes and counting barriers") {
  for (int threads : {48, 64}) {
    Dev<int> out(threads * 6);
    for_each_order([&] {
      votes(out.p, threads);
      std::vector<int> got = out.get();
      for (int t = 0; t < threads; ++t) {
        int lanes = std::min(32, threads - t / 32 * 32);
        unsigned ballot = 0;
        for (int l = 0; l < lanes; ++l) ballot |= unsigned(l % 3 == 0) << l;
        const int* r = &got[t * 6];
        INFO("thread ", t);
        CHECK(unsigned(r[0]) == ballot);
        CHECK(r[1] == (lanes > 5));
        CHECK(r[2] == 1);
        CHECK(r[3] == (threads + 1) / 2);
        CHECK(r[4] == 1);
        CHECK(r[5] == 1);
      }
    });
  }
}

TEST_CASE("emulator: math intrinsics") {
  std::vector<float> x = {-3.5f, -1.0f, -0.2f, 0.0f, 0.3f, 1.0f, 2.5f, 7.0f, 20.0f};
  int n = static_cast<int>(x.size());
  Dev<float> dx(x), out(n * 16);
  math(dx.p, out.p, n);
  std::vector<float> got = out.get();
  for (int i = 0; i < n; ++i) {
    float v = x[i];
    const float* o = &got[i * 16];
    INFO("x = ", v);
    CHECK(std::fabs(o[0] - std::exp(v)) <= 1e-5f * std::exp(v) * (1 + std::fabs(v)));  // __expf: ~|x| ulp
    CHECK(o[1] == std::exp(v));
    CHECK(std::fabs(o[2] - std::log(std::fabs(v) + 1)) <= 1e-6f * (1 + std::fabs(v)));
    CHECK(o[3] == doctest::Approx(1 / std::sqrt(std::fabs(v) + 1)).epsilon(1e-6));
    CHECK(o[4] == doctest::Approx(v / 3).epsilon(1e-6));
    CHECK(o[5] == std::fma(v, 2.0f, 1.0f));
    CHECK(o[6] == std::fmin(v, 0.25f) + std::fmax(v, -0.25f));
    CHECK(o[7] == std::erf(v));
    CHECK(o[8] == std::tanh(v));
    CHECK(o[9] == std::clamp(v, 0.0f, 1.0f));
    CHECK(o[10] == std::exp2(v) + std::log2(std::fabs(v) + 1));
    CHECK(o[11] == std::copysign(1.0f, v));
    CHECK(o[12] == 1.0f);
    CHECK(o[13] == 1.0f);
    CHECK(o[14] == static_cast<float>(1 / std::sqrt(std::fabs(double(v)) + 1) + std::exp(double(v))));
    CHECK(o[15] == static_cast<float>(std::max(3, int(v * 4)) + std::min(-3, int(v * 4))));
  }
  CHECK(__saturatef(NAN) == 0.0f);
  CHECK(__fdividef(1.0f, 1e38f) == 0.0f);  // the GPU's approximate division underflows there
  CHECK(__fdividef(1.0f, 1e37f) == 1.0f / 1e37f);
}

TEST_CASE("emulator: warp-level shared memory with __syncwarp is order-independent") {
  std::vector<float> x = small_ints<float>(32);
  float expect = 0;
  for (float v : x) expect += v;
  Dev<float> dx(x), out(1);
  for_each_order([&] {
    warp_smem_sum(dx.p, out.p);
    CHECK(out.get()[0] == expect);
  });
}

TEST_CASE("emulator: the glibc ucontext fiber switch gives the same results") {
  emu::Options o = emu::options();
  o.assembly_fibers = false;
  emu::ScopedOptions scoped(o);
  int threads = 256, n = 2 * threads, blocks = 2;
  std::vector<float> x = small_ints<float>(n);
  Dev<float> dx(x), out(blocks), wout(n);
  block_sum(dx.p, out.p, n, blocks, threads);
  warp_allreduce(dx.p, wout.p, blocks, threads);
  std::vector<float> got = out.get(), wgot = wout.get();
  for (int b = 0; b < blocks; ++b) {
    float s = 0;
    for (int i = b * threads; i < (b + 1) * threads; ++i) s += x[i];
    CHECK(got[b] == s);
  }
  float w0 = 0;
  for (int i = 0; i < 32; ++i) w0 += x[i];
  CHECK(wgot[0] == w0);
}

// ================================================================ the real kernels of cuda/

TEST_CASE("emulator: cuda/elementwise.cu and cuda/reduce.cu through tensors") {
  Generator g(11);
  Tensor a = randn({7, 33}, kFloat32, &g), b = randn({33}, kFloat32, &g);
  Tensor ad = a.to(kFloat64);
  for_each_order([&] {
    Tensor ac = a.cuda(), bc = b.cuda();
    test::check_close(add(ac, bc).cpu(), add(a, b), 0, 0, "add (broadcast)");
    test::check_close(exp(ac).cpu(), exp(a), 0, 0, "exp");
    test::check_close(where(gt(ac, 0.0), ac, bc).cpu(), where(gt(a, 0.0), a, b), 0, 0, "where");
    test::check_close(sum(ac, {1}).cpu(), sum(a, {1}), 1e-6, 1e-6, "sum");
    test::check_close(sum(ad.cuda(), {0}).cpu(), sum(ad, {0}), 1e-12, 1e-12, "sum f64");
    test::check_close(relu(ac.transpose(0, 1)).cpu(), relu(a.transpose(0, 1)), 0, 0, "relu strided");
  });
}

// ================================================================ options and launch checks

TEST_CASE("emulator: orders parse and print") {
  emu::Options o = emu::parse_order("reverse");
  CHECK(o.thread_order == emu::Order::Reverse);
  CHECK(o.block_order == emu::Order::Reverse);
  o = emu::parse_order("shuffle:42/forward");
  CHECK(o.thread_order == emu::Order::Shuffle);
  CHECK(o.block_order == emu::Order::Forward);
  CHECK(o.seed == 42);
  CHECK(emu::describe_order(o) == "shuffle:42/forward");
  CHECK(emu::describe_order(emu::parse_order("forward")) == "forward");
  for (const char* bad : {"", "backwards", "shuffle:", "shuffle:x1", "forward/", "reverse/sideways"})
    test::check_error([&] { emu::parse_order(bad); }, "is not <order>");
  std::vector<emu::Options> std_orders = emu::standard_orders();
  REQUIRE(std_orders.size() == 3);
  CHECK(std_orders[1].thread_order == emu::Order::Reverse);
}

TEST_CASE("emulator: invalid launches are reported like the CUDA runtime's errors") {
  Dev<float> y(64);
  test::check_error([&] { saxpy(1.0, nullptr, nullptr, 1, 1, 2048); }, "invalid block (2048, 1, 1)");
  test::check_error([&] { too_much_shared(y.p); }, "more than the 49152 a kernel may use");
  test::check_error([&] { std::printf("%u\n", threadIdx.x); }, "threadIdx used outside a kernel");
}

TEST_CASE("emulator: threads that never synchronise do not switch needlessly") {
  emu::Options o = emu::options();
  o.parallel = false;
  emu::ScopedOptions scoped(o);
  int64_t n = 4 * 256;
  Dev<double> x(n), y(n);
  x.set(std::vector<double>(n, 1.0));
  y.set(std::vector<double>(n, 0.0));
  saxpy(1.0, x.p, y.p, n, 1, 256);  // warm the stack pool
  emu::reset_stats();
  saxpy(1.0, x.p, y.p, n, 4, 256);
  emu::Stats s = emu::stats();
  CHECK(s.launches == 1);
  CHECK(s.blocks == 4);
  CHECK(s.threads == 1024);
  CHECK(s.switches == 2 * 1024);  // into each thread once and back: it runs to the end
  CHECK(s.stacks_mapped == 0);    // one pooled stack serves them all
  CHECK(s.barriers == 0);

  std::vector<float> xs = small_ints<float>(256);
  Dev<float> dx(xs), out(1);
  emu::reset_stats();
  block_sum(dx.p, out.p, 256, 1, 256);  // 1 + log2(256) = 9 barriers
  s = emu::stats();
  CHECK(s.barriers == 9);
  CHECK(s.switches == 2 * 256 * 10);
}

// ================================================================ broken kernels are caught

TEST_CASE("emulator catches: a missing __syncthreads (poison in one order, right in another)") {
  int threads = 256;
  std::vector<float> x = small_ints<float>(threads);
  float expect = 0;
  for (float v : x) expect += v;
  Dev<float> dx(x), out(1);
  std::vector<float> results;
  for (const emu::Options& o : emu::standard_orders(without_racecheck())) {
    emu::ScopedOptions scoped(o);
    missing_sync_sum(dx.p, out.p, threads);
    results.push_back(out.get()[0]);
  }
  CHECK(std::isnan(results[0]));      // forward: thread 0 adds s[128] before thread 128 stored it
  CHECK(results[1] == expect);        // reverse: every store happens first, the race is hidden
  bool all_right = true;
  for (float r : results) all_right = all_right && r == expect;
  CHECK_FALSE(all_right);             // so a parity test over the orders fails
}

TEST_CASE("emulator catches: a stale shared-memory read (the orders disagree)") {
  int threads = 64;
  std::vector<float> x = small_ints<float>(threads);
  Dev<float> dx(x), y(threads);
  std::vector<std::vector<float>> results;
  for (const emu::Options& o : emu::standard_orders(without_racecheck())) {
    emu::ScopedOptions scoped(o);
    stale_shared(dx.p, y.p, threads);
    results.push_back(y.get());
  }
  std::vector<float> expect(threads);
  for (int t = 0; t < threads; ++t) expect[t] = 2 * x[(t + 1) % threads];
  CHECK(results[0] != results[1]);
  CHECK((results[0] != expect || results[1] != expect || results[2] != expect));
}

TEST_CASE("emulator catches: warp-synchronous code without __syncwarp") {
  std::vector<float> x = small_ints<float>(32);
  Dev<float> dx(x), out(1);
  std::vector<float> results;
  for (const emu::Options& o : emu::standard_orders(without_racecheck())) {
    emu::ScopedOptions scoped(o);
    implicit_warp_sync(dx.p, out.p);
    results.push_back(out.get()[0]);
  }
  CHECK(results[0] != results[1]);
}

TEST_CASE("emulator catches: a barrier not reached by every thread") {
  Dev<float> y(256), x(256);
  x.set(small_ints<float>(256));
  for_each_order([&] {
    test::check_error([&] { divergent_barrier_exit(y.p); },
                      "kernel divergent_barrier_exit_kernel, block (0, 0, 0): __syncthreads() at ");
    test::check_error([&] { divergent_barrier_exit(y.p); },
                      "threads 0-15 wait there, threads 16-31 exited without reaching it");
    test::check_error([&] { divergent_barrier_branches(y.p); }, "wait at different barriers");
    test::check_error([&] { early_return_barrier(x.p, y.p, 100, 128); },
                      "threads 0-99 wait there, threads 100-127 exited");
  });
  // Many blocks, on the thread pool too: the first error stops the launch.
  for_each_order([&] {
    test::check_error([&] { divergent_barrier_exit(y.p, 64); }, "is not reached by every thread");
  });
  // The emulator is usable again after an abandoned block.
  std::vector<float> xs = small_ints<float>(256);
  Dev<float> dx(xs), out(1);
  block_sum(dx.p, out.p, 256, 1, 256);
  float s = 0;
  for (float v : xs) s += v;
  CHECK(out.get()[0] == s);
}

TEST_CASE("emulator catches: wrong warp-collective masks") {
  Dev<float> y(32);
  for_each_order([&] {
    test::check_error([&] { shuffle_mask_without_caller(y.p); },
                      "calls it with mask 0x0000ffff, which does not include the calling lane");
    test::check_error([&] { shuffle_lane_never_arrives(y.p); },
                      "lanes 0-15 of warp 0 wait for lanes 16-31, named in the mask, which never arrive");
    test::check_error([&] { shuffle_lanes_disagree(y.p); }, "disagree at a warp collective");
  });
}

TEST_CASE("emulator catches: reads of shared memory no thread wrote (poison)") {
  std::vector<float> x = small_ints<float>(64);
  Dev<float> dx(x), y(64);
  Dev<int> yi(64);
  for_each_order([&] {
    unwritten_shared_float(dx.p, y.p);
    std::vector<float> got = y.get();
    for (int t = 0; t < 63; ++t) CHECK(got[t] == x[t]);
    CHECK(std::isnan(got[63]));
    unwritten_shared_int(yi.p);
    std::vector<int> goti = yi.get();
    CHECK(goti[10] == -1);
    CHECK(goti[11] == 11);
  });
}

TEST_CASE("emulator catches: shuffles reading lanes that do not exist (poison)") {
  std::vector<float> x = small_ints<float>(48);
  Dev<float> dx(x), out(2);
  for_each_order([&] {
    partial_warp_full_mask(dx.p, out.p);
    std::vector<float> got = out.get();
    float s0 = 0;
    for (int t = 0; t < 32; ++t) s0 += x[t];
    CHECK(got[0] == s0);           // a full warp: correct
    CHECK(std::isnan(got[1]));     // lanes 16-31 of warp 1 do not exist
  });
}

// ---- races: builds with -DAFT_EMU_RACECHECK=ON

TEST_CASE("emulator catches: races between the threads of a block" * doctest::skip(!emu::has_racecheck())) {
  const int threads = 256;
  std::vector<float> x = small_ints<float>(threads);
  float sum = 0;
  for (float v : x) sum += v;
  Dev<float> dx(x), y(threads), out(1);
  Dev<int> count(1);
  for_each_order([&] {
    // A missing barrier: caught in every order, not only where it changes the result.
    test::check_error([&] { missing_sync_sum(dx.p, out.p, threads); },
                      "kernel missing_sync_sum_kernel, block (0, 0, 0): race on shared memory: byte ");
    test::check_error([&] { stale_shared(dx.p, y.p, 64); }, "race on shared memory: byte ");
    test::check_error([&] { implicit_warp_sync(dx.p, out.p); },
                      "with no barrier or __syncwarp() between them");
    // Lost updates, which no order shows: every thread adds 1 to a shared counter, or every
    // thread adds to y[0], without an atomic.
    test::check_error([&] { shared_counter(count.p, false, 64); },
                      "race on shared memory: byte 0 of count (4 bytes)");
    test::check_error([&] { global_accumulate(dx.p, out.p, false, 64); }, "race on global memory at 0x");
    // The correct twins.
    shared_counter(count.p, true, 64);
    CHECK(count.get()[0] == 64);
    out.set({0.0f});
    global_accumulate(dx.p, out.p, true, threads);
    CHECK(out.get()[0] == sum);
    warp_smem_sum(dx.p, out.p);  // ordered by __syncwarp
    block_sum(dx.p, out.p, threads, 1, threads);
    CHECK(out.get()[0] == sum);
  });
  // What the message says (forward order: thread 0 reads s[128], then thread 128 writes it).
  emu::Options o = emu::options();
  o.parallel = false;
  emu::ScopedOptions scoped(o);
  for (const char* part :
       {"race on shared memory: byte 512 of s (4096 bytes) at 0x", "thread 128 (warp 4, lane 0) writes it at ",
        "and thread 0 (warp 0, lane 0) read it at ", "since the block started with no barrier between them",
        "[thread order forward; set AFT_EMU_ORDER=forward to reproduce]"})
    test::check_error([&] { missing_sync_sum(dx.p, out.p, threads); }, part);
  test::check_error([&] { stale_shared(dx.p, y.p, 64); }, "(barrier phase 1)");
  test::check_error([&] { global_accumulate(dx.p, out.p, false, 64); },
                    "thread 1 (warp 0, lane 1) reads it at ");
  // The emulator is usable after a stopped thread.
  block_sum(dx.p, out.p, threads, 1, threads);
  CHECK(out.get()[0] == sum);
}

TEST_CASE("emulator: the race checker is an option of the builds that have it") {
  Dev<int> count(1);
  emu::Options o = emu::options();
  o.racecheck = !emu::has_racecheck();
  emu::ScopedOptions scoped(o);
  if (emu::has_racecheck()) {
    shared_counter(count.p, false, 64);  // the race goes unseen
    CHECK(count.get()[0] == 64);
  } else {
    test::check_error([&] { shared_counter(count.p, false, 64); },
                      "the race checker is not in this build (configure with -DAFT_EMU_RACECHECK=ON)");
  }
}

// ---- out-of-bounds accesses: AddressSanitizer reports them in a child process

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

namespace {
// Runs this binary's test case `name` (marked skip) in a child; returns its exit status and
// sets `err` to what it printed.
int run_child(const std::string& name, std::string* err) {
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
}  // namespace

TEST_CASE("emulator child: off-by-one global read" * doctest::skip()) {
  Dev<float> x(100), y(100);
  x.set(std::vector<float>(100, 1.0f));
  oob_global_read(x.p, y.p, 100);
}

TEST_CASE("emulator child: shared-memory overrun" * doctest::skip()) {
  Dev<float> y(32);
  oob_shared_write(y.p);
}

TEST_CASE("emulator catches: out-of-bounds global and shared accesses (AddressSanitizer)" *
          doctest::skip(!kAsan)) {
  std::string err;
  int status = run_child("emulator child: off-by-one global read", &err);
  CHECK_FALSE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK_MESSAGE(err.find("heap-buffer-overflow") != std::string::npos, err);
  CHECK_MESSAGE(err.find("READ of size 4") != std::string::npos, err);
  CHECK_MESSAGE(err.find("oob_global_read_kernel") != std::string::npos, err);
  CHECK_MESSAGE(err.find("emu_broken_kernels.cu") != std::string::npos, err);

  // AFT_SHARED declares a true array, so UBSan's bounds check (on in the same build) reports the
  // overrun first; without it, ASan would: the array is a 128-byte heap block.
  status = run_child("emulator child: shared-memory overrun", &err);
  CHECK_FALSE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  bool ubsan = err.find("index 32 out of bounds for type 'float [32]'") != std::string::npos;
  bool asan = err.find("heap-buffer-overflow") != std::string::npos &&
              err.find("0 bytes to the right of 128-byte region") != std::string::npos &&
              err.find("oob_shared_write_kernel") != std::string::npos;
  CHECK_MESSAGE((ubsan || asan), err);
  CHECK_MESSAGE(err.find("emu_broken_kernels.cu") != std::string::npos, err);
}

// ---- misaligned accesses: the .cu files are compiled with UBSan's alignment check, whose
// handler is the emulator's (an aft::Error) except under AddressSanitizer (libubsan's report)

namespace {
// x: 4 * threads + 4 ones, so that a float4 at x + 1 + 4t is still inside.
void misaligned_runs(int offset_floats, int offset_doubles) {
  const int threads = 64;
  Dev<float> x(std::vector<float>(4 * threads + 4, 1.0f)), y(threads);
  Dev<double> d(2 * threads + 2);
  misaligned_float4_load(x.p, y.p, offset_floats, threads);
  misaligned_double2_store(d.p, offset_doubles, threads);
  std::vector<float> got = y.get();
  std::vector<double> gotd = d.get();
  for (int t = 0; t < threads; ++t) {
    CHECK(got[t] == 4.0f);
    CHECK(gotd[offset_doubles + 2 * t] == t);
  }
}
}  // namespace

TEST_CASE("emulator catches: misaligned vector loads and stores" * doctest::skip(kAsan)) {
  for_each_order([&] {
    misaligned_runs(0, 0);  // the aligned twins are not flagged
    misaligned_runs(4, 2);
    test::check_error([&] { misaligned_runs(1, 0); },
                      "kernel misaligned_float4_load_kernel, block (0, 0, 0): thread ");
    test::check_error([&] { misaligned_runs(2, 0); },
                      "'const struct float4' at emu_broken_kernels.cu:");
    test::check_error([&] { misaligned_runs(0, 1); },
                      "kernel misaligned_double2_store_kernel, block (0, 0, 0): thread ");
    test::check_error([&] { misaligned_runs(0, 1); }, "which needs 16-byte alignment");
  });
  emu::Options o = emu::options();
  o.thread_order = emu::Order::Reverse;
  emu::ScopedOptions scoped(o);
  test::check_error([&] { misaligned_runs(1, 0); }, "thread 63 (warp 1, lane 31): misaligned address 0x");
}

TEST_CASE("emulator child: misaligned float4 load" * doctest::skip()) { misaligned_runs(1, 0); }

TEST_CASE("emulator catches: misaligned vector loads (UBSan, under AddressSanitizer)" * doctest::skip(!kAsan)) {
  std::string err;
  int status = run_child("emulator child: misaligned float4 load", &err);
  CHECK_FALSE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK_MESSAGE(err.find("misaligned address") != std::string::npos, err);
  CHECK_MESSAGE(err.find("float4") != std::string::npos, err);
  CHECK_MESSAGE(err.find("emu_broken_kernels.cu") != std::string::npos, err);
  CHECK_MESSAGE(err.find("cuda emulator: the error above is in kernel misaligned_float4_load_kernel, "
                         "block (0, 0, 0), thread 0 (warp 0, lane 0)") != std::string::npos, err);
}

// ================================================================ cost of a barrier

namespace {
// Ten rounds of "publish, barrier, read the neighbour's", double-buffered so that one barrier
// a round suffices.
__global__ void ten_barriers_kernel(float* y) {
  AFT_SHARED(float, s, 2 * 1024);
  unsigned t = threadIdx.x, n = blockDim.x;
  float v = static_cast<float>(t);
  for (unsigned k = 0; k < 10; ++k) {
    s[k % 2 * n + t] = v;
    __syncthreads();
    v += s[k % 2 * n + (t + 1) % n];
  }
  y[t] = v;
}
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

TEST_CASE("emulator benchmark: a 256-thread block with 10 barriers" * doctest::skip()) {
  const int threads = 256, reps = 200;
  Dev<float> y(threads);
  for (bool assembly : {true, false}) {
    emu::Options o = emu::options();
    o.parallel = false;
    o.assembly_fibers = assembly;
    emu::ScopedOptions scoped(o);
    AFT_LAUNCH(ten_barriers_kernel, 1, threads, 0, y.p);  // warm the stack pool
    emu::reset_stats();
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) AFT_LAUNCH(ten_barriers_kernel, 1, threads, 0, y.p);
    double s = seconds_since(t0);
    emu::Stats st = emu::stats();
    MESSAGE((assembly ? "fibers, x86-64 switch: " : "fibers, swapcontext:   "), s / reps * 1e6,
            " us per block (", st.switches / reps, " switches: ", s / double(st.switches) * 1e9,
            " ns per switch, scheduling and kernel included)");
  }
  // The alternative: one OS thread per GPU thread, a std::barrier for __syncthreads. The 256
  // threads are created once and run all the repetitions, so only the barriers are timed.
  {
    std::vector<float> s(2 * threads), out(threads);
    std::barrier bar(threads);
    std::vector<std::thread> pool;
    auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (int r = 0; r < reps; ++r) {
          float v = float(t);
          for (int k = 0; k < 10; ++k) {
            s[k % 2 * threads + t] = v;
            bar.arrive_and_wait();
            v += s[k % 2 * threads + (t + 1) % threads];
          }
          out[t] = v;
        }
      });
    for (auto& th : pool) th.join();
    MESSAGE("OS threads + std::barrier: ", seconds_since(t0) / reps * 1e6, " us per block");
  }
}

#endif  // AFT_CUDA_EMULATE
