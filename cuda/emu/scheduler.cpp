// cuda/emu/scheduler.cpp: runs one block of a kernel with CUDA's semantics, and catches the
// synchronisation bugs that would hang or corrupt it on a GPU.
//
// The block's threads are fibers (cuda/emu/fiber.h) on the calling OS thread. The scheduler
// resumes the runnable threads one at a time, in the order Options say (forward, reverse or a
// seeded shuffle of the linear thread ids); each runs until it finishes or reaches
//   __syncthreads()     it waits until every thread of the block waits at that barrier, then
//                       all become runnable again (a new "phase", in a new order);
//   a warp collective   (__shfl*_sync, __ballot_sync, __syncwarp...) it waits until every lane
//                       named in the mask that has not exited has arrived; then each gets its
//                       result and becomes runnable.
// A thread that never synchronises therefore runs start to finish in one go (two context
// switches), and the order between two barriers is exactly the chosen one: a kernel missing a
// barrier reads different values under different orders.
//
// When no thread can run and the block is not finished, the kernel is stuck (on a GPU: a hang
// or undefined behaviour). The scheduler then names what each thread waits for and throws
// aft::Error; the suspended fibers are unwound (a Cancelled exception thrown at their wait) so
// their stacks can be reused. Checked:
//   - a barrier that some threads never reach (they exited, or wait at another __syncthreads);
//   - a warp collective whose caller is not in its mask, whose lanes disagree (different
//     collective, mask or width), or that waits for a lane that never arrives;
//   - a shuffle reading a lane that exited or is not in the mask: it gets 0xFF bytes (NaN);
//   - shared memory: exact-size heap blocks (AddressSanitizer sees overruns), filled with 0xFF
//     bytes at block start (a read of never-written shared memory gives NaN / -1);
//   - misaligned accesses and races, found by instrumentation hooks (cuda/emu/checks.h).
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/emu/checks.h"

namespace aft::cuda::emu::detail {

thread_local constinit const ThreadView* t_view __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

constexpr unsigned char kPoison = 0xFF;  // fill of fresh shared memory and of invalid shuffles

struct Cancelled {};  // unwinds a fiber whose block is abandoned

enum class State : unsigned char {
  Fresh,      // not started
  Ready,      // suspended, may continue
  Running,
  AtBarrier,  // waits at __syncthreads
  AtWarp,     // waits at a warp collective
  Stopped,    // stopped by a check at a faulting access (cuda/emu/checks.h): never resumed
  Done,
};

struct WarpCall {
  Collective kind = Collective::SyncWarp;
  unsigned mask = 0;
  int width = 32, bytes = 4, arg = 0;
  uint64_t value = 0;
  std::source_location where;
};

class BlockRunner;

struct Thread : ThreadView {
  unsigned linear = 0, warp = 0, lane = 0;
  State state = State::Fresh;
  bool cancel = false;            // set when the block is abandoned
  Context ctx;
  std::exception_ptr error;       // what the kernel threw, if anything
  BarrierKind bar_kind = BarrierKind::Sync;  // at a barrier: which, where, with what predicate
  int pred = 0;
  std::source_location where;
  WarpCall call;                  // at a warp collective
  uint64_t result = 0;            // of the last collective
  BlockRunner* runner = nullptr;
};

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::strcmp(a.file_name(), b.file_name()) == 0);
}
// The lane whose value lane `lane` reads, per PTX's shfl.sync: a source outside the lane's
// segment of `width` lanes means "keep your own value" (returned as `lane`).
unsigned shuffle_source(Collective kind, unsigned lane, int arg, int width) {
  unsigned seg_start = lane & ~unsigned(width - 1), seg_end = seg_start + width - 1;
  unsigned b = static_cast<unsigned>(arg) & 31;  // the hardware uses the low 5 bits
  switch (kind) {
    case Collective::ShflIdx: return seg_start + (static_cast<unsigned>(arg) & unsigned(width - 1));
    case Collective::ShflUp: return lane >= seg_start + b ? lane - b : lane;
    case Collective::ShflDown: return lane + b <= seg_end ? lane + b : lane;
    case Collective::ShflXor: return (lane ^ b) <= seg_end ? lane ^ b : lane;
    default: return lane;
  }
}

