#include "launcher.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace xpu::run {
namespace fs = std::filesystem;

#ifndef XPU_RUN_SHIM_INSTALL_RELPATH
#define XPU_RUN_SHIM_INSTALL_RELPATH "../lib/libxpushim.so"
#endif

namespace {

constexpr std::string_view kShimBasename = "libxpushim.so";

// ---- environment ---------------------------------------------------------------------------

std::string_view basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::vector<std::string_view> split_preload(std::string_view list) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= list.size(); ++i) {
    if (i == list.size() || list[i] == ':' || list[i] == ' ' || list[i] == '\t' ||
        list[i] == '\n') {
      if (i > start) out.push_back(list.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// ld.so splits LD_PRELOAD at ':' and blanks, so such a path would preload something else.
Status check_preloadable(const std::string& path) {
  if (path.find_first_of(": \t\n") != std::string::npos)
    return make_error(Errc::invalid_config,
                      fmt::format("the shim's path '{}' contains ':' or a blank, which LD_PRELOAD "
                                  "cannot express; install or copy libxpushim.so elsewhere",
                                  path));
  return Ok{};
}

bool readable_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), R_OK) == 0;
}

Result<std::string> accept_shim(const fs::path& path) {
  const std::string s = path.lexically_normal().string();
  if (auto ok = check_preloadable(s); !ok) return ok.error();
  return s;
}

// ---- launching -----------------------------------------------------------------------------

// The child's pid for the signal handler; 0 while there is none. Constant-initialised.
std::atomic<pid_t> g_child{0};

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

void forward_signal(int sig, siginfo_t* info, void* /*context*/) {
  // Ctrl-C, Ctrl-\ and window resizes come from the terminal to the whole foreground process
  // group, the child included (it stays in ours): forwarding them would deliver them twice.
  const bool from_terminal = info != nullptr && info->si_code == SI_KERNEL &&
                             (sig == SIGINT || sig == SIGQUIT || sig == SIGWINCH);
  const pid_t child = g_child.load();
  if (!from_terminal && child > 0) ::kill(child, sig);
}

void print_error(std::string_view message) {
  std::fputs(fmt::format("xpu-run: {}\n", message).c_str(), stderr);
}

}  // namespace

EnvBlock::EnvBlock(std::vector<std::pair<std::string, std::string>> vars) {
  for (auto& [name, value] : vars) {
    if (!get(name)) vars_.emplace_back(std::move(name), std::move(value));
  }
}

