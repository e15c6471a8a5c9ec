#include "parallel.h"

#include "flush_denormals.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace {

// A worker that finished a job keeps polling this long before it sleeps: the kernels of a training step come a few
// hundred microseconds apart, and waking a sleeping thread took longer than many of the products it would share.
std::chrono::microseconds spin_time() {
  const char* env = std::getenv("FLIP_NATIVE_SPIN_US");
  return std::chrono::microseconds(env ? std::atoll(env) : 5000);
}
const std::chrono::microseconds kSpin = spin_time();

// Set while this thread runs a part of a job: a parallel_for inside one runs inline (nested use, e.g. two
// transformer stacks side by side, each calling the kernels that would otherwise share the pool).
thread_local bool in_job = false;

struct InJob {
  InJob() { in_job = true; }
  ~InJob() { in_job = false; }
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Every job is acknowledged by every worker (pending counts workers, not parts), so the job's fields stay untouched
// until the next job and no worker can miss or repeat one.
struct Pool {
  std::vector<std::thread> workers;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::condition_variable wake;
  int sleepers = 0;  // guarded by mutex
  // The current job, written before generation is bumped.
  const std::function<void(int64_t, int64_t)>* body = nullptr;
  int64_t count = 0, parts = 0;

  ~Pool() { resize(0); }

  void part_range(int64_t part, int64_t* begin, int64_t* end) const {
    *begin = count * part / parts;
    *end = count * (part + 1) / parts;
  }

  // Waits until generation differs from seen (or the pool stops); polls first, then sleeps.
  uint64_t await_job(uint64_t seen) {
    auto start = std::chrono::steady_clock::now();
    for (int spins = 1;; spins++) {
      const uint64_t g = generation.load(std::memory_order_acquire);
      if (g != seen || stopping.load(std::memory_order_acquire)) return g;
      if (spins % 256 == 0 && std::chrono::steady_clock::now() - start > kSpin) {
        std::unique_lock<std::mutex> lock(mutex);
        sleepers++;
        wake.wait(lock, [&] { return generation.load(std::memory_order_acquire) != seen || stopping.load(std::memory_order_acquire); });
        sleepers--;
        start = std::chrono::steady_clock::now();
      }
      cpu_relax();
    }
  }

  // seen: the generation when the worker was created (read before it starts, so no job can slip past it).
  void work(int index, uint64_t seen) {
    for (;;) {
      seen = await_job(seen);
      if (stopping.load(std::memory_order_acquire)) return;
      if (index + 1 < parts) {
        int64_t begin, end;
        part_range(index + 1, &begin, &end);
        InJob guard;
        (*body)(begin, end);
      }
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void run(int64_t job_count, int64_t job_parts, const std::function<void(int64_t, int64_t)>& job) {
    body = &job;
    count = job_count;
    parts = job_parts;
    pending.store(static_cast<int>(workers.size()), std::memory_order_relaxed);
    generation.fetch_add(1, std::memory_order_acq_rel);
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (sleepers > 0) wake.notify_all();
    }
    int64_t begin, end;
    part_range(0, &begin, &end);
    {
      InJob guard;
      job(begin, end);
    }
    while (pending.load(std::memory_order_acquire) != 0) cpu_relax();
  }

  void resize(int worker_count) {
    stopping.store(true, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mutex);
      wake.notify_all();
    }
    for (auto& t : workers) t.join();
    workers.clear();
    stopping.store(false, std::memory_order_release);
    const uint64_t now = generation.load(std::memory_order_acquire);
    for (int i = 0; i < worker_count; i++) workers.emplace_back([this, i, now] {
      flush_denormals_in_this_thread();
      work(i, now);
    });
  }
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void pool_set_threads(int threads) {
  const int workers = threads < 1 ? 0 : threads - 1;
  if (static_cast<int>(pool().workers.size()) != workers) pool().resize(workers);
}

int pool_threads() { return static_cast<int>(pool().workers.size()) + 1; }

void parallel_for(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  Pool& p = pool();
  const int64_t threads = static_cast<int64_t>(p.workers.size()) + 1;
  int64_t parts = grain > 0 ? count / grain : count;
  if (parts > threads) parts = threads;
  if (parts <= 1 || in_job) {
    // One part, or called from inside a job: here, in one piece. The bodies give the same result for any split.
    if (count > 0) body(0, count);
    return;
  }
  p.run(count, parts, body);
}

void parallel_for_elements(const std::vector<int64_t>& sizes, int64_t grain, const std::function<void(size_t, int64_t, int64_t)>& body) {
  std::vector<int64_t> starts(sizes.size() + 1, 0);
  for (size_t k = 0; k < sizes.size(); k++) starts[k + 1] = starts[k] + sizes[k];
  parallel_for(starts.back(), grain, [&](int64_t i0, int64_t i1) {
    size_t k = std::upper_bound(starts.begin(), starts.end(), i0) - starts.begin() - 1;
    for (; k < sizes.size() && starts[k] < i1; k++) body(k, std::max(i0, starts[k]) - starts[k], std::min(i1, starts[k + 1]) - starts[k]);
  });
}
