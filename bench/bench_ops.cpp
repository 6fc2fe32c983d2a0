// bench/bench_ops.cpp: what elementwise ops and the autograd tape cost on the CPU.
//
// (1) Throughput of add, mul, exp, sigmoid, gelu on contiguous float32 tensors of 1M..64M
//     elements, in GB/s = (bytes read + bytes written) / time, each op allocating its output as
//     in real use. Next to it, measured in the same run with the same threads: a parallel
//     memcpy of the same number of bytes into a buffer already touched (the bandwidth limit),
//     and into a freshly allocated one (what the limit becomes when every result is new memory
//     that the kernel faults in page by page).
// (2) The fixed cost of one small op: add of two [16] tensors without grad, with grad (forward:
//     the op plus its tape record), and forward+backward (a chain of adds, then backward from
//     its end), in microseconds per op; and a breakdown of the no-grad and tape costs.
// (3) sum of a [4096, 4096] tensor over rows, over columns and over everything (GB/s).
// Every figure is the median of several timed runs after a warm-up run.
//
// --torch runs bench/torch_ops.py (PyTorch, same thread count) afterwards and prints both
// side by side; the two never run at the same time. Usage:
//   bench_ops [--threads N] [--sizes 1,4,16,64] [--reps R] [--torch] [--python PATH]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include "aft.h"
#include "bench_common.h"

using namespace aft;

using aft_bench::cpu_model;
using aft_bench::median;

namespace {

using Clock = std::chrono::steady_clock;

// Median seconds of one call of f over `reps` timed calls, after one warm-up call.
template <class F>
double median_seconds(int reps, F&& f) {
  f();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median(t);
}

// Median microseconds per call of f, timing batches of `per_batch` calls.
template <class F>
double micros_per_call(int batches, int per_batch, F&& f) {
  for (int i = 0; i < per_batch; ++i) f();  // warm-up
  std::vector<double> t;
  for (int b = 0; b < batches; ++b) {
    auto t0 = Clock::now();
    for (int i = 0; i < per_batch; ++i) f();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count() * 1e6 / per_batch);
  }
  return median(t);
}

// Minor page faults of this process so far (first touches of fresh memory).
long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// dst = src, n bytes, split over the pool's threads like an elementwise kernel.
void parallel_memcpy(char* dst, const char* src, int64_t n) {
  parallel_for(0, n, 32768 * 4, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + b, e - b); });
}

struct Options {
  int threads = 0;
  std::vector<int64_t> sizes_m = {1, 4, 16, 64};  // millions (2^20) of elements
  int reps = 0;                                    // 0: chosen per size
  bool torch = false;
  std::string python = "/usr/bin/python3";
  std::string script;
};

// Results keyed like the lines torch_ops.py prints: "ew <op> <n>" (seconds) and
// "overhead <what>" (microseconds).
using Results = std::map<std::string, double>;

void bench_elementwise(const Options& o, Results& res) {
  std::printf("\n(1) elementwise throughput, float32, contiguous; GB/s = (bytes read + written) / time\n");
  std::printf("%9s  %8s %8s %8s %8s %8s   %10s %12s\n", "elements", "add", "mul", "exp", "sigmoid",
              "gelu", "memcpy", "memcpy(new)");
  Generator gen(1);
  for (int64_t m : o.sizes_m) {
    const int64_t n = m << 20;
    const int reps = o.reps > 0 ? o.reps : (m <= 4 ? 15 : m <= 16 ? 9 : 5);
    Tensor a = randn({n}, kFloat32, &gen), b = randn({n}, kFloat32, &gen);
    autograd::NoGradGuard ng;
    struct Op {
      const char* name;
      int tensors_moved;  // inputs read + output written, in tensors of n floats
      std::function<Tensor()> run;
    };
    std::vector<Op> ops = {
        {"add", 3, [&] { return add(a, b); }},        {"mul", 3, [&] { return mul(a, b); }},
        {"exp", 2, [&] { return exp(a); }},           {"sigmoid", 2, [&] { return sigmoid(a); }},
        {"gelu", 2, [&] { return gelu(a); }},
    };
    std::printf("%8lldM ", static_cast<long long>(m));
    // Page faults per call of each op (first touches of new output pages: 1024 per 4 MiB).
    std::vector<double> faults;
    for (const Op& op : ops) {
      long f0 = minor_faults();
      double s = median_seconds(reps, [&] { Tensor y = op.run(); });
      faults.push_back(static_cast<double>(minor_faults() - f0) / (reps + 1));
      res[fmt::format("ew {} {}", op.name, n)] = s;
      std::printf(" %8.2f", op.tensors_moved * 4.0 * n / s * 1e-9);
    }
    // memcpy of n floats moves 8n bytes (read + write): the same traffic per output element as
    // a unary op. Into a warm buffer, then into a new one each time (page faults included).
    Tensor dst = empty({n}, kFloat32);
    parallel_memcpy(static_cast<char*>(dst.raw_data()), static_cast<const char*>(a.raw_data()), 4 * n);
    double sc = median_seconds(reps, [&] {
      parallel_memcpy(static_cast<char*>(dst.raw_data()), static_cast<const char*>(a.raw_data()), 4 * n);
    });
    double sn = median_seconds(reps, [&] {
      Tensor d = empty({n}, kFloat32);
      parallel_memcpy(static_cast<char*>(d.raw_data()), static_cast<const char*>(a.raw_data()), 4 * n);
    });
    res[fmt::format("ew memcpy {}", n)] = sc;
    res[fmt::format("ew memcpy_new {}", n)] = sn;
    std::printf("   %10.2f %12.2f\n", 8.0 * n / sc * 1e-9, 8.0 * n / sn * 1e-9);
    std::printf("%9s ", "faults");
    for (double f : faults) std::printf(" %8.0f", f);
    std::printf("   (page faults per call; the output has %lld pages)\n", static_cast<long long>(4 * n / 4096));
    std::fflush(stdout);
  }
}

