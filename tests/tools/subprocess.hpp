// Runs a program with an exact environment and captures its output, for the end-to-end tests of
// xpu-run. Header-only; one helper per test binary.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

namespace xpu_test {

inline double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A wait status as a shell reports it: the exit status, or 128+N for death by signal N.
inline int shell_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

class Process {
 public:
  // Starts `argv` with exactly `env` (NAME=VALUE entries); stdin is /dev/null.
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return;
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      const int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, 0);
      dup2(out[1], 1);
      dup2(err[1], 2);
      // Our test runner may ignore or block signals; the program under test must not inherit it.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE})
        signal(sig, SIG_DFL);
      execve(args[0], args.data(), envp.data());
      _exit(99);
    }
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Process() {
    if (pid_ > 0 && !status_) {
      kill(pid_, SIGKILL);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

  // Reads stdout until it holds a full line (returned without '\n'), or nullopt at timeout/EOF.
  std::optional<std::string> read_line(double timeout_s) {
    const double deadline = now_s() + timeout_s;
    for (;;) {
      const auto nl = out_.find('\n', consumed_);
      if (nl != std::string::npos) {
        std::string line = out_.substr(consumed_, nl - consumed_);
        consumed_ = nl + 1;
        return line;
      }
      if (!pump(deadline - now_s()) && out_fd_ < 0) return std::nullopt;
      if (now_s() >= deadline) return std::nullopt;
    }
  }

  // Waits for the exit, collecting output; nullopt if it has not ended within the timeout.
  // Output is read to EOF only while the process runs: a leftover grandchild holding the pipes
  // open does not stall the wait.
  std::optional<int> wait(double timeout_s) {
    const double deadline = now_s() + timeout_s;
    while (!status_) {
      int st = 0;
      const pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = st;
        break;
      }
      if (now_s() >= deadline) return std::nullopt;
      if (out_fd_ < 0 && err_fd_ < 0) {
        usleep(2000);
      } else {
        pump(0.01);
      }
    }
    // Drain what the pipes already hold (no blocking: writers may linger).
    while (pump(0.05)) {
    }
    return status_;
  }

 private:
  // Polls the open pipes; returns true if anything was read.
  bool pump(double timeout_s) {
    pollfd fds[2];
    int* owners[2];
    std::string* sinks[2];
    nfds_t n = 0;
    if (out_fd_ >= 0) {
      fds[n] = {out_fd_, POLLIN, 0};
      owners[n] = &out_fd_;
      sinks[n++] = &out_;
    }
    if (err_fd_ >= 0) {
      fds[n] = {err_fd_, POLLIN, 0};
      owners[n] = &err_fd_;
      sinks[n++] = &err_;
    }
    if (n == 0) return false;
    const int ms = timeout_s <= 0 ? 0 : static_cast<int>(timeout_s * 1000) + 1;
    if (poll(fds, n, ms) <= 0) return false;
    bool got = false;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(r));
        got = true;
      } else if (r == 0) {
        close(*owners[i]);
        *owners[i] = -1;
      }
    }
    return got;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  std::string out_, err_;
  std::size_t consumed_ = 0;
  std::optional<int> status_;
};

}  // namespace xpu_test
