// trellis-run: the single-machine launcher. Creates the job's unique id (the
// rendezvous root then lives in this process), forks N ranks with
// TRELLIS_RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_SIZE/ UNIQUE_ID/ROOT_ADDR set,
// prefixes every output line with the rank, and when one rank fails kills the
// others (SIGTERM, then SIGKILL after 2 s) and exits non-zero naming the rank.
// Every wait is bounded: the job by --timeout, the kill escalation by 2 s, and
// the draining of output pipes still held open by a rank's own children (a
// daemon it started) by 2 s after the last rank exited.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "trellis/trellis.h"

namespace {

volatile sig_atomic_t gSignal = 0;
void onSignal(int sig) { gSignal = sig; }

struct Stream {
  int fd = -1;
  int rank = 0;
  FILE* out = nullptr;
  std::string partial;
};

// The id layout of src/core/bootstrap.h: family at 6, port (network order) at
// 8, address at 12.
std::string rootAddr(const trellisUniqueId& id) {
  uint16_t family, portBe;
  std::memcpy(&family, id.internal + 6, 2);
  std::memcpy(&portBe, id.internal + 8, 2);
  char host[64] = "?";
  const unsigned char* a = reinterpret_cast<const unsigned char*>(id.internal + 12);
  if (family == 2) {
    std::snprintf(host, sizeof host, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
  } else {
    std::string h = "[";
    for (int i = 0; i < 16; i += 2) {
      char b[8];
      std::snprintf(b, sizeof b, "%s%x", i ? ":" : "", (a[i] << 8) | a[i + 1]);
      h += b;
    }
    std::snprintf(host, sizeof host, "%s]", h.c_str());
  }
  return std::string(host) + ":" + std::to_string(ntohs(portBe));
}

std::string hexId(const trellisUniqueId& id) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (char c : id.internal) {
    unsigned char u = static_cast<unsigned char>(c);
    s += d[u >> 4];
    s += d[u & 15];
  }
  return s;
}

void emit(Stream& s, bool tag, const char* data, size_t n) {
  s.partial.append(data, n);
  size_t pos;
  while ((pos = s.partial.find('\n')) != std::string::npos) {
    if (tag) std::fprintf(s.out, "[%d] ", s.rank);
    std::fwrite(s.partial.data(), 1, pos + 1, s.out);
    s.partial.erase(0, pos + 1);
  }
  std::fflush(s.out);
}

// This process's environment with `set` added (replacing variables of the same name).
std::vector<std::string> rankEnv(const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string name = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (const auto& [k, v] : set) replaced = replaced || k == name;
    if (!replaced) out.push_back(kv);
  }
  for (const auto& [k, v] : set) out.push_back(k + "=" + v);
  return out;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

}  // namespace