void bench_overhead(Results& res) {
  std::printf("\n(2) fixed cost of one small op: add of two [16] float32 tensors, microseconds per op\n");
  const int batches = 31, per = 2000;
  Tensor a = randn({16}), b = randn({16});
  double nograd = micros_per_call(batches, per, [&] { Tensor y = add(a, b); });

  Tensor ag = a.detach().requires_grad_();
  double fwd = micros_per_call(batches, per, [&] { Tensor y = add(ag, b); });
  autograd::clear_tape();

  // Chain of K adds (a needs grad, b a constant), then backward from the end: per op, the
  // forward with its record plus the backward step (closure call, gradient hand-over).
  const int K = 100;
  Tensor seed = ones({16});
  double chain = micros_per_call(batches, 20, [&] {
    Tensor x = ag;
    for (int k = 0; k < K; ++k) x = add(x, b);
    x.backward(seed);
    ag.zero_grad();
  }) / K;

  // Same with grad for mul (saves an input) and exp (saves its output).
  double mul_fwd = micros_per_call(batches, per, [&] { Tensor y = mul(ag, b); });
  double exp_fwd = micros_per_call(batches, per, [&] { Tensor y = exp(ag); });
  double exp_nograd = micros_per_call(batches, per, [&] { Tensor y = exp(a); });
  autograd::clear_tape();

  res["overhead add_nograd"] = nograd;
  res["overhead add_grad_fwd"] = fwd;
  res["overhead add_fwd_bwd"] = chain;
  res["overhead exp_nograd"] = exp_nograd;
  res["overhead exp_grad_fwd"] = exp_fwd;
  res["overhead mul_grad_fwd"] = mul_fwd;
  std::printf("  add, no grad                       %7.3f\n", nograd);
  std::printf("  add, requires grad, forward        %7.3f\n", fwd);
  std::printf("  add, forward + backward (chain)    %7.3f\n", chain);
  std::printf("  mul, requires grad, forward        %7.3f\n", mul_fwd);
  std::printf("  exp, no grad / requires grad fwd   %7.3f / %.3f\n", exp_nograd, exp_fwd);

  // Breakdown: what the no-grad op is made of, and what recording costs.
  double alloc = micros_per_call(batches, per, [&] { Tensor y = empty({16}); });
  std::function<void(int64_t, int64_t)> nop = [](int64_t, int64_t) {};
  double pfor = micros_per_call(batches, per, [&] { parallel_for(0, 16, 32768, nop); });
  double bshape = micros_per_call(batches, per, [&] {
    Shape s = broadcast_shapes(a.shape(), b.shape(), "add");
    asm volatile("" : : "r"(&s) : "memory");
  });
  Tensor out = empty({16});
  double rec = micros_per_call(batches, per, [&] {
    Tensor y = as_strided(out, out.shape(), out.strides(), 0);  // an output without autograd meta
    autograd::record("bench", {ag}, {y}, [](const autograd::TensorList& g) { return g; });
  });
  autograd::clear_tape();
  double detach = micros_per_call(batches, per, [&] { Tensor d = ag.detach(); });
  res["overhead empty16"] = alloc;
  res["overhead record"] = rec;
  std::printf("  breakdown: empty({16}) alloc+free      %7.3f\n", alloc);
  std::printf("             broadcast_shapes            %7.3f\n", bshape);
  std::printf("             parallel_for (inline)       %7.3f\n", pfor);
  std::printf("             as_strided + record + node drop %7.3f\n", rec);
  std::printf("             detach (a SavedTensor)      %7.3f\n", detach);
  std::printf("  tape after the runs: %zu nodes\n", autograd::tape_size());
}

