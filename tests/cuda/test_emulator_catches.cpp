// tests/cuda/test_emulator_catches.cpp: each deliberately broken kernel of
// tests/cuda/emu_broken_kernels.cu is caught by the SIMT emulator: an aft::Error naming the kernel,
// block and threads (barriers, warp collectives, misaligned accesses, races in race-check
// builds), NaN poison in the result, orders that disagree, or (in the AddressSanitizer build)
// a sanitizer report from a child process; and the correct twins are not flagged.
// In builds without the emulator the binary exits with 77 (ctest: skipped).
#include "tests/cuda/emu_test_util.h"

#if AFT_CUDA_EMULATE

#include <cmath>

using namespace aft;
using namespace aft::emu_test;

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

#endif  // AFT_CUDA_EMULATE