EnvBlock EnvBlock::from_environ(char** envp) {
  std::vector<std::pair<std::string, std::string>> vars;
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;  // not a variable
    vars.emplace_back(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  // The constructor keeps the first of duplicate names, as getenv() does.
  return EnvBlock(std::move(vars));
}

std::optional<std::string> EnvBlock::get(std::string_view name) const {
  for (const auto& [n, v] : vars_)
    if (n == name) return v;
  return std::nullopt;
}

void EnvBlock::set(std::string_view name, std::string_view value) {
  for (auto& [n, v] : vars_) {
    if (n == name) {
      v = std::string(value);
      return;
    }
  }
  vars_.emplace_back(std::string(name), std::string(value));
}

EnvLookup EnvBlock::lookup() const {
  return [this](std::string_view name) { return get(name); };
}

std::vector<std::string> EnvBlock::entries() const {
  std::vector<std::string> out;
  out.reserve(vars_.size());
  for (const auto& [n, v] : vars_) out.push_back(n + "=" + v);
  return out;
}

std::string default_group_name(long pid, std::uint64_t unix_ns) {
  return fmt::format("run-{}-{}", pid, unix_ns);
}

std::string merge_ld_preload(const std::optional<std::string>& existing, const std::string& shim,
                             std::vector<std::string>* notes) {
  std::string out = shim;
  if (!existing) return out;
  for (std::string_view entry : split_preload(*existing)) {
    if (entry == shim) {
      if (notes) notes->push_back("LD_PRELOAD already names the shim; it is kept once, first");
      continue;
    }
    if (basename_of(entry) == kShimBasename) {
      if (notes)
        notes->push_back(fmt::format("LD_PRELOAD named another xpushim ({}); it is replaced by {}",
                                     entry, shim));
      continue;
    }
    out += ':';
    out += entry;
  }
  return out;
}

bool preload_has_shim(const std::optional<std::string>& ld_preload, const std::string& shim) {
  if (!ld_preload) return false;
  for (std::string_view entry : split_preload(*ld_preload))
    if (entry == shim || basename_of(entry) == kShimBasename) return true;
  return false;
}

std::string attribute_to_flag(const std::string& message, const std::vector<FlagValue>& flags) {
  // Whole names only: XPU_COMPUTE must not match inside XPU_COMPUTE_MODE.
  auto name_char = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (const FlagValue& f : flags) {
    for (auto pos = message.find(f.env); pos != std::string::npos;
         pos = message.find(f.env, pos + 1)) {
      const auto end = pos + f.env.size();
      if ((pos == 0 || !name_char(message[pos - 1])) &&
          (end == message.size() || !name_char(message[end])))
        return f.flag + ": " + message;
    }
  }
  return message;
}

Result<LaunchPlan> compose_environment(const EnvBlock& inherited,
                                       const std::vector<FlagValue>& flags,
                                       const std::string& shim_path,
                                       const std::string& default_group) {
  LaunchPlan plan;
  plan.env = inherited;
  auto set = [&plan](std::string_view name, std::string_view value) {
    plan.env.set(name, value);
    plan.changes.emplace_back(std::string(name), std::string(value));
  };
  bool group_given = false;
  for (const FlagValue& f : flags) {
    if (auto old = inherited.get(f.env); old && *old != f.value)
      plan.notes.push_back(fmt::format("{} overrides the inherited {}='{}' with '{}'", f.flag,
                                       f.env, *old, f.value));
    set(f.env, f.value);
    group_given = group_given || f.env == "XPU_GROUP";
  }
  if (!group_given) {
    if (auto g = inherited.get("XPU_GROUP")) {
      // Nested runs and launchers that set XPU_GROUP join that group instead of splitting it.
      plan.notes.push_back(fmt::format("joining the inherited group XPU_GROUP='{}'", *g));
    } else if (inherited.get("CUDA_DEVICE_MEMORY_SHARED_CACHE")) {
      // HAMi groups the whole container by this path; a group of our own would split it.
      plan.notes.push_back(
          "keeping HAMi's container-wide group (CUDA_DEVICE_MEMORY_SHARED_CACHE is set)");
    } else {
      set("XPU_GROUP", default_group);
    }
  }
  set("LD_PRELOAD", merge_ld_preload(inherited.get("LD_PRELOAD"), shim_path, &plan.notes));

  auto settings = load_settings(plan.env.lookup());
  if (!settings) return settings.error();
  plan.settings = std::move(settings).value();
  return plan;
}

Status update_plan(LaunchPlan& plan, std::string_view name, std::string_view value) {
  plan.env.set(name, value);
  bool found = false;
  for (auto& [n, v] : plan.changes) {
    if (n == name) {
      v = std::string(value);
      found = true;
    }
  }
  if (!found) plan.changes.emplace_back(std::string(name), std::string(value));
  auto settings = load_settings(plan.env.lookup());
  if (!settings) return settings.error();
  plan.settings = std::move(settings).value();
  return Ok{};
}

Result<std::string> locate_shim(const EnvBlock& env, const std::string& exe_path) {
  if (auto explicit_path = env.get("XPU_SHIM_LIBRARY")) {
    if (explicit_path->empty())
      return make_error(Errc::invalid_config,
                        "XPU_SHIM_LIBRARY is set but empty. Accepted: the path of libxpushim.so, "
                        "or unset it to use the one installed next to xpu-run");
    std::error_code ec;
    const fs::path p = fs::absolute(*explicit_path, ec);
    if (ec || !readable_file(p))
      return make_error(Errc::invalid_config,
                        fmt::format("XPU_SHIM_LIBRARY='{}' is not a readable file. Accepted: the "
                                    "path of libxpushim.so",
                                    *explicit_path));
    return accept_shim(p);
  }
  std::vector<std::string> tried;
  if (!exe_path.empty()) {
    const fs::path dir = fs::path(exe_path).parent_path();
    // An installed <prefix>/bin/xpu-run first; then the build tree, where CMake placed the shim
    // at a path relative to this executable's output directory.
    std::vector<fs::path> candidates = {dir / XPU_RUN_SHIM_INSTALL_RELPATH};
#ifdef XPU_RUN_SHIM_BUILD_RELPATH
    candidates.push_back(dir / XPU_RUN_SHIM_BUILD_RELPATH);
#endif
    for (const fs::path& c : candidates) {
      const fs::path normal = c.lexically_normal();
      if (readable_file(normal)) return accept_shim(normal);
      tried.push_back(normal.string());
    }
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  return make_error(
      Errc::unavailable,
      fmt::format("cannot find libxpushim.so (tried: {}); set XPU_SHIM_LIBRARY to "
                  "its path",
                  list.empty() ? "nothing, the xpu-run executable's path is unknown" : list));
}

int launch(const std::vector<std::string>& command, const EnvBlock& env, int* killed_by) {
  *killed_by = 0;
  if (command.empty()) return kExitUsage;
  // Everything the child needs is built before fork(): if the CUDA probe started driver
  // threads, the child may only make async-signal-safe calls until execve.
  const std::vector<std::string> env_entries = env.entries();
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env_entries) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // exec's errno comes back through a close-on-exec pipe: EOF means exec succeeded.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    print_error(fmt::format("cannot start '{}': pipe: {}", command[0], std::strerror(errno)));
    return kExitCannotStart;
  }
  // With SIGCHLD ignored the kernel would reap the child before we can read its status.
  struct sigaction old_chld {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &dfl, &old_chld);

  // Block the forwarded signals until the handlers know the child's pid; one that arrives in
  // between stays pending and is forwarded then.
  sigset_t forwarded, old_mask;
  sigemptyset(&forwarded);
  for (int sig : kForwarded) sigaddset(&forwarded, sig);
  ::sigprocmask(SIG_BLOCK, &forwarded, &old_mask);

  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(exec_pipe[0]);
    ::sigaction(SIGCHLD, &old_chld, nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    ::execvpe(argv[0], argv.data(), envp.data());
    const int err = errno;
    [[maybe_unused]] ssize_t w = ::write(exec_pipe[1], &err, sizeof err);
    ::_exit(kExitNotFound);
  }
  const int fork_errno = errno;
  ::close(exec_pipe[1]);
  if (pid < 0) {
    ::close(exec_pipe[0]);
    ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGCHLD, &old_chld, nullptr);
    print_error(fmt::format("cannot start '{}': fork: {}", command[0], std::strerror(fork_errno)));
    return kExitCannotStart;
  }

  g_child.store(pid);
  struct sigaction fwd {};
  fwd.sa_sigaction = forward_signal;
  fwd.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&fwd.sa_mask);
  struct sigaction old_actions[std::size(kForwarded)];
  for (std::size_t i = 0; i < std::size(kForwarded); ++i) {
    ::sigaction(kForwarded[i], &fwd, &old_actions[i]);
    // A signal we were started with ignored (nohup, a background job's SIGINT) stays ignored:
    // the child inherited the same, and the caller asked for exactly that.
    if (!(old_actions[i].sa_flags & SA_SIGINFO) && old_actions[i].sa_handler == SIG_IGN)
      ::sigaction(kForwarded[i], &old_actions[i], nullptr);
  }
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);

  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  ::close(exec_pipe[0]);

  int status = 0;
  pid_t waited = 0;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  const int wait_errno = errno;

  g_child.store(0);
  for (std::size_t i = 0; i < std::size(kForwarded); ++i)
    ::sigaction(kForwarded[i], &old_actions[i], nullptr);
  ::sigaction(SIGCHLD, &old_chld, nullptr);

  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    const bool not_found = exec_errno == ENOENT || exec_errno == ENOTDIR;
    print_error(fmt::format(
        "cannot run '{}': {}{}", command[0], std::strerror(exec_errno),
        not_found && command[0].find('/') == std::string::npos ? " (searched PATH)" : ""));
    return not_found ? kExitNotFound : kExitNotExecutable;
  }
  if (waited < 0) {
    print_error(
        fmt::format("lost track of '{}': waitpid: {}", command[0], std::strerror(wait_errno)));
    return kExitCannotStart;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) {
    *killed_by = WTERMSIG(status);
    return 128 + WTERMSIG(status);
  }
  return kExitCannotStart;
}

void die_of_signal(int sig) {
  std::fflush(nullptr);
  // The child already dumped core if it was going to; a second core of xpu-run helps nobody.
  struct rlimit no_core {};
  ::setrlimit(RLIMIT_CORE, &no_core);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(sig, &dfl, nullptr);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, sig);
  ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
  ::kill(::getpid(), sig);
}

}  // namespace xpu::run