class BlockRunner {
 public:
  void run(const Launch& launch, uint64_t block_id);

  // Called by the running GPU thread (on its fiber).
  int barrier(Thread& t, BarrierKind kind, int pred, const std::source_location& where);
  uint64_t collective(Thread& t, const WarpCall& call);
  void* static_shared(const void* key, size_t bytes, size_t align, const char* name);
  void* dynamic_shared(size_t align);
  unsigned active_mask(const Thread& t) const;
  friend void detail::stop_thread();

 private:
  static void thread_main(void* arg);
  void suspend(Thread& t);
  void schedule();
  void step(Thread& t);
  void after_step(Thread& t);
  void check_call(const Thread& t);
  void try_complete(const Thread& t);
  void complete(const WarpCall& call, unsigned warp, unsigned participants);
  void release_barrier();
  [[noreturn]] void report_stuck();
  [[noreturn]] void fail(const std::string& what);
  void cancel_all();
  void* poisoned_alloc(size_t bytes, size_t align);
  void new_phase_order();

  const Launch* L_ = nullptr;
  uint64_t block_id_ = 0;
  uint3 block_idx_{};
  unsigned n_ = 0;
  std::vector<Thread> threads_;
  std::vector<uint32_t> order_;
  unsigned phase_ = 0;
  unsigned ready_ = 0, done_ = 0, at_barrier_ = 0, at_warp_ = 0;  // threads in each state
  int barrier_result_ = 0;
  struct SharedVar {
    const void* key;
    void* ptr;
  };
  std::vector<SharedVar> shared_;
  size_t shared_bytes_ = 0;
  void* dynamic_ = nullptr;
  Context main_;  // the scheduler's own context (this OS thread's stack)
  StackPool stacks_;
  uint64_t stacks_reported_ = 0;
  Checks checks_;  // alignment and races, reported by instrumentation hooks
  Stats stats_;  // of the block being run
};

// The running GPU thread; `what` names the caller in the error raised outside a kernel.
Thread& current_checked(const char* what) {
  view(what);
  return *static_cast<Thread*>(const_cast<ThreadView*>(t_view));
}

// ---------------------------------------------------------------- one block

void BlockRunner::run(const Launch& launch, uint64_t block_id) {
  L_ = &launch;
  block_id_ = block_id;
  const dim3 g = launch.grid, b = launch.block;
  block_idx_ = {unsigned(block_id % g.x), unsigned(block_id / g.x % g.y), unsigned(block_id / g.x / g.y)};
  n_ = launch.threads;
  if (threads_.size() < n_) threads_.resize(n_);
  for (unsigned i = 0; i < n_; ++i) {
    Thread& t = threads_[i];
    t.thread_idx = {i % b.x, i / b.x % b.y, i / b.x / b.y};
    t.block_idx = block_idx_;
    t.block_dim = b;
    t.grid_dim = g;
    t.linear = i;
    t.warp = i / 32;
    t.lane = i % 32;
    t.state = State::Fresh;
    t.cancel = false;
    t.error = nullptr;
    t.runner = this;
  }
  ready_ = n_;
  done_ = at_barrier_ = at_warp_ = 0;
  phase_ = 0;
  shared_bytes_ = launch.shmem;
  new_phase_order();
  checks_.begin_block(launch, block_idx_, n_, threads_.data(), n_ * sizeof(Thread));

  std::exception_ptr failure;
  try {
    schedule();
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) cancel_all();  // outside the handler: the fibers throw and catch on their own
  for (SharedVar& v : shared_) std::free(v.ptr);
  shared_.clear();
  std::free(dynamic_);
  dynamic_ = nullptr;
  stats_.blocks = 1;
  stats_.stacks_mapped = stacks_.mapped() - stacks_reported_;
  stacks_reported_ = stacks_.mapped();
  add_stats(stats_);
  stats_ = {};
  if (failure) std::rethrow_exception(failure);
}