int main(int argc, char** argv) {
  // The launcher's own options come first; the program starts at "--" or at the
  // first word that is not one of them (so `trellis-run -n 2 sh -c '...'` keeps
  // the program's -c).
  int split = 1;
  while (split < argc) {
    std::string a = argv[split];
    if (a == "--") break;
    if (a == "-n" || a == "--np" || a == "--timeout" || a == "--bind-to") {
      split += 2;
      continue;
    }
    if (a.rfind("--np=", 0) == 0 || a.rfind("--timeout=", 0) == 0 || a.rfind("--bind-to=", 0) == 0 || a == "--no-tag" ||
        a == "--tag-output" || a == "-h" || a == "--help" ||
        (a.size() > 2 && a.rfind("-n", 0) == 0)) {
      ++split;
      continue;
    }
    break;
  }
  split = std::min(split, argc);
  std::vector<std::string> cmd;
  for (int i = split + (split < argc && std::string(argv[split]) == "--" ? 1 : 0); i < argc; ++i)
    cmd.push_back(argv[i]);
  CLI::App app{
      "trellis-run: launch N ranks of a Trellis program on this machine\n"
      "usage: trellis-run -n N [--timeout S] [--tag-output|--no-tag] [--bind-to auto|core|none] [--] "
      "program [args...]\n"
      "Each rank gets TRELLIS_RANK, TRELLIS_WORLD_SIZE, TRELLIS_LOCAL_RANK, "
      "TRELLIS_LOCAL_SIZE,\n"
      "TRELLIS_UNIQUE_ID (256 hex chars) and TRELLIS_ROOT_ADDR (host:port of "
      "the rendezvous root,\n"
      "which lives in this process). Exit status: 0 when every rank exits 0; "
      "the failing rank's code\n"
      "(128+signal when killed); 124 on --timeout; 127 when the program cannot "
      "be run."};
  int n = 1;
  double timeoutS = 0;
  bool noTag = false, tagOutput = false;
  std::string bindTo = "auto";
  app.add_option("-n,--np", n, "number of ranks")->required()->check(CLI::Range(1, 4096));
  app.add_option("--timeout", timeoutS,
                 "kill every rank and exit 124 after this many seconds (0: never)");
  app.add_flag("--tag-output", tagOutput, "prefix every output line with [rank] (the default)");
  app.add_flag("--no-tag", noTag, "do not prefix output lines with [rank]");
  app.add_option("--bind-to", bindTo,
                 "core: rank r runs only on the r-th CPU this launcher may use (round robin when ranks "
                 "outnumber them); none: wherever the kernel puts it; auto (the default): core when "
                 "every rank gets a CPU of its own, else none")
      ->check(CLI::IsMember({"auto", "core", "none"}));
  try {
    app.parse(split, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (cmd.empty()) {
    std::fprintf(stderr, "trellis-run: no program given\n%s", app.help().c_str());
    return 2;
  }
  if (noTag && tagOutput) {
    std::fprintf(stderr, "trellis-run: --tag-output and --no-tag exclude each other\n");
    return 2;
  }
  const bool tag = !noTag;

  trellisUniqueId id;
  if (trellisGetUniqueId(&id) != trellisSuccess) {
    std::fprintf(stderr, "trellis-run: cannot create the job id: %s\n",
                 trellisGetLastError(nullptr));
    return 1;
  }
  const std::string hex = hexId(id), root = rootAddr(id);
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // CPUs to bind to: those of this launcher's affinity mask, in order. Two spinning ranks left to
  // the kernel can land on one CPU and take turns (back-to-back 8-byte broadcasts at 2 ranks on 2
  // CPUs: 4.5-5 us a call in about one run in six instead of 0.25).
  std::vector<int> cpus;
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &mask)) cpus.push_back(c);
  const bool bind = !cpus.empty() && (bindTo == "core" || (bindTo == "auto" && n <= static_cast<int>(cpus.size())));

  std::vector<pid_t> pids(n, -1), rankPids(n, -1);
  std::vector<Stream> streams;
  for (int r = 0; r < n; ++r) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      std::perror("trellis-run: pipe");
      return 1;
    }
    // Everything the child needs is built here: the launcher already runs the rendezvous root's
    // thread, and between fork and exec the child only makes async-signal-safe calls (no malloc,
    // no stdio, whose locks another thread may have held at the fork).
    const std::vector<std::string> env = rankEnv({{"TRELLIS_RANK", std::to_string(r)},
                                                  {"TRELLIS_WORLD_SIZE", std::to_string(n)},
                                                  {"TRELLIS_LOCAL_RANK", std::to_string(r)},
                                                  {"TRELLIS_LOCAL_SIZE", std::to_string(n)},
                                                  {"TRELLIS_UNIQUE_ID", hex},
                                                  {"TRELLIS_ROOT_ADDR", root}});
    std::vector<char*> envp, args;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    for (const auto& a : cmd) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string execFailed = "trellis-run: cannot run '" + cmd[0] + "': ";
    const bool nullStdin = r != 0 || isatty(0);
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("trellis-run: fork");
      for (int k = 0; k < r; ++k) kill(-pids[k], SIGKILL), waitpid(pids[k], nullptr, 0);
      return 1;
    }
    if (pid == 0) {
      setpgid(0, 0);
      if (bind) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[r % cpus.size()], &one);
        sched_setaffinity(0, sizeof one, &one);  // a failure leaves the rank unbound
      }
      // Ranks lead their own process groups (so a Ctrl-C reaches only the launcher, which
      // forwards it): a rank reading a terminal would be stopped, so only rank 0 keeps a stdin
      // that is a pipe or a file, as mpirun does; the others read /dev/null.
      if (nullStdin) {
        int devNull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devNull >= 0) dup2(devNull, 0);
      }
      dup2(out[1], 1);
      dup2(err[1], 2);
      execvpe(args[0], args.data(), envp.data());
      const char* why = strerror(errno);
      ssize_t ignored = write(2, execFailed.data(), execFailed.size());
      ignored = write(2, why, strlen(why));
      ignored = write(2, "\n", 1);
      (void)ignored;
      _exit(127);
    }
    pids[r] = pid;
    rankPids[r] = pid;
    close(out[1]);
    close(err[1]);
    streams.push_back({out[0], r, stdout, {}});
    streams.push_back({err[0], r, stderr, {}});
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  int exitCode = 0, failedRank = -1, running = n;
  std::vector<int> status(n, 0);
  Clock::time_point killAt{}, drainUntil{};
  bool terminating = false;
  auto terminateAll = [&](int sig) {
    for (int r = 0; r < n; ++r)
      if (pids[r] > 0) kill(-pids[r], sig), kill(pids[r], sig);
  };
  size_t openStreams = streams.size();
  while (running > 0 || openStreams > 0) {
    std::vector<pollfd> pf;
    std::vector<size_t> idx;
    for (size_t i = 0; i < streams.size(); ++i)
      if (streams[i].fd >= 0) {
        pf.push_back({streams[i].fd, POLLIN, 0});
        idx.push_back(i);
      }
    int rc = pf.empty() ? (usleep(20000), 0) : poll(pf.data(), pf.size(), 100);
    for (int k = 0; rc > 0 && k < static_cast<int>(pf.size()); ++k) {
      if (!pf[k].revents) continue;
      Stream& s = streams[idx[k]];
      char buf[65536];
      ssize_t got = read(s.fd, buf, sizeof buf);
      if (got > 0) {
        emit(s, tag, buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (!s.partial.empty()) emit(s, tag, "\n", 1);
        close(s.fd);
        s.fd = -1;
        --openStreams;
      }
    }
    for (int r = 0; r < n; ++r) {
      if (pids[r] <= 0) continue;
      int st = 0;
      pid_t w = waitpid(pids[r], &st, WNOHANG);
      if (w != pids[r]) continue;
      pids[r] = -1;
      status[r] = st;
      --running;
      bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (!ok && failedRank < 0 && !terminating) {
        failedRank = r;
        exitCode = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (running > 0) {
          std::fprintf(stderr, "trellis-run: rank %d %s; terminating the other %d rank(s)\n", r,
                       describe(st).c_str(), running);
          terminating = true;
          terminateAll(SIGTERM);
          killAt = Clock::now() + std::chrono::seconds(2);
        }
      }
    }
    if (gSignal && !terminating) {
      std::fprintf(stderr, "trellis-run: got signal %d; forwarding to %d rank(s)\n",
                   static_cast<int>(gSignal), running);
      terminating = true;
      terminateAll(gSignal);
      killAt = Clock::now() + std::chrono::seconds(2);
      if (exitCode == 0) exitCode = 128 + gSignal;
    }
    if (timeoutS > 0 && !terminating &&
        Clock::now() - start > std::chrono::duration<double>(timeoutS)) {
      std::fprintf(stderr, "trellis-run: timeout after %g s; killing %d rank(s)\n", timeoutS,
                   running);
      terminating = true;
      terminateAll(SIGTERM);
      killAt = Clock::now() + std::chrono::seconds(2);
      exitCode = 124;
    }
    if (terminating && running > 0 && Clock::now() > killAt) {
      terminateAll(SIGKILL);
      killAt = Clock::now() + std::chrono::hours(1);
    }
    // Output pipes held open by a rank's children must not keep us waiting once
    // all ranks are gone: drain for at most 2 s, then stop the leftovers (each
    // rank leads its own process group).
    if (running == 0 && openStreams > 0) {
      if (drainUntil == Clock::time_point{})
        drainUntil = Clock::now() + std::chrono::milliseconds(terminating ? 500 : 2000);
      if (Clock::now() >= drainUntil) {
        for (int r = 0; r < n; ++r) kill(-rankPids[r], SIGKILL);
        for (Stream& s : streams)
          if (s.fd >= 0 && !s.partial.empty()) emit(s, tag, "\n", 1);
        break;
      }
    }
  }
  if (failedRank >= 0)
    std::fprintf(stderr, "trellis-run: job failed: rank %d %s\n", failedRank,
                 describe(status[failedRank]).c_str());
  return exitCode;
}
