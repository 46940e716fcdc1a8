// The torch backend's engine without torch: the communicator plus progress thread under the Work
// objects (python/csrc/engine.h). Ranks are threads of this process, each with its own Engine.
// Built and run whether or not torch is installed.
#include "engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace trellis_torch {
namespace {

/// Runs body(engine, rank) on `n` ranks, each a thread owning an Engine joined through one unique id.
void onRanks(int n, const std::function<void(Engine&, int)>& body, int timeoutS = 60) {
  trellisUniqueId id;
  ASSERT_EQ(trellisGetUniqueId(&id), trellisSuccess);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      Engine engine(id, r, n, timeoutS, "engine-test");
      body(engine, r);
    });
  }
  for (auto& t : threads) t.join();
}

/// Collects the outcomes of posted operations and waits for them.
class Outcomes {
 public:
  std::function<void(const Outcome&)> slot(int i) {
    return [this, i](const Outcome& o) {
      std::lock_guard<std::mutex> lock(mu_);
      got_.push_back({i, o, std::this_thread::get_id()});
      cv_.notify_all();
    };
  }
  void waitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return got_.size() >= n; }))
        << "only " << got_.size() << " of " << n << " operations completed";
  }
  struct Entry {
    int index;
    Outcome outcome;
    std::thread::id thread;
  };
  std::vector<Entry> entries() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Entry> got_;
};

constexpr int kRanks = 3, kOps = 50, kCount = 1000;

TEST(TorchEngine, RunsInPostingOrderOnItsOwnThread) {
  onRanks(kRanks, [&](Engine& e, int rank) {
    std::vector<std::vector<float>> bufs(kOps, std::vector<float>(kCount));
    Outcomes outs;
    for (int i = 0; i < kOps; ++i) {
      for (int k = 0; k < kCount; ++k) bufs[i][k] = static_cast<float>(rank + i + k);
      float* p = bufs[i].data();
      e.post(Op{"allreduce " + std::to_string(i), false,
                [p](trellisComm_t c) { return trellisAllReduce(p, p, kCount, trellisFloat32, trellisSum, c, nullptr); },
                outs.slot(i)});
    }
    outs.waitFor(kOps);
    auto got = outs.entries();
    ASSERT_EQ(got.size(), static_cast<size_t>(kOps));
    for (int i = 0; i < kOps; ++i) {
      EXPECT_EQ(got[i].index, i) << "rank " << rank << ": completions out of posting order";
      EXPECT_TRUE(got[i].outcome.ok()) << got[i].outcome.message;
      EXPECT_NE(got[i].thread, std::this_thread::get_id()) << "completed on the posting thread";
      for (int k = 0; k < kCount; k += 97) {
        ASSERT_EQ(bufs[i][k], static_cast<float>(kRanks * (i + k) + kRanks * (kRanks - 1) / 2))
            << "rank " << rank << " op " << i << " element " << k;
      }
    }
  });
}

TEST(TorchEngine, GroupedSendsAndReceivesDoNotDeadlock) {
  // Every rank sends 4 MiB to the next and receives from the previous, send first: outside a group
  // both sends would wait for receives that are queued behind them.
  constexpr size_t kBytes = 4 << 20;
  onRanks(kRanks, [&](Engine& e, int rank) {
    std::vector<unsigned char> out(kBytes), in(kBytes, 0);
    for (size_t i = 0; i < kBytes; ++i) out[i] = static_cast<unsigned char>(rank * 31 + i);
    const int next = (rank + 1) % kRanks, prev = (rank + kRanks - 1) % kRanks;
    Outcomes outs;
    std::vector<Op> ops;
    ops.push_back(Op{"send", true,
                     [&](trellisComm_t c) { return trellisSend(out.data(), kBytes, trellisUint8, next, c, nullptr); },
                     outs.slot(0)});
    ops.push_back(Op{"recv", true,
                     [&](trellisComm_t c) { return trellisRecv(in.data(), kBytes, trellisUint8, prev, c, nullptr); },
                     outs.slot(1)});
    e.postGroup(std::move(ops));
    outs.waitFor(2);
    for (auto& g : outs.entries()) EXPECT_TRUE(g.outcome.ok()) << g.outcome.message;
    for (size_t i = 0; i < kBytes; i += 4099) ASSERT_EQ(in[i], static_cast<unsigned char>(prev * 31 + i));
  });
}