void BlockRunner::new_phase_order() {
  make_order(order_, n_, L_->opts.thread_order, mix_seed(L_->opts.seed, mix_seed(block_id_, phase_)));
}

// Passes over the threads in order until every one has finished; between passes, releases a
// barrier that all threads wait at, or reports why the block is stuck.
void BlockRunner::schedule() {
  for (;;) {
    while (ready_ > 0) {
      for (uint32_t i : order_) {
        Thread& t = threads_[i];
        if (t.state == State::Fresh || t.state == State::Ready) step(t);
      }
    }
    if (done_ == n_) return;
    if (at_barrier_ + done_ == n_) {
      release_barrier();
      continue;
    }
    report_stuck();
  }
}

// Runs thread t until it finishes or waits.
void BlockRunner::step(Thread& t) {
  if (t.state == State::Fresh) {
    make_context(L_->backend, t.ctx, stacks_.get(L_->stack_bytes), &thread_main, &t);
    ++stats_.threads;
  }
  t.state = State::Running;
  --ready_;
  t_view = &t;
  checks_.enter(t.linear, t.ctx.stack);
  switch_context(L_->backend, main_, t.ctx);
  checks_.leave();
  t_view = nullptr;
  stats_.switches += 2;
  after_step(t);
}

// A GPU thread's fiber: the kernel, then a last switch back to the scheduler.
void BlockRunner::thread_main(void* arg) {
  Thread& t = *static_cast<Thread*>(arg);
  BlockRunner& r = *t.runner;
  fiber_entered(r.main_);
  try {
    r.L_->body(r.L_->closure);
  } catch (const Cancelled&) {
  } catch (...) {
    t.error = std::current_exception();
  }
  t.state = State::Done;
  switch_context(r.L_->backend, t.ctx, r.main_, /*from_dies=*/true);
  std::abort();  // never resumed
}

void BlockRunner::suspend(Thread& t) {
  switch_context(L_->backend, t.ctx, main_);
  if (t.cancel) throw Cancelled{};
}

void BlockRunner::after_step(Thread& t) {
  if (t.state != State::Done && checks_.failed()) fail(checks_.error());
  switch (t.state) {
    case State::Done:
      ++done_;
      unpoison_stack(t.ctx, /*whole=*/false);
      stacks_.put(t.ctx.stack);
      if (checks_.failed()) fail(checks_.error());
      if (t.error) std::rethrow_exception(t.error);
      // Lanes that wait for this one at a warp collective no longer need it.
      for (unsigned i = t.warp * 32; i < n_ && i < t.warp * 32 + 32; ++i)
        if (threads_[i].state == State::AtWarp) try_complete(threads_[i]);
      break;
    case State::AtBarrier: ++at_barrier_; break;
    case State::AtWarp:
      ++at_warp_;
      check_call(t);
      try_complete(t);
      break;
    default: AFT_ASSERT(false);
  }
}

// ---------------------------------------------------------------- barriers

int BlockRunner::barrier(Thread& t, BarrierKind kind, int pred, const std::source_location& where) {
  t.bar_kind = kind;
  t.pred = pred;
  t.where = where;
  t.state = State::AtBarrier;
  suspend(t);
  return barrier_result_;
}

