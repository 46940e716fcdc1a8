// trellis-verbs-bw: unidirectional point-to-point bandwidth of the verbs transport between two
// processes of this machine (rank 0 sends, rank 1 receives), measured like perftest's ib_write_bw:
// a fixed number of messages of one size with a window in flight, after a warm-up. The last
// message of each run is checked byte for byte. Prints one line per size:
//   verbs_bw bytes=1048576 iters=200 window=16 qps=2 nics=rxe0:1 MB/s=61.3
// Usage: trellis-verbs-bw [-s BYTES[,BYTES...]] [-n ITERS] [-w WINDOW] [-p SPIN_POLLS]
// (-p: polls before a waiting rank sleeps on the completion channel, default 0; TRELLIS_IB_* select
// devices and queue pairs)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/bootstrap.h"
#include "transport/verbs/verbs_transport.h"

using namespace trellis;
using trellis::transport::Request;

namespace {

struct Args {
  std::vector<size_t> sizes = {1 << 20};
  int iters = 200;
  int window = 16;
  int spin = 0;  // polls without blocking before progress() may sleep on the completion channel
};

uint8_t pat(size_t i, int k) { return static_cast<uint8_t>(i * 7 + k); }

// One rank's side. Returns the MB/s (rank 0) or 0; -1 on error.
double runRank(int rank, const UniqueIdData& root, const Args& a) {
  Bootstrap bs;
  std::atomic<bool> abort{false};
  Status s = bs.init(root, rank, 2, 60, &abort);
  if (!s.isOk()) return std::fprintf(stderr, "rank %d: %s\n", rank, s.message().c_str()), -1;
  auto opt = transport::verbsOptionsFromParams();
  if (!opt) return std::fprintf(stderr, "%s\n", opt.status().message().c_str()), -1;
  auto t = transport::VerbsTransport::create(bs, {1 - rank}, opt.value(), &abort);
  if (!t) return std::fprintf(stderr, "rank %d: %s\n", rank, t.status().message().c_str()), -1;
  if (!t.value()->reaches(1 - rank)) return std::fprintf(stderr, "rank %d: no verbs connection\n", rank), -1;
  transport::VerbsTransport& tr = *t.value();
  double result = 0;
  for (size_t bytes : a.sizes) {
    std::vector<uint8_t> buf(bytes * a.window);
    std::vector<Request> reqs(a.window);
    auto run = [&](int iters) -> std::string {
      int posted = 0, done = 0, lastSlot = 0, idle = 0;
      std::vector<bool> busy(a.window, false);
      while (done < iters) {
        for (int w = 0; w < a.window; ++w) {
          if (busy[w] && reqs[w].isDone()) busy[w] = false, ++done;
          if (!busy[w] && posted < iters) {
            uint8_t* p = buf.data() + w * bytes;
            if (rank == 0 && posted == iters - 1)
              for (size_t i = 0; i < bytes; ++i) p[i] = pat(i, iters);
            Status q = rank == 0 ? tr.postSend(1, p, bytes, &reqs[w]) : tr.postRecv(0, p, bytes, &reqs[w]);
            if (!q.isOk()) return q.message();
            busy[w] = true;
            if (posted == iters - 1) lastSlot = w;
            ++posted;
          }
        }
        bool did = false;
        Status q = tr.progress(idle < a.spin ? 0 : 100, &did);
        if (!q.isOk()) return q.message();
        idle = did ? 0 : idle + 1;
      }
      if (rank == 1) {  // messages match in posted order: the last receive holds the last message
        const uint8_t* p = buf.data() + static_cast<size_t>(lastSlot) * bytes;
        for (size_t i = 0; i < bytes; ++i)
          if (p[i] != pat(i, iters)) return "byte " + std::to_string(i) + " of the last message is wrong";
      }
      return "";
    };
    std::string e = run(std::max(a.window, a.iters / 10));  // warm-up: registrations, first faults
    if (e.empty()) e = bs.barrier().message();
    auto t0 = std::chrono::steady_clock::now();
    if (e.empty()) e = run(a.iters);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (e.empty()) e = bs.barrier().message();
    if (!e.empty()) return std::fprintf(stderr, "rank %d: %zu bytes: %s\n", rank, bytes, e.c_str()), -1;
    tr.releaseCallerMemory();
    if (rank == 0) {
      result = static_cast<double>(bytes) * a.iters / secs / 1e6;
      std::printf("verbs_bw bytes=%zu iters=%d window=%d spin=%d qps=%d nics=%s MB/s=%.2f\n", bytes, a.iters,
                  a.window, a.spin, tr.queuePairs(1), tr.devices().c_str(), result);
      std::fflush(stdout);
    }
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "-s") {
      a.sizes.clear();
      for (char* tok = std::strtok(argv[i + 1], ","); tok; tok = std::strtok(nullptr, ","))
        a.sizes.push_back(std::strtoull(tok, nullptr, 10));
    } else if (f == "-n") {
      a.iters = std::atoi(argv[i + 1]);
    } else if (f == "-w") {
      a.window = std::atoi(argv[i + 1]);
    } else if (f == "-p") {
      a.spin = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [-s BYTES[,BYTES...]] [-n ITERS] [-w WINDOW] [-p SPIN_POLLS]\n", argv[0]);
      return 2;
    }
  }
  if (a.sizes.empty() || a.iters < 1 || a.window < 1) return std::fprintf(stderr, "bad arguments\n"), 2;
  auto root = startBootstrapRoot(0, 120);
  if (!root) return std::fprintf(stderr, "%s\n", root.status().message().c_str()), 1;
  pid_t child = fork();
  if (child < 0) return std::perror("fork"), 1;
  if (child == 0) _exit(runRank(1, root.value(), a) < 0 ? 1 : 0);
  double r = runRank(0, root.value(), a);
  int status = 0;
  waitpid(child, &status, 0);
  return r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? 1 : 0;
}
