// ThreadPool: every index of a ParallelFor runs exactly once, on the pool's
// threads, whatever the split; calls from several threads are serialized;
// workers asleep after their spin wake for the next call.
#include "kernels/cpu/thread_pool.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace blockserve {
namespace {

// Runs ParallelFor(n, min_chunk) and checks that [0, n) is covered by
// disjoint chunks of at least min_chunk (but the last), each index once.
void ExpectEachIndexOnce(ThreadPool& pool, int64_t n, int64_t min_chunk) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " min_chunk=" << min_chunk);
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int64_t> short_chunks{0};
  pool.ParallelFor(n, min_chunk, [&](int64_t begin, int64_t end) {
    ASSERT_LE(0, begin);
    ASSERT_LT(begin, end);
    ASSERT_LE(end, n);
    if (end - begin < min_chunk) short_chunks.fetch_add(1);
    for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
  EXPECT_LE(short_chunks.load(), 1);  // only the last chunk may be short
}

TEST(ThreadPoolTest, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    SCOPED_TRACE(::testing::Message() << "threads=" << threads);
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {1, 2, 7, 31, 32, 33, 1000, 100003}) {
      for (int64_t min_chunk : {1, 4, 64}) ExpectEachIndexOnce(pool, n, min_chunk);
    }
  }
}

TEST(ThreadPoolTest, AnEmptyRangeCallsNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.ParallelFor(0, 1, [&](int64_t, int64_t) { ++calls; });
  pool.ParallelFor(-5, 1, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPoolTest, ARangeNoLargerThanTheMinimumChunkRunsInlineInOneCall) {
  ThreadPool pool(4);
  std::vector<std::pair<int64_t, int64_t>> calls;
  const std::thread::id caller = std::this_thread::get_id();
  pool.ParallelFor(16, 16, [&](int64_t begin, int64_t end) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    calls.emplace_back(begin, end);
  });
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], std::make_pair(int64_t{0}, int64_t{16}));
}

TEST(ThreadPoolTest, ChunksRunOnTheCallerAndTheWorkers) {
  ThreadPool pool(3);
  std::mutex mutex;
  std::set<std::thread::id> seen;
  // Chunks slow enough that every thread gets some.
  for (int attempt = 0; attempt < 20 && seen.size() < 3; ++attempt) {
    pool.ParallelFor(48, 1, [&](int64_t, int64_t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::lock_guard<std::mutex> lock(mutex);
      seen.insert(std::this_thread::get_id());
    });
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen.count(std::this_thread::get_id()));
}

TEST(ThreadPoolTest, ManyShortCallsInARowEachSeeOnlyTheirOwnJob) {
  // Back-to-back jobs, as in a forward pass: a worker late for one job must
  // not run a chunk of the next one with the old function, or miss one.
  ThreadPool pool(2);
  for (int call = 0; call < 20000; ++call) {
    std::atomic<int64_t> sum{0};
    const int64_t n = 1 + call % 40;
    pool.ParallelFor(n, 1, [&, call](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum.fetch_add(i + call);
    });
    ASSERT_EQ(sum.load(), n * (n - 1) / 2 + n * call) << "call " << call;
  }
}

TEST(ThreadPoolTest, WorkersAsleepAfterTheirSpinWakeForTheNextCall) {
  ThreadPool pool(2);
  ExpectEachIndexOnce(pool, 1000, 1);
  // Longer than the spin (200 us): the worker blocks on its condition variable.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ExpectEachIndexOnce(pool, 1000, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ExpectEachIndexOnce(pool, 3, 1);
}

TEST(ThreadPoolTest, CallsFromSeveralThreadsAreSerialized) {
  ThreadPool pool(2);
  // The caller whose chunks are running (0: none); a chunk of another
  // caller's call while they run means two calls interleaved.
  std::atomic<int> owner{0};
  std::atomic<int> running{0};
  std::atomic<int> overlaps{0};
  std::atomic<int64_t> total{0};
  auto caller = [&](int id) {
    for (int call = 0; call < 200; ++call) {
      pool.ParallelFor(8, 1, [&](int64_t begin, int64_t end) {
        int expected = 0;
        if (!owner.compare_exchange_strong(expected, id) && expected != id) overlaps.fetch_add(1);
        running.fetch_add(1);
        total.fetch_add(end - begin);
        std::this_thread::yield();
        if (running.fetch_sub(1) == 1) {
          int mine = id;
          owner.compare_exchange_strong(mine, 0);
        }
      });
    }
  };
  std::thread a(caller, 1), b(caller, 2), c(caller, 3);
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(total.load(), 3 * 200 * 8);
  EXPECT_EQ(overlaps.load(), 0);
}

}  // namespace
}  // namespace blockserve
