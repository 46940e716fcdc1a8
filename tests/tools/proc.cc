#include "proc.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

namespace trellis::test {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Proc::Proc(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
  start_ = now();
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  out_ = out[0];
  err_ = err[0];
}

Proc::~Proc() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_ >= 0) close(out_);
  if (err_ >= 0) close(err_);
}

// One poll over the open pipes; false once both are closed.
bool Proc::pump(int timeoutMs) {
  pollfd pf[2];
  int k = 0;
  if (out_ >= 0) pf[k++] = {out_, POLLIN, 0};
  if (err_ >= 0) pf[k++] = {err_, POLLIN, 0};
  if (k == 0) return false;
  if (poll(pf, k, timeoutMs) <= 0) return true;
  for (int i = 0; i < k; ++i) {
    if (!pf[i].revents) continue;
    char buf[65536];
    ssize_t got = read(pf[i].fd, buf, sizeof buf);
    bool isOut = pf[i].fd == out_;
    if (got > 0) {
      (isOut ? res_.out : res_.err).append(buf, static_cast<size_t>(got));
    } else {
      close(pf[i].fd);
      (isOut ? out_ : err_) = -1;
    }
  }
  return true;
}

bool Proc::waitForLines(const std::string& needle, int count, double timeoutS) {
  const double end = now() + timeoutS;
  while (now() < end) {
    int seen = 0;
    for (const auto& l : lines(res_.out)) seen += l.find(needle) != std::string::npos;
    if (seen >= count) return true;
    if (!pump(50)) return false;
  }
  return false;
}

ProcResult Proc::finish(double timeoutS) {
  const double end = now() + timeoutS;
  while (now() < end && pump(50)) {
  }
  // The pipes are closed (or the deadline passed): the process is gone or must
  // go.
  int st = 0;
  pid_t w = 0;
  while (now() < end && (w = waitpid(pid_, &st, WNOHANG)) == 0) poll(nullptr, 0, 10);
  if (w == pid_) {
    res_.status = st;
  } else {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    res_.status = -1;
  }
  pid_ = -1;
  res_.seconds = now() - start_;
  return res_;
}

ProcResult runProc(const std::vector<std::string>& argv, double timeoutS) {
  Proc p(argv);
  return p.finish(timeoutS);
}

int exitCode(const ProcResult& r) {
  if (r.status < 0) return -1;
  if (WIFEXITED(r.status)) return WEXITSTATUS(r.status);
  if (WIFSIGNALED(r.status)) return 128 + WTERMSIG(r.status);
  return -1;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p < s.size()) {
    size_t e = s.find('\n', p);
    if (e == std::string::npos) e = s.size();
    out.push_back(s.substr(p, e - p));
    p = e + 1;
  }
  return out;
}

}  // namespace trellis::test
