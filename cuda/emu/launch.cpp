// cuda/emu/launch.cpp: a launch of the SIMT emulator: checks the configuration as the CUDA
// runtime does, then runs the grid's blocks (cuda/emu/scheduler.cpp) in the chosen order, on
// aft's thread pool or one after another. Also the Options (and their environment variables)
// and the Stats.
//
// Blocks of a launch never wait for each other on a GPU and may run in any order; the emulator
// runs each block to completion before the next on the same OS thread. With Options::parallel
// the grid is split into one contiguous range of the block order per pool thread, so blocks
// run concurrently and the kernel's atomics are real atomics (cuda/emu/intrinsics.h); the order
// of float atomics then varies from run to run, as on a GPU.
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <mutex>

#include "core/error.h"
#include "core/parallel.h"
#include "cuda/emu/checks.h"

namespace aft::cuda::emu {

// ---------------------------------------------------------------- options

namespace {

std::mutex g_options_mu;
bool g_options_set = false;
Options g_options;

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && *v != '0';
}

Order parse_one(std::string_view text, uint64_t* seed, std::string_view whole) {
  if (text == "forward") return Order::Forward;
  if (text == "reverse") return Order::Reverse;
  if (text == "shuffle") return Order::Shuffle;
  if (text.starts_with("shuffle:")) {
    std::string_view digits = text.substr(8);
    uint64_t s = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), s);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) {
      *seed = s;
      return Order::Shuffle;
    }
  }
  AFT_ERROR("cuda emulator: order '{}' is not <order>[/<block order>] with each forward, reverse, "
            "shuffle or shuffle:<seed>", whole);
}

const char* order_name(Order o) {
  return o == Order::Forward ? "forward" : o == Order::Reverse ? "reverse" : "shuffle";
}

Options from_environment() {
  Options o;
  if (const char* order = std::getenv("AFT_EMU_ORDER")) o = parse_order(order, o);
  o.parallel = !env_flag("AFT_EMU_SERIAL");
  if (const char* f = std::getenv("AFT_EMU_FIBERS")) {
    std::string_view v = f;
    AFT_CHECK(v == "asm" || v == "ucontext", "cuda emulator: AFT_EMU_FIBERS='{}' is not asm or ucontext", v);
    o.assembly_fibers = v == "asm";
  }
  if (const char* kb = std::getenv("AFT_EMU_STACK_KB")) {
    long n = std::atol(kb);
    AFT_CHECK(n >= 16 && n <= 65536, "cuda emulator: AFT_EMU_STACK_KB='{}' is not 16..65536", kb);
    o.stack_bytes = static_cast<size_t>(n) * 1024;
  }
  o.racecheck = detail::racecheck_built();
  if (std::getenv("AFT_EMU_RACECHECK")) o.racecheck = env_flag("AFT_EMU_RACECHECK");
  return o;
}

}  // namespace

Options options() {
  std::lock_guard lock(g_options_mu);
  if (!g_options_set) {
    g_options = from_environment();
    g_options_set = true;
  }
  return g_options;
}

void set_options(const Options& o) {
  std::lock_guard lock(g_options_mu);
  g_options = o;
  g_options_set = true;
}

Options parse_order(std::string_view text, Options o) {
  size_t slash = text.find('/');
  std::string_view threads = text.substr(0, slash);
  o.thread_order = parse_one(threads, &o.seed, text);
  o.block_order = slash == std::string_view::npos ? o.thread_order
                                                  : parse_one(text.substr(slash + 1), &o.seed, text);
  return o;
}

std::string describe_order(const Options& o) {
  auto one = [&](Order x) {
    return x == Order::Shuffle ? fmt::format("shuffle:{}", o.seed) : std::string(order_name(x));
  };
  std::string s = one(o.thread_order);
  if (o.block_order != o.thread_order) s += fmt::format("/{}", one(o.block_order));
  return s;
}

std::vector<Options> standard_orders(Options base) {
  std::vector<Options> v;
  for (Order order : {Order::Forward, Order::Reverse, Order::Shuffle}) {
    Options o = base;
    o.thread_order = o.block_order = order;
    v.push_back(o);
  }
  return v;
}

// ---------------------------------------------------------------- stats

namespace {
std::atomic<uint64_t> g_launches{0}, g_blocks{0}, g_threads{0}, g_switches{0}, g_barriers{0},
    g_collectives{0}, g_stacks{0};
}  // namespace

Stats stats() {
  Stats s;
  s.launches = g_launches.load();
  s.blocks = g_blocks.load();
  s.threads = g_threads.load();
  s.switches = g_switches.load();
  s.barriers = g_barriers.load();
  s.collectives = g_collectives.load();
  s.stacks_mapped = g_stacks.load();
  return s;
}

void reset_stats() {
  for (auto* c : {&g_launches, &g_blocks, &g_threads, &g_switches, &g_barriers, &g_collectives, &g_stacks})
    c->store(0);
}

bool has_racecheck() { return detail::racecheck_built(); }

namespace detail {

void add_stats(const Stats& s) {
  g_launches += s.launches;
  g_blocks += s.blocks;
  g_threads += s.threads;
  g_switches += s.switches;
  g_barriers += s.barriers;
  g_collectives += s.collectives;
  g_stacks += s.stacks_mapped;
}

// ---------------------------------------------------------------- diagnostics

const char* collective_name(Collective k) {
  static const char* names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync",
                                "__shfl_xor_sync", "__ballot_sync", "__any_sync", "__all_sync",
                                "__syncwarp", "__reduce_add_sync", "__reduce_min_sync",
                                "__reduce_min_sync", "__reduce_max_sync", "__reduce_max_sync",
                                "__reduce_and_sync", "__reduce_or_sync", "__reduce_xor_sync"};
  return names[static_cast<int>(k)];
}
const char* barrier_name(BarrierKind k) {
  static const char* names[] = {"__syncthreads()", "__syncthreads_count()", "__syncthreads_and()",
                                "__syncthreads_or()"};
  return names[static_cast<int>(k)];
}