// Every live thread waits at a barrier: they must all be at the same one, and none may have
// exited (on a GPU either hangs or is undefined).
void BlockRunner::release_barrier() {
  const Thread* first = nullptr;
  std::vector<unsigned> here, elsewhere, exited;
  for (unsigned i = 0; i < n_; ++i) {
    const Thread& t = threads_[i];
    if (t.state == State::Done) {
      exited.push_back(i);
    } else {
      if (!first) first = &t;
      (same_site(t.where, first->where) ? here : elsewhere).push_back(i);
    }
  }
  if (!exited.empty())
    fail(fmt::format("{} at {} is not reached by every thread of the block: threads {} wait there, "
                     "threads {} exited without reaching it (a barrier in divergent code: a hang or "
                     "undefined behaviour on a GPU)",
                     barrier_name(first->bar_kind), where_str(first->where), ranges(here), ranges(exited)));
  if (!elsewhere.empty()) {
    const Thread& o = threads_[elsewhere[0]];
    std::vector<unsigned> there;
    for (unsigned i : elsewhere)
      if (same_site(threads_[i].where, o.where)) there.push_back(i);
    fail(fmt::format("the threads of the block wait at different barriers: threads {} at {} {}, "
                     "threads {} at {} {} (a barrier in divergent code)",
                     ranges(here), barrier_name(first->bar_kind), where_str(first->where),
                     ranges(there), barrier_name(o.bar_kind), where_str(o.where)));
  }
  int count = 0;
  for (unsigned i = 0; i < n_; ++i) count += threads_[i].pred != 0;
  switch (first->bar_kind) {
    case BarrierKind::Sync: barrier_result_ = 0; break;
    case BarrierKind::Count: barrier_result_ = count; break;
    case BarrierKind::And: barrier_result_ = count == int(n_); break;
    case BarrierKind::Or: barrier_result_ = count > 0; break;
  }
  for (unsigned i = 0; i < n_; ++i) threads_[i].state = State::Ready;
  ready_ = n_;
  at_barrier_ = 0;
  ++stats_.barriers;
  ++phase_;
  checks_.new_phase(first->where);
  if (L_->opts.thread_order == Order::Shuffle) new_phase_order();
}

// ---------------------------------------------------------------- warp collectives

uint64_t BlockRunner::collective(Thread& t, const WarpCall& call) {
  t.call = call;
  t.state = State::AtWarp;
  suspend(t);
  return t.result;
}

void BlockRunner::check_call(const Thread& t) {
  const WarpCall& c = t.call;
  if (!((c.mask >> t.lane) & 1u))
    fail(fmt::format("{} at {}: lane {} of warp {} (thread {}) calls it with mask {:#010x}, which "
                     "does not include the calling lane",
                     collective_name(c.kind), where_str(c.where), t.lane, t.warp, t.linear, c.mask));
  if (c.width < 1 || c.width > 32 || (c.width & (c.width - 1)) != 0)
    fail(fmt::format("{} at {}: width {} is not a power of two in 1..32", collective_name(c.kind),
                     where_str(c.where), c.width));
}

// If every live lane named in t's mask waits at a collective, they must all make t's call:
// then complete it.
void BlockRunner::try_complete(const Thread& t) {
  const WarpCall& c = t.call;
  unsigned participants = 0;
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned i = t.warp * 32 + lane;
    if (!((c.mask >> lane) & 1u) || i >= n_) continue;  // not named, or past the block's end
    const Thread& u = threads_[i];
    if (u.state == State::Done) continue;                // exited: no longer expected
    if (u.state != State::AtWarp) return;                // not there yet
    const WarpCall& d = u.call;
    if (d.kind != c.kind || d.mask != c.mask || d.width != c.width || d.bytes != c.bytes)
      fail(fmt::format("the lanes of warp {} disagree at a warp collective: lane {} calls {}(mask "
                       "{:#010x}, width {}) at {}, lane {} calls {}(mask {:#010x}, width {}) at {} "
                       "(every lane named in a mask must make the same call)",
                       t.warp, t.lane, collective_name(c.kind), c.mask, c.width, where_str(c.where),
                       u.lane, collective_name(d.kind), d.mask, d.width, where_str(d.where)));
    participants |= 1u << lane;
  }
  complete(c, t.warp, participants);
}

