// cuda/emu/racecheck.cpp: the per-block state of the emulator's access checks (cuda/emu/checks.h):
// the deferred first error, the thread and memory the hooks must ignore, and the race checker's
// shadow memory.
//
// Shadow memory. Every 4-byte word that the block's threads touch in the current barrier phase
// gets a cell in an open-addressing hash table (key: address / 4); the cell heads a list of
// access records {thread, kind, bytes of the word, epoch, code address}, one per thread and
// kind (consecutive accesses of a thread merge). A new access is compared with the records of
// other threads whose bytes overlap: a conflict (see checks.h) that no __syncwarp orders is the
// race reported. Byte masks keep two threads that write neighbouring bytes of a word apart (no
// race on a GPU, whose byte stores do not touch the neighbours). Reads of a word nobody wrote
// need no comparison, so the common case (many threads read a tile) is a lookup and an append.
// A __syncthreads() empties the table by bumping its generation (cells of older generations
// count as free), so the cost of a phase is proportional to the words it touches.
//
// Ordering within a warp. Each thread has a vector clock over its warp's 32 lanes; a record
// keeps the accessing thread's own clock entry ("epoch"). A completed __syncwarp of lanes L
// advances each one's own entry and gives all of them the element-wise maximum, so an access
// by lane a before it (epoch e) and one by lane b after it satisfy e < clock_b[a]: ordered.
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "cuda/emu/checks.h"

#ifndef AFT_EMU_RACECHECK
#define AFT_EMU_RACECHECK 0
#endif

namespace aft::cuda::emu::detail {

thread_local constinit Checks* Checks::t_checks __attribute__((tls_model("initial-exec"))) = nullptr;

bool racecheck_built() { return AFT_EMU_RACECHECK; }

namespace {
constexpr uint32_t kNone = ~uint32_t(0);
bool writes(uint8_t kind) { return kind & (kWrite | kAtomicWrite); }
bool atomic(uint8_t kind) { return kind & (kAtomicRead | kAtomicWrite); }
// The kinds an access of kind k conflicts with (when another thread made them, unordered). A
// plain read of a word that other threads update atomically is allowed: it may be stale, but
// it is never torn, and the compare-and-swap loop of the CUDA Programming Guide (read, then
// atomicCAS until nobody changed it) starts with exactly that read.
uint8_t conflicts_of(uint8_t k) {
  switch (k) {
    case kWrite: return kRead | kWrite | kAtomicRead | kAtomicWrite;
    default: return kWrite;  // a read, an atomic read or an atomic update
  }
}
}  // namespace

struct Checks::Shadow {
  struct Cell {
    uintptr_t word = 0;  // address / 4
    uint32_t gen = 0;    // the phase it belongs to; older: free
    uint32_t head = kNone;
    uint8_t kinds = 0;   // union of its records' kinds
  };
  struct Record {
    uint32_t next;
    uint16_t thread;
    uint8_t kind, bytes;  // bytes: bit i = byte i of the word
    uint32_t epoch;
    const void* pc;
  };
  std::vector<Cell> cells = std::vector<Cell>(4096);
  size_t used = 0;       // cells of the current generation
  uint32_t gen = 1;
  std::vector<Record> records;
  std::vector<uint32_t> clocks;  // threads x 32 lanes of its warp