std::string where_str(const std::source_location& w) {
  return fmt::format("{}:{}", w.file_name(), w.line());
}

std::string ranges(const std::vector<unsigned>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!s.empty()) s += ", ";
    s += j == i ? fmt::format("{}", ids[i]) : fmt::format("{}-{}", ids[i], ids[j]);
    i = j + 1;
  }
  return s;
}

// ---------------------------------------------------------------- orders

uint64_t mix_seed(uint64_t a, uint64_t b) {  // SplitMix64's finaliser on a combination
  uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void make_order(std::vector<uint32_t>& out, uint32_t n, Order order, uint64_t seed) {
  out.resize(n);
  for (uint32_t i = 0; i < n; ++i) out[i] = order == Order::Reverse ? n - 1 - i : i;
  if (order != Order::Shuffle) return;
  for (uint32_t i = n; i > 1; --i) {  // Fisher-Yates with a counter-based generator
    seed = mix_seed(seed, i);
    std::swap(out[i - 1], out[seed % i]);
  }
}

// ---------------------------------------------------------------- the launch

namespace {
size_t default_stack_bytes() {
#if defined(__SANITIZE_ADDRESS__)
  return 256 * 1024;  // ASan's redzones make frames several times larger
#else
  return 64 * 1024;
#endif
}
}  // namespace

void run_grid(const char* name, dim3 grid, dim3 block, size_t shmem, void (*body)(const void*),
              const void* closure, size_t closure_bytes) {
  AFT_CHECK(t_view == nullptr, "cuda emulator: kernel {} launched from inside a kernel (dynamic "
            "parallelism is not supported)", name);
  // The limits of the CUDA runtime (compute capability 7.0 to 9.0).
  uint64_t threads = uint64_t(block.x) * block.y * block.z;
  AFT_CHECK(block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024 && block.y <= 1024 &&
                block.z <= 64 && threads <= 1024,
            "cuda emulator: kernel {}: invalid block ({}, {}, {}): a block has 1 to 1024 threads, "
            "x and y at most 1024, z at most 64", name, block.x, block.y, block.z);
  AFT_CHECK(grid.x <= 2147483647u && grid.y <= 65535 && grid.z <= 65535,
            "cuda emulator: kernel {}: invalid grid ({}, {}, {}): x at most 2^31 - 1, y and z at "
            "most 65535", name, grid.x, grid.y, grid.z);
  AFT_CHECK(shmem <= kMaxSharedBytes, "cuda emulator: kernel {}: {} bytes of dynamic shared memory, "
            "more than the {} a kernel may use without opting in", name, shmem, kMaxSharedBytes);
  uint64_t nblocks = uint64_t(grid.x) * grid.y * grid.z;
  if (nblocks == 0) return;

  Launch L;
  L.name = name;
  L.grid = grid;
  L.block = block;
  L.shmem = shmem;
  L.body = body;
  L.closure = closure;
  L.closure_bytes = closure_bytes;
  L.opts = options();
  AFT_CHECK(!L.opts.racecheck || racecheck_built(), "cuda emulator: kernel {}: the race checker is "
            "not in this build (configure with -DAFT_EMU_RACECHECK=ON)", name);
  L.backend = L.opts.assembly_fibers && has_assembly_backend() ? FiberBackend::Assembly
                                                                : FiberBackend::Ucontext;
  size_t page = 4096;
  L.stack_bytes = ((L.opts.stack_bytes ? L.opts.stack_bytes : default_stack_bytes()) + page - 1) / page * page;
  L.threads = static_cast<unsigned>(threads);

  // The block order: k-th block to run -> block id. A shuffle is materialised (grids that are
  // tested under a shuffle are small).
  std::vector<uint32_t> perm;
  if (L.opts.block_order == Order::Shuffle) {
    AFT_CHECK(nblocks <= (uint64_t(1) << 26), "cuda emulator: kernel {}: {} blocks are too many "
              "for the shuffle block order", name, nblocks);
    make_order(perm, static_cast<uint32_t>(nblocks), Order::Shuffle, mix_seed(L.opts.seed, ~uint64_t(0)));
  }
  auto block_at = [&](uint64_t k) -> uint64_t {
    if (L.opts.block_order == Order::Reverse) return nblocks - 1 - k;
    return perm.empty() ? k : perm[k];
  };

  Stats s;
  s.launches = 1;
  add_stats(s);
  if (!L.opts.parallel || nblocks == 1 || num_threads() == 1) {
    for (uint64_t k = 0; k < nblocks; ++k) run_block(L, block_at(k));
    return;
  }
  std::atomic<bool> failed{false};  // a block found a bug: the other ranges stop early
  parallel_for(0, static_cast<int64_t>(nblocks), 1, [&](int64_t begin, int64_t end) {
    try {
      for (int64_t k = begin; k < end && !failed.load(std::memory_order_relaxed); ++k)
        run_block(L, block_at(static_cast<uint64_t>(k)));
    } catch (...) {
      failed = true;
      throw;
    }
  });
}

}  // namespace detail
}  // namespace aft::cuda::emu
