// tests/cuda/test_emulator.cpp: the SIMT emulator (cuda/emu/) itself, in EMULATE builds only.
//
//   - correct kernels (tests/cuda/emu_kernels.cu) give the plain loops' answers under every
//     thread and block order, serial and on the thread pool, with both fiber switches;
//   - each deliberately broken kernel is caught: tests/cuda/test_emulator_catches.cpp;
//   - the real kernels of cuda/*.cu run through tensors;
//   - options, launch checks, and the cost of barriers (a benchmark, skipped by default:
//     test_emulator -tc="emulator benchmark*" --no-skip).
// In other builds the binary exits with 77 (ctest: skipped).
#include "tests/cuda/emu_test_util.h"

#if AFT_CUDA_EMULATE

#include <barrier>
#include <chrono>
#include <cmath>
#include <thread>

using namespace aft;
using namespace aft::emu_test;

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