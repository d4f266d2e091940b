// Everything between the parsed command line and the running command: the child's environment
// (flags -> variables, the default group, LD_PRELOAD), finding libxpushim.so, and fork/exec/wait
// with signal forwarding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "xpu/common/result.hpp"
#include "xpu/common/settings.hpp"

namespace xpu::run {

// An environment as a list of NAME=VALUE, in order. Built from `environ` in main and from a
// literal list in tests, so composition never touches the real environment.
class EnvBlock {
 public:
  EnvBlock() = default;
  explicit EnvBlock(std::vector<std::pair<std::string, std::string>> vars);
  static EnvBlock from_environ(char** envp);

  std::optional<std::string> get(std::string_view name) const;
  void set(std::string_view name, std::string_view value);
  // For load_settings(); valid while this block lives and is not modified.
  EnvLookup lookup() const;
  std::vector<std::string> entries() const;  // "NAME=VALUE", for execve
  const std::vector<std::pair<std::string, std::string>>& vars() const { return vars_; }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

// "run-<pid>-<unix ns>": unique on the node, and recognisable in `xpu-run status`.
std::string default_group_name(long pid, std::uint64_t unix_ns);

// `shim` first, then the user's entries in order. Entries are separated by ':' or blanks (as
// ld.so reads them); empty ones are dropped, and so is any earlier copy of the shim (the same
// path, or any other libxpushim.so: two shims in one process would both interpose).
std::string merge_ld_preload(const std::optional<std::string>& existing, const std::string& shim,
                             std::vector<std::string>* notes);

// Whether an LD_PRELOAD list already loads an xpushim (this process then runs under one).
bool preload_has_shim(const std::optional<std::string>& ld_preload, const std::string& shim);

// Prefixes a settings error with the flag that set the variable it names ("--mem: XPU_MEM_LIMIT
// ..."), so the user sees which argument to fix. Unchanged when no flag set a named variable.
std::string attribute_to_flag(const std::string& message, const std::vector<FlagValue>& flags);

struct LaunchPlan {
  EnvBlock env;       // the child's complete environment
  Settings settings;  // load_settings() of `env`: what the shim in the child will read
  std::vector<std::pair<std::string, std::string>> changes;  // variables xpu-run set
  std::vector<std::string> notes;                            // for the info level
};

// Applies the flags, the default group and LD_PRELOAD to `inherited`, then parses the result as
// the shim will, so that conflicts with inherited variables (HAMi's included) are caught before
// anything starts. Errors name the variable and the accepted forms.
Result<LaunchPlan> compose_environment(const EnvBlock& inherited,
                                       const std::vector<FlagValue>& flags,
                                       const std::string& shim_path,
                                       const std::string& default_group);

// Replaces one variable of a composed plan and re-parses it (the device probe's rewrite).
Status update_plan(LaunchPlan& plan, std::string_view name, std::string_view value);

// libxpushim.so's absolute path: $XPU_SHIM_LIBRARY, else relative to the real path of the
// xpu-run executable (`exe_path`): <prefix>/bin -> <prefix>/lib, or the build tree's layout.
// The error lists every path tried.
Result<std::string> locate_shim(const EnvBlock& env, const std::string& exe_path);

// Exit statuses of xpu-run itself (besides the command's own).
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCannotStart = 125;
inline constexpr int kExitNotExecutable = 126;
inline constexpr int kExitNotFound = 127;

// Runs `command` with `env`, forwarding signals, and returns the status for xpu-run to exit
// with: the command's exit status, 126/127 when it could not be executed (after printing why),
// or 128+N when signal N killed it. In the last case `*killed_by` is N, so that main can die of
// the same signal.
int launch(const std::vector<std::string>& command, const EnvBlock& env, int* killed_by);

// Dies of `sig` as the command did (core dumps off, so the child's crash is not dumped twice);
// returns only if the signal does not kill (its default is to ignore).
void die_of_signal(int sig);

}  // namespace xpu::run