// Computes every participant's result and makes them runnable.
void BlockRunner::complete(const WarpCall& c, unsigned warp, unsigned participants) {
  auto lane_thread = [&](unsigned lane) -> Thread& { return threads_[warp * 32 + lane]; };
  uint64_t poison = c.bytes == 8 ? ~uint64_t(0) : 0xFFFFFFFFull;
  unsigned ballot = 0;
  uint32_t sum = 0, and_ = ~0u, or_ = 0, xor_ = 0, min_u = ~0u, max_u = 0;
  int32_t min_s = INT32_MAX, max_s = INT32_MIN;
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (!((participants >> lane) & 1u)) continue;
    uint64_t v = lane_thread(lane).call.value;
    ballot |= unsigned(v != 0) << lane;
    uint32_t u = static_cast<uint32_t>(v);
    auto s = static_cast<int32_t>(u);
    sum += u, and_ &= u, or_ |= u, xor_ ^= u;
    min_u = std::min(min_u, u), max_u = std::max(max_u, u);
    min_s = std::min(min_s, s), max_s = std::max(max_s, s);
  }
  for (unsigned lane = 0; lane < 32; ++lane) {
    if (!((participants >> lane) & 1u)) continue;
    Thread& t = lane_thread(lane);
    uint64_t r = 0;
    switch (c.kind) {
      case Collective::ShflIdx:
      case Collective::ShflUp:
      case Collective::ShflDown:
      case Collective::ShflXor: {
        unsigned src = shuffle_source(c.kind, lane, t.call.arg, c.width);
        r = (participants >> src) & 1u ? lane_thread(src).call.value : poison;
        break;
      }
      case Collective::Ballot: r = ballot; break;
      case Collective::Any: r = ballot != 0; break;
      case Collective::All: r = ballot == participants; break;
      case Collective::SyncWarp: r = 0; break;
      case Collective::ReduceAdd: r = sum; break;
      case Collective::ReduceMinS: r = static_cast<uint32_t>(min_s); break;
      case Collective::ReduceMinU: r = min_u; break;
      case Collective::ReduceMaxS: r = static_cast<uint32_t>(max_s); break;
      case Collective::ReduceMaxU: r = max_u; break;
      case Collective::ReduceAnd: r = and_; break;
      case Collective::ReduceOr: r = or_; break;
      case Collective::ReduceXor: r = xor_; break;
    }
    t.result = r;
    t.state = State::Ready;
    --at_warp_;
    ++ready_;
  }
  ++stats_.collectives;
  if (c.kind == Collective::SyncWarp) checks_.sync_warp(warp, participants);
}

unsigned BlockRunner::active_mask(const Thread& t) const {
  unsigned m = 0;
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned i = t.warp * 32 + lane;
    if (i < n_ && threads_[i].state != State::Done) m |= 1u << lane;
  }
  return m;
}

// ---------------------------------------------------------------- a stuck block

// No thread can run: some lanes wait at a warp collective for lanes that wait elsewhere.
// (All threads at barriers is handled by release_barrier.)
void BlockRunner::report_stuck() {
  for (unsigned i = 0; i < n_; ++i) {
    const Thread& t = threads_[i];
    if (t.state != State::AtWarp) continue;
    const WarpCall& c = t.call;
    std::vector<unsigned> waiting, missing;
    const Thread* other = nullptr;
    for (unsigned lane = 0; lane < 32; ++lane) {
      unsigned j = t.warp * 32 + lane;
      if (!((c.mask >> lane) & 1u) || j >= n_ || threads_[j].state == State::Done) continue;
      if (threads_[j].state == State::AtWarp) {
        waiting.push_back(lane);
      } else {
        missing.push_back(lane);
        if (!other) other = &threads_[j];
      }
    }
    AFT_ASSERT(other != nullptr);
    std::string there = other->state == State::AtBarrier
                            ? fmt::format("{} at {}", barrier_name(other->bar_kind), where_str(other->where))
                            : "elsewhere";
    fail(fmt::format("{}(mask {:#010x}) at {}: lanes {} of warp {} wait for lanes {}, named in the "
                     "mask, which never arrive (lane {} waits at {})",
                     collective_name(c.kind), c.mask, where_str(c.where), ranges(waiting), t.warp,
                     ranges(missing), other->lane, there));
  }
  AFT_ASSERT(false);  // stuck without a waiting collective cannot happen
  std::abort();
}

void BlockRunner::fail(const std::string& what) {
  const dim3 b = L_->block;
  bool multi = b.y > 1 || b.z > 1;
  AFT_ERROR("cuda emulator: kernel {}, block ({}, {}, {}): {}{} [thread order {}; set "
            "AFT_EMU_ORDER={} to reproduce]",
            L_->name, block_idx_.x, block_idx_.y, block_idx_.z, what,
            multi ? " (thread ids are linear: x + y * blockDim.x + z * blockDim.x * blockDim.y)" : "",
            describe_order(L_->opts), describe_order(L_->opts));
}

