// Runs a command line with its stdout and stderr captured apart, every wait
// bounded by a deadline; used by the launcher and benchmark tests to drive the
// real binaries.
#pragma once

#include <string>
#include <vector>

namespace trellis::test {

struct ProcResult {
  int status = -1;       ///< waitpid status; -1 when the deadline passed (the process
                         ///< was killed)
  double seconds = 0;    ///< wall time until it exited
  std::string out, err;  ///< everything it wrote
};

/// A process started with argv, read while it runs. Destroying it kills what is
/// left.
class Proc {
 public:
  explicit Proc(const std::vector<std::string>& argv);
  ~Proc();
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  int pid() const { return pid_; }
  /// Reads output until `count` lines containing `needle` were seen on stdout,
  /// or the deadline.
  bool waitForLines(const std::string& needle, int count, double timeoutS);
  /// Reads until the process exits or the deadline (then SIGKILL, status -1).
  ProcResult finish(double timeoutS);

 private:
  bool pump(int timeoutMs);
  int pid_ = -1, out_ = -1, err_ = -1;
  double start_ = 0;
  ProcResult res_;
};

/// Starts argv and finishes it within timeoutS.
ProcResult runProc(const std::vector<std::string>& argv, double timeoutS);

/// The exit code, or 128+signal when killed by a signal, or -1 when it did not
/// exit in time.
int exitCode(const ProcResult& r);

/// Lines of s (without the newlines).
std::vector<std::string> lines(const std::string& s);

}  // namespace trellis::test