// (3) Reductions of a [4096, 4096] float32 tensor: over rows (contiguous runs), over columns
// (what sum_to does for a bias gradient) and over everything; GB/s of the tensor read.
void bench_reduce(Results& res) {
  std::printf("\n(3) sum of a [4096, 4096] float32 tensor, GB/s read\n");
  Generator gen(2);
  Tensor x = randn({4096, 4096}, kFloat32, &gen);
  autograd::NoGradGuard ng;
  const double bytes = 4.0 * x.numel();
  const std::pair<const char*, std::vector<int64_t>> cases[] = {{"rows", {1}}, {"columns", {0}}, {"all", {}}};
  for (const auto& [name, dims] : cases) {
    double s = median_seconds(7, [&] { Tensor y = sum(x, dims); });
    res[fmt::format("red {}", name)] = s;
    std::printf("  sum over %-8s %8.2f\n", name, bytes / s * 1e-9);
  }
}

// Runs torch_ops.py and reads its "key value" lines.
Results run_torch(const Options& o) {
  Results r;
  std::string sizes;
  for (int64_t m : o.sizes_m) {
    if (!sizes.empty()) sizes += ',';
    sizes += std::to_string(m);
  }
  std::string cmd = fmt::format("env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE {} {} --threads {} --sizes {}{}",
                                o.python, o.script, o.threads, sizes,
                                o.reps > 0 ? fmt::format(" --reps {}", o.reps) : "");
  std::printf("\nrunning: %s\n", cmd.c_str());
  std::fflush(stdout);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    std::printf("  could not run PyTorch\n");
    return r;
  }
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string line(buf);
    if (line.rfind("info ", 0) == 0) {
      std::printf("  torch %s", line.c_str() + 5);
      continue;
    }
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    r[line.substr(0, sp)] = std::atof(line.c_str() + sp + 1);
  }
  int rc = pclose(p);
  if (rc != 0) std::printf("  PyTorch script exited with status %d\n", rc);
  return r;
}

void print_side_by_side(const Options& o, const Results& ours, const Results& torch) {
  std::printf("\nside by side (aft | PyTorch), %d threads\n", o.threads);
  std::printf("  elementwise GB/s:\n  %9s", "elements");
  const char* ops[] = {"add", "mul", "exp", "sigmoid", "gelu"};
  const int moved[] = {3, 3, 2, 2, 2};
  for (const char* op : ops) std::printf(" %15s", op);
  std::printf("\n");
  for (int64_t m : o.sizes_m) {
    int64_t n = m << 20;
    std::printf("  %8lldM", static_cast<long long>(m));
    for (int i = 0; i < 5; ++i) {
      std::string k = fmt::format("ew {} {}", ops[i], n);
      auto gbs = [&](const Results& r) {
        auto it = r.find(k);
        return it == r.end() ? NAN : moved[i] * 4.0 * n / it->second * 1e-9;
      };
      std::printf(" %7.2f|%-7.2f", gbs(ours), gbs(torch));
    }
    std::printf("\n");
  }
  std::printf("  sum of [4096, 4096], GB/s:\n");
  for (const char* k : {"rows", "columns", "all"}) {
    std::string key = std::string("red ") + k;
    auto gbs = [&](const Results& r) {
      auto it = r.find(key);
      return it == r.end() ? NAN : 4.0 * 4096 * 4096 / it->second * 1e-9;
    };
    std::printf("  %-14s %8.2f | %-8.2f\n", k, gbs(ours), gbs(torch));
  }
  std::printf("  fixed cost, microseconds per op:\n");
  for (const char* k : {"add_nograd", "add_grad_fwd", "add_fwd_bwd", "mul_grad_fwd", "exp_nograd", "exp_grad_fwd",
                        "python_call"}) {
    std::string key = std::string("overhead ") + k;
    auto get = [&](const Results& r) {
      auto it = r.find(key);
      return it == r.end() ? NAN : it->second;
    };
    std::printf("  %-14s %8.3f | %-8.3f\n", k, get(ours), get(torch));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  // torch_ops.py sits beside this source file.
  std::string here = __FILE__;
  o.script = here.substr(0, here.rfind('/') + 1) + "torch_ops.py";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") o.threads = std::atoi(next().c_str());
    else if (a == "--reps") o.reps = std::atoi(next().c_str());
    else if (a == "--torch") o.torch = true;
    else if (a == "--python") o.python = next();
    else if (a == "--script") o.script = next();
    else if (a == "--sizes") {
      o.sizes_m.clear();
      std::stringstream ss(next());
      std::string t;
      while (std::getline(ss, t, ',')) o.sizes_m.push_back(std::atoll(t.c_str()));
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--sizes 1,4,16,64] [--reps R] [--torch] [--python PATH] [--script PATH]\n", argv[0]);
      return 2;
    }
  }
  if (o.threads > 0) set_num_threads(o.threads);
  o.threads = num_threads();
  std::printf("bench_ops: %s, %d threads (aft pool), hardware threads %u\n", cpu_model().c_str(),
              o.threads, std::thread::hardware_concurrency());
  Results ours;
  bench_elementwise(o, ours);
  bench_overhead(ours);
  bench_reduce(ours);
  if (o.torch) print_side_by_side(o, ours, run_torch(o));
  return 0;
}