  void clear() {
    if (++gen == 0) {  // wrapped: forget every cell for real
      std::fill(cells.begin(), cells.end(), Cell{});
      gen = 1;
    }
    used = 0;
    records.clear();
  }
  static size_t hash(uintptr_t w, size_t mask) { return (w * 0x9E3779B97F4A7C15ull >> 20) & mask; }
  Cell& find(uintptr_t w) {
    size_t mask = cells.size() - 1;
    for (size_t i = hash(w, mask);; i = (i + 1) & mask) {
      Cell& c = cells[i];
      if (c.gen != gen) {
        if (2 * (used + 1) > cells.size()) {
          grow();
          return find(w);
        }
        ++used;
        c = {w, gen, kNone, 0};
        return c;
      }
      if (c.word == w) return c;
    }
  }
  void grow() {
    std::vector<Cell> old(2 * cells.size());
    old.swap(cells);
    size_t mask = cells.size() - 1;
    for (const Cell& c : old) {
      if (c.gen != gen) continue;
      size_t i = hash(c.word, mask);
      while (cells[i].gen == gen) i = (i + 1) & mask;
      cells[i] = c;
    }
  }
};

Checks::Checks() : shadow_(std::make_unique<Shadow>()) {}
Checks::~Checks() = default;

void Checks::begin_block(const Launch& launch, uint3 block_idx, unsigned threads,
                         const void* internal, size_t internal_bytes) {
  launch_ = &launch;
  block_idx_ = block_idx;
  threads_ = threads;
  racecheck_ = launch.opts.racecheck;
  error_.clear();
  shared_.clear();
  phase_ = 0;
  phase_start_ = {};
  ignored_[0] = {reinterpret_cast<uintptr_t>(launch.closure), launch.closure_bytes};
  ignored_[1] = {reinterpret_cast<uintptr_t>(internal), internal_bytes};
  ignored_[2] = {reinterpret_cast<uintptr_t>(&t_checks), sizeof(void*)};
  if (racecheck_) {
    shadow_->clear();
    shadow_->clocks.assign(size_t(threads) * 32, 0);
  }
}

void Checks::enter(unsigned thread, const Stack& stack) {
  cur_ = thread;
  stack_lo_ = reinterpret_cast<uintptr_t>(stack.bottom);
  stack_bytes_ = stack.size;
  t_checks = this;
}

void Checks::new_phase(const std::source_location& barrier) {
  ++phase_;
  phase_start_ = barrier;
  if (racecheck_) shadow_->clear();
}

void Checks::sync_warp(unsigned warp, unsigned lanes) {
  if (!racecheck_) return;
  uint32_t* c = shadow_->clocks.data();
  uint32_t joined[32] = {};
  for (unsigned l = 0; l < 32; ++l) {
    if (!((lanes >> l) & 1u)) continue;
    uint32_t* mine = c + size_t(warp * 32 + l) * 32;
    ++mine[l];
    for (unsigned k = 0; k < 32; ++k) joined[k] = std::max(joined[k], mine[k]);
  }
  for (unsigned l = 0; l < 32; ++l)
    if ((lanes >> l) & 1u) std::memcpy(c + size_t(warp * 32 + l) * 32, joined, sizeof joined);
}

void Checks::add_shared(const void* p, size_t bytes, const char* name) {
  shared_.push_back({reinterpret_cast<uintptr_t>(p), bytes, name});
}

void Checks::stop(std::string what) {
  error_ = std::move(what);
  stop_thread();
}

std::string Checks::describe_thread(unsigned thread) const {
  return fmt::format("thread {} (warp {}, lane {})", thread, thread / 32, thread % 32);
}

// ---------------------------------------------------------------- the race checker

void Checks::access(uintptr_t addr, size_t size, AccessKind kind, const void* pc) {
  if (addr - stack_lo_ < stack_bytes_) return;
  for (const Range& r : ignored_)
    if (addr - r.lo < r.bytes) return;
  uintptr_t end = addr + size;
  for (uintptr_t w = addr & ~uintptr_t(3); w < end; w += 4) {
    unsigned lo = static_cast<unsigned>(std::max(addr, w) - w);
    unsigned hi = static_cast<unsigned>(std::min(end, w + 4) - w);
    auto bytes = static_cast<uint8_t>(((1u << hi) - 1) & ~((1u << lo) - 1));
    word(w, bytes, kind, pc);
  }
}

// Checks and records one access of `bytes` of the word at w (a race stops the thread).
void Checks::word(uintptr_t w, uint8_t bytes, AccessKind kind, const void* pc) {
  Shadow& s = *shadow_;
  Shadow::Cell& c = s.find(w >> 2);
  const unsigned warp = cur_ / 32;
  const uint32_t* clock = s.clocks.data() + size_t(cur_) * 32;
  const uint8_t against = conflicts_of(kind);
  if (c.kinds & against) {
    for (uint32_t i = c.head; i != kNone; i = s.records[i].next) {
      const Shadow::Record& r = s.records[i];
      if (r.thread == cur_ || !(r.bytes & bytes) || !(r.kind & against)) continue;
      if (r.thread / 32u == warp && r.epoch < clock[r.thread % 32]) continue;  // a __syncwarp between
      unsigned first = static_cast<unsigned>(std::countr_zero(unsigned(r.bytes & bytes)));
      report_race(w + first, kind, pc, r.thread, static_cast<AccessKind>(r.kind), r.pc);
    }
  }
  const uint32_t epoch = clock[cur_ % 32];
  if (c.head != kNone) {
    Shadow::Record& h = s.records[c.head];
    if (h.thread == cur_ && h.kind == kind && h.epoch == epoch) {
      h.bytes |= bytes;
      return;
    }
  }
  s.records.push_back({c.head, static_cast<uint16_t>(cur_), kind, bytes, epoch, pc});
  c.head = static_cast<uint32_t>(s.records.size() - 1);
  c.kinds |= kind;
}

std::string Checks::name_address(uintptr_t addr) const {
  for (const SharedVar& v : shared_)
    if (addr - v.lo < v.bytes)
      return fmt::format("shared memory: byte {} of {} ({} bytes) at {:#x}", addr - v.lo, v.name,
                         v.bytes, addr);
  return fmt::format("global memory at {:#x}", addr);
}

void Checks::report_race(uintptr_t addr, AccessKind kind, const void* pc, unsigned other,
                         AccessKind other_kind, const void* other_pc) {
  auto verb = [](AccessKind k, bool past) {
    switch (k) {
      case kRead: return past ? "read" : "reads";
      case kWrite: return past ? "wrote" : "writes";
      case kAtomicRead: return past ? "atomically read" : "atomically reads";
      default: return past ? "atomically updated" : "atomically updates";
    }
  };
  std::string phase = phase_ == 0 ? std::string("since the block started")
                                  : fmt::format("since the __syncthreads() at {} (barrier phase {})",
                                                where_str(phase_start_), phase_);
  bool same_warp = other / 32 == cur_ / 32;
  stop(fmt::format(
      "race on {}: {} {} it at {}, and {} {} it at {}, {} with no barrier{} between them (a data "
      "race: on a GPU the result depends on timing{})",
      name_address(addr), describe_thread(cur_), verb(kind, false), code_location(pc),
      describe_thread(other), verb(other_kind, true), code_location(other_pc), phase,
      same_warp ? " or __syncwarp()" : "",
      atomic(kind) || atomic(other_kind) ? "; mixing atomic and plain accesses of one address"
      : writes(kind) && writes(other_kind) ? "; several threads write it: use an atomic or a barrier"
                                            : "; a barrier is missing"));
}

// ---------------------------------------------------------------- code addresses

std::string code_location(const void* pc) {
  Dl_info info{};
  if (!pc || !dladdr(pc, &info) || !info.dli_fname) return fmt::format("{}", pc);
  // (the return address of the hook's call: the access is the instruction before it)
  uintptr_t offset = reinterpret_cast<uintptr_t>(pc) - 1 - reinterpret_cast<uintptr_t>(info.dli_fbase);
  const char* base = std::strrchr(info.dli_fname, '/');
  std::string fallback = fmt::format("{}+{:#x}", base ? base + 1 : info.dli_fname, offset);
  std::string cmd = fmt::format("addr2line -i -e '{}' {:#x} 2>/dev/null", info.dli_fname, offset);
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return fallback;
  // addr2line -i prints the innermost (inlined) location first, then its callers: the first
  // in a .cu / .cuh file is the kernel's line (an atomic's innermost is libstdc++'s atomic_ref).
  std::string loc;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    std::string l(line, strcspn(line, " \n"));
    if (loc.empty() || loc.starts_with("??")) loc = l;
    size_t colon = l.rfind(':');
    std::string file = l.substr(0, colon == std::string::npos ? l.size() : colon);
    if (file.ends_with(".cu") || file.ends_with(".cuh")) {
      loc = l;
      break;
    }
  }
  pclose(f);
  if (loc.empty() || loc.starts_with("??")) return fallback;
  size_t slash = loc.rfind('/');
  return slash == std::string::npos ? loc : loc.substr(slash + 1);
}

}  // namespace aft::cuda::emu::detail
