// xpu-run: runs a command under xpushim (see README.md). The steps, each in its own file:
// parse the command line (cli), compose the child's environment and find the shim (launcher),
// check quotas against the GPUs (device_probe), then fork/exec/wait (launcher); or print the
// node view (status).
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "cli.hpp"
#include "device_probe.hpp"
#include "launcher.hpp"
#include "status.hpp"

extern char** environ;

namespace xpu::run {
namespace {

void error_line(std::string_view message) {
  std::fputs(fmt::format("xpu-run: {}\n", message).c_str(), stderr);
}

std::uint64_t unix_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// The real path of this executable; the shim is found relative to it.
std::string own_executable() {
  std::error_code ec;
  const auto p = std::filesystem::canonical("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789@%+=:,./_-") == std::string::npos)
    return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Checks the quotas against the GPUs and pins ordinal keys to UUIDs, when a driver is here.
// Returns false after printing the error when the command must not start.
bool probe_and_pin(LaunchPlan& plan, const EnvBlock& inherited, const std::string& shim,
                   const std::vector<FlagValue>& flags) {
  if (plan.settings.mem_limit.empty()) return true;
  if (preload_has_shim(inherited.get("LD_PRELOAD"), shim)) {
    // Initialising CUDA here would register xpu-run itself with the node segment.
    plan.notes.push_back(
        "xpu-run itself runs under xpushim; the device check is left to the "
        "shim in the command");
    return true;
  }
  auto devices = probe_devices();
  if (!devices) {
    plan.notes.push_back(
        fmt::format("device check skipped: {}; the shim checks the quotas when "
                    "the command initialises CUDA",
                    devices.error().message));
    return true;
  }
  if (auto s = check_quotas(plan.settings, devices.value()); !s) {
    error_line(attribute_to_flag(s.error().message, flags));
    return false;
  }
  if (plan.settings.mem_limit_source != "XPU_MEM_LIMIT" ||
      !has_ordinal_keys(plan.settings.mem_limit))
    return true;
  const std::string before = plan.env.get("XPU_MEM_LIMIT").value_or("");
  auto pinned = rewrite_ordinal_keys(before, devices.value());
  if (!pinned) {
    error_line(attribute_to_flag(pinned.error().message, flags));
    return false;
  }
  LaunchPlan candidate = plan;
  if (auto s = update_plan(candidate, "XPU_MEM_LIMIT", pinned.value()); !s) {
    // Only when an inherited HAMi per-ordinal limit equals the list: keep ordinals, which agree.
    plan.notes.push_back(
        fmt::format("XPU_MEM_LIMIT keeps its device ordinals ({})", s.error().message));
    return true;
  }
  candidate.notes.push_back(fmt::format(
      "XPU_MEM_LIMIT: device ordinals pinned to UUIDs: '{}' -> '{}'", before, pinned.value()));
  plan = std::move(candidate);
  return true;
}

void print_dry_run(const LaunchPlan& plan, const std::vector<std::string>& command) {
  std::string out = "Effective settings (as the shim in the command will read them):\n";
  for (const std::string& line : describe(plan.settings)) out += "  " + line + "\n";
  out += "Environment set for the command:\n";
  for (const auto& [name, value] : plan.changes) out += fmt::format("  {}={}\n", name, value);
  std::string cmd;
  for (const auto& a : command) cmd += (cmd.empty() ? "" : " ") + shell_quote(a);
  out += fmt::format("Command: {}\n", cmd.empty() ? std::string("(none)") : cmd);
  std::fputs(out.c_str(), stdout);
}

int run_command(const RunArgs& args) {
  const EnvBlock inherited = EnvBlock::from_environ(environ);
  auto shim = locate_shim(inherited, own_executable());
  if (!shim) {
    error_line(shim.error().message);
    return kExitUsage;
  }
  auto composed = compose_environment(inherited, args.options, shim.value(),
                                      default_group_name(::getpid(), unix_ns()));
  if (!composed) {
    error_line(attribute_to_flag(composed.error().message, args.options));
    return kExitUsage;
  }
  LaunchPlan plan = std::move(composed).value();
  if (!probe_and_pin(plan, inherited, shim.value(), args.options)) return kExitUsage;

  if (plan.settings.log_level >= LogLevel::info) {
    for (const std::string& note : plan.notes) error_line("info: " + note);
  }
  if (args.dry_run) {
    print_dry_run(plan, args.command);
    return 0;
  }
  int killed_by = 0;
  const int rc = launch(args.command, plan.env, &killed_by);
  // Die as the command died, so that a shell or supervisor above us sees the signal too.
  if (killed_by != 0) die_of_signal(killed_by);
  return rc;
}

int main_impl(int argc, char** argv) {
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  auto cli = parse_cli(args);
  if (!cli) {
    error_line(cli.error().message);
    std::fputs(usage_hint().c_str(), stderr);
    return kExitUsage;
  }
  switch (cli.value().mode) {
    case Mode::help:
      std::fputs(help_text().c_str(), stdout);
      return 0;
    case Mode::version:
      std::fputs(version_text().c_str(), stdout);
      return 0;
    case Mode::status:
      return run_status(cli.value().status);
    case Mode::run:
      break;
  }
  return run_command(cli.value().run);
}

}  // namespace
}  // namespace xpu::run

int main(int argc, char** argv) {
  try {
    return xpu::run::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xpu-run: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "xpu-run: internal error\n");
  }
  return xpu::run::kExitCannotStart;
}