// Unwinds every suspended fiber: resumed with `cancel` set, it throws Cancelled at its wait.
void BlockRunner::cancel_all() {
  for (unsigned i = 0; i < n_; ++i) {
    Thread& t = threads_[i];
    if (t.state == State::Fresh || t.state == State::Done) continue;
    t.cancel = true;
    t_view = &t;
    if (t.state != State::Stopped) switch_context(L_->backend, main_, t.ctx);
    t_view = nullptr;
    unpoison_stack(t.ctx, /*whole=*/true);
    stacks_.put(t.ctx.stack);
    t.state = State::Done;
  }
}

// ---------------------------------------------------------------- shared memory

void* BlockRunner::poisoned_alloc(size_t bytes, size_t align) {
  void* p = nullptr;
  if (posix_memalign(&p, align < 16 ? 16 : align, bytes) != 0) AFT_ERROR("cuda emulator: out of memory");
  std::memset(p, kPoison, bytes);
  return p;
}

void* BlockRunner::static_shared(const void* key, size_t bytes, size_t align, const char* name) {
  for (const SharedVar& v : shared_)
    if (v.key == key) return v.ptr;
  shared_bytes_ += bytes;
  AFT_CHECK(shared_bytes_ <= kMaxSharedBytes,
            "cuda emulator: kernel {}: AFT_SHARED {} brings the block's shared memory to {} bytes, "
            "more than the {} a kernel may use without opting in", L_->name, name, shared_bytes_,
            kMaxSharedBytes);
  shared_.push_back({key, poisoned_alloc(bytes, align)});
  checks_.add_shared(shared_.back().ptr, bytes, name);
  return shared_.back().ptr;
}

void* BlockRunner::dynamic_shared(size_t align) {
  AFT_CHECK(align <= 16, "cuda emulator: kernel {}: AFT_DYN_SHARED of a type aligned to {} bytes; "
            "dynamic shared memory is 16-byte aligned", L_->name, align);
  if (!dynamic_) {
    dynamic_ = poisoned_alloc(L_->shmem, 16);
    checks_.add_shared(dynamic_, L_->shmem, "dynamic shared memory");
  }
  return dynamic_;
}

// Each OS thread that runs blocks has its own runner (and stack pool). It is reached through a
// pointer: were it a thread_local object, the compiler would recompute its TLS address for
// every member access in run() (measured: a third of the time of a barrier).
BlockRunner& this_threads_runner() {
  thread_local std::unique_ptr<BlockRunner> runner;
  if (!runner) runner = std::make_unique<BlockRunner>();
  return *runner;
}

}  // namespace

// ---------------------------------------------------------------- the kernel-facing calls

void run_block(const Launch& launch, uint64_t block_id) { this_threads_runner().run(launch, block_id); }

void outside_kernel(const char* what) {
  AFT_ERROR("cuda emulator: {} used outside a kernel (only threads of a launch have one)", what);
}

int barrier(BarrierKind kind, int pred, const std::source_location& where) {
  Thread& t = current_checked("__syncthreads");
  return t.runner->barrier(t, kind, pred, where);
}

uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, int bytes, int arg,
                         int width, const std::source_location& where) {
  Thread& t = current_checked(collective_name(kind));
  return t.runner->collective(t, {kind, mask, width, bytes, arg, value, where});
}

void stop_thread() {
  Thread& t = current_checked("a memory check");
  t.state = State::Stopped;
  switch_context(t.runner->L_->backend, t.ctx, t.runner->main_);
  std::abort();  // never resumed (its stack is reused without unwinding it)
}

unsigned active_mask() {
  Thread& t = current_checked("__activemask");
  return t.runner->active_mask(t);
}

void* static_shared(const void* key, size_t bytes, size_t align, const char* name) {
  return current_checked("AFT_SHARED").runner->static_shared(key, bytes, align, name);
}

void* dynamic_shared(size_t align) {
  return current_checked("AFT_DYN_SHARED").runner->dynamic_shared(align);
}

}  // namespace aft::cuda::emu::detail