TEST(TorchEngine, AFailedCallNamesRankCallAndTrellisMessage) {
  onRanks(2, [&](Engine& e, int rank) {
    Outcomes outs;
    float x = 1;
    e.post(Op{"broadcast from rank 9", false,
              [&](trellisComm_t c) { return trellisBroadcast(&x, &x, 1, trellisFloat32, 9, c, nullptr); },
              outs.slot(0)});
    outs.waitFor(1);
    const Outcome o = outs.entries()[0].outcome;
    EXPECT_EQ(o.result, trellisInvalidArgument);
    for (const char* word : {"trellis: rank ", " of 2 (engine-test)", "broadcast from rank 9 failed", "root 9"}) {
      EXPECT_NE(o.message.find(word), std::string::npos) << "rank " << rank << ": '" << word << "' missing in "
                                                         << o.message;
    }
  });
}

TEST(TorchEngine, AbortFailsTheCallInFlightAndThoseQueued) {
  // Rank 1 never posts the matching AllReduce (and keeps its communicator until rank 0 is done);
  // rank 0 aborts while its call waits.
  std::promise<void> rank0Done;
  std::shared_future<void> rank0DoneF = rank0Done.get_future().share();
  onRanks(2, [&](Engine& e, int rank) {
    if (rank != 0) {
      rank0DoneF.wait();
      return;
    }
    Outcomes outs;
    std::vector<float> x(1024, 1.0f);
    std::promise<void> started;
    for (int i = 0; i < 3; ++i) {
      e.post(Op{"allreduce " + std::to_string(i), false,
                [&, i](trellisComm_t c) {
                  if (i == 0) started.set_value();
                  return trellisAllReduce(x.data(), x.data(), x.size(), trellisFloat32, trellisSum, c, nullptr);
                },
                outs.slot(i)});
    }
    started.get_future().wait();
    const auto t0 = std::chrono::steady_clock::now();
    e.abort();
    outs.waitFor(3);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(s, 10.0) << "calls took " << s << " s to fail after the abort";
    for (auto& g : outs.entries()) {
      EXPECT_FALSE(g.outcome.ok()) << "call " << g.index << " succeeded after an abort";
      EXPECT_NE(g.outcome.message.find("allreduce " + std::to_string(g.index)), std::string::npos) << g.outcome.message;
    }
    EXPECT_NE(e.asyncError(), trellisSuccess);
    for (auto& g : outs.entries()) {
      EXPECT_NE(g.outcome.message.find("aborted"), std::string::npos) << g.outcome.message;
    }
    rank0Done.set_value();
  });
}

TEST(TorchEngine, DestroyingRunsWhatIsQueued) {
  std::atomic<int> completed{0};
  onRanks(2, [&](Engine& e, int) {
    auto buf = std::make_shared<std::vector<int>>(kOps, 1);
    for (int i = 0; i < kOps; ++i) {
      int* p = &(*buf)[i];
      e.post(Op{"allreduce", false,
                [p](trellisComm_t c) { return trellisAllReduce(p, p, 1, trellisInt32, trellisSum, c, nullptr); },
                [&completed, p, buf](const Outcome& o) {
                  if (o.ok() && *p == 2) completed.fetch_add(1);
                }});
    }
    // the Engine is destroyed on return, with (most of) the calls still queued
  });
  EXPECT_EQ(completed.load(), 2 * kOps);
}

}  // namespace
}  // namespace trellis_torch
