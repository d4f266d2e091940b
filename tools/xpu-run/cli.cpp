#include "cli.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <string_view>

#include "xpu/common/settings.hpp"

#ifndef XPU_RUN_VERSION
#define XPU_RUN_VERSION "unknown"
#endif

namespace xpu::run {
namespace {

constexpr std::string_view kUsage =
    "  xpu-run [OPTIONS] -- COMMAND [ARGS...]\n"
    "  xpu-run status [--json] [--watch [SECONDS]] [--node-segment NAME]\n"
    "  xpu-run --help | --version\n";

// --watch bounds: a positive period, at least 10 ms (below, the refresh is a busy loop), at most
// an hour. --watch-count (hidden, for tests and scripts) stops after that many snapshots.
constexpr double kMinWatch = 0.01;
constexpr double kMaxWatch = 3600;
constexpr std::uint64_t kMaxWatchCount = 1'000'000;

Error usage_error(std::string message) {
  return make_error(Errc::invalid_config, std::move(message));
}

const OptionInfo* find_flag(std::string_view flag) {
  for (const OptionInfo& row : option_table())
    if (row.flag == flag) return &row;
  return nullptr;
}

bool starts_with_dash(std::string_view s) { return !s.empty() && s.front() == '-'; }

// Splits "--flag=value" into ("--flag", "value"); "--flag" gives ("--flag", nullopt).
std::pair<std::string_view, std::optional<std::string_view>> split_flag(std::string_view arg) {
  const auto eq = arg.find('=');
  if (eq == std::string_view::npos) return {arg, std::nullopt};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// The value of a flag that takes one: after '=' or the next argument. "--" is never a value:
// `--mem -- cmd` forgot the size, it does not mean a size named "--".
Result<std::string> take_value(std::span<const std::string> args, std::size_t& i,
                               std::string_view flag, std::optional<std::string_view> inline_value,
                               std::string_view metavar) {
  if (inline_value) return std::string(*inline_value);
  if (i + 1 >= args.size() || args[i + 1] == "--")
    return usage_error(fmt::format("{} needs a value ({})", flag, metavar));
  return args[++i];
}

Status validate_flag(const OptionInfo& row, std::string_view value) {
  auto s = validate_option(row.env, value);
  if (!s) return usage_error(fmt::format("{}: {}", row.flag, s.error().message));
  return Ok{};
}

// Plain decimal seconds ("2", "0.5"): no sign, exponent, hex, inf or nan.
Result<double> parse_seconds(std::string_view text) {
  double v = 0;
  const char* end = text.data() + text.size();
  const bool digits =
      !text.empty() && text.find_first_not_of("0123456789.") == std::string_view::npos;
  auto [ptr, ec] = std::from_chars(text.data(), end, v, std::chars_format::fixed);
  if (!digits || ec != std::errc() || ptr != end || !(v >= kMinWatch && v <= kMaxWatch))
    return usage_error(fmt::format(
        "--watch: '{}' is not a refresh period. Accepted: a number of seconds from {} to {} "
        "(2, 0.5)",
        text, kMinWatch, kMaxWatch));
  return v;
}

Result<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || v < 1 || v > kMaxWatchCount)
    return usage_error(
        fmt::format("--watch-count: '{}' is not a count. Accepted: a whole number from 1 to {}",
                    text, kMaxWatchCount));
  return v;
}

// "--watch -1": a negative number is a (bad) period, not the next option.
bool looks_numeric(std::string_view s) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  return !s.empty() &&
         (std::isdigit(static_cast<unsigned char>(s.front())) != 0 || s.front() == '.');
}

Result<Cli> parse_status(std::span<const std::string> args) {
  Cli cli;
  cli.mode = Mode::status;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto [flag, inline_value] = split_flag(args[i]);
    if (flag == "--help" || flag == "-h") {
      cli.mode = Mode::help;
      return cli;
    }
    if (flag == "--json" && !inline_value) {
      cli.status.json = true;
    } else if (flag == "--watch") {
      cli.status.watch = true;
      // The period is optional: take the next argument only when it is not an option.
      std::optional<std::string_view> period = inline_value;
      if (!period && i + 1 < args.size() &&
          (!starts_with_dash(args[i + 1]) || looks_numeric(args[i + 1])))
        period = args[++i];
      if (period) {
        auto secs = parse_seconds(*period);
        if (!secs) return secs.error();
        cli.status.interval_s = secs.value();
      }
    } else if (flag == "--watch-count") {
      auto value = take_value(args, i, flag, inline_value, "N");
      if (!value) return value.error();
      auto count = parse_count(value.value());
      if (!count) return count.error();
      cli.status.watch = true;
      cli.status.watch_count = count.value();
    } else if (const OptionInfo* row = find_flag(flag); row && row->env == "XPU_NODE_SEGMENT") {
      auto value = take_value(args, i, flag, inline_value, row->metavar);
      if (!value) return value.error();
      if (auto s = validate_flag(*row, value.value()); !s) return s.error();
      cli.status.node_segment = value.value();
    } else {
      return usage_error(fmt::format("status: unknown argument '{}'", args[i]));
    }
  }
  return cli;
}

// Appends `text` wrapped at `width` columns, every line indented by `indent` spaces.
void append_wrapped(std::string& out, std::string_view text, std::size_t indent,
                    std::size_t width = 80) {
  std::size_t column = 0;
  while (!text.empty()) {
    const auto space = text.find(' ');
    const std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
    if (word.empty()) continue;
    if (column > 0 && column + 1 + word.size() > width) {
      out += '\n';
      column = 0;
    }
    if (column == 0) {
      out.append(indent, ' ');
      column = indent;
    } else {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
  }
  out += '\n';
}

}  // namespace

Result<Cli> parse_cli(std::span<const std::string> args) {
  Cli cli;
  if (!args.empty() && args[0] == "status") return parse_status(args.subspan(1));
  bool saw_separator = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      cli.run.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      saw_separator = true;
      break;
    }
    const auto [flag, inline_value] = split_flag(arg);
    if (flag == "--help" || flag == "-h") {
      cli.mode = Mode::help;
      return cli;
    }
    if (flag == "--version") {
      cli.mode = Mode::version;
      return cli;
    }
    if (flag == "--dry-run") {
      if (inline_value) return usage_error("--dry-run takes no value");
      cli.run.dry_run = true;
      continue;
    }
    if (!starts_with_dash(arg))
      return usage_error(fmt::format(
          "unexpected argument '{}': put the command after '--' (xpu-run [OPTIONS] -- COMMAND)",
          arg));
    const OptionInfo* row = find_flag(flag);
    if (row == nullptr) return usage_error(fmt::format("unknown option '{}'", flag));
    for (const FlagValue& given : cli.run.options) {
      // Two values for one variable: refuse rather than guess which one was meant.
      if (given.flag == flag)
        return usage_error(fmt::format("{} is given twice; give it once", flag));
    }
    auto value = take_value(args, i, flag, inline_value, row->metavar);
    if (!value) return value.error();
    if (auto s = validate_flag(*row, value.value()); !s) return s.error();
    cli.run.options.push_back({std::string(row->flag), std::string(row->env), value.value()});
  }
  if (!saw_separator && !cli.run.dry_run)
    return usage_error(
        fmt::format("missing '--' {} (xpu-run [OPTIONS] -- COMMAND [ARGS...])",
                    args.empty() ? "and the command to run" : "before the command to run"));
  if (cli.run.command.empty() && !cli.run.dry_run)
    return usage_error("missing the command to run after '--' (xpu-run [OPTIONS] -- COMMAND)");
  return cli;
}

std::string help_text() {
  std::string out = fmt::format("Usage:\n{}\n", kUsage);
  append_wrapped(out,
                 "Runs COMMAND with xpushim (libxpushim.so) preloaded, so that it and every "
                 "process it starts share one device-memory quota per GPU: all processes started "
                 "under one xpu-run form one group, unless --group or an inherited XPU_GROUP names "
                 "another. Each option sets its environment variable for COMMAND, overriding an "
                 "inherited value; '--opt VALUE' and '--opt=VALUE' are the same. Bad values stop "
                 "xpu-run before COMMAND starts.",
                 0);
  out += "\nOptions:\n";
  for (const OptionInfo& row : option_table()) {
    out += fmt::format("  {} {}  (environment: {})\n", row.flag, row.metavar, row.env);
    append_wrapped(out, row.summary, 6);
    append_wrapped(out, fmt::format("Accepted: {}", row.accepts), 6);
  }
  out += "  --dry-run\n";
  append_wrapped(out,
                 "Print the effective settings and the environment COMMAND would get; start "
                 "nothing. COMMAND may be omitted.",
                 6);
  out += "  -h, --help\n      Print this help.\n  --version\n      Print the version.\n";

  out += "\nStatus:\n  xpu-run status [--json] [--watch [SECONDS]] [--node-segment NAME]\n";
  append_wrapped(out,
                 "Prints, per GPU of the node segment (XPU_NODE_SEGMENT or the default), the "
                 "group holding it for compute and the hand-overs so far, each group with its "
                 "quota and usage, and each process with its memory, its configured compute share "
                 "(30%, or w100 without a percentage), mode and priority, the share of the GPU "
                 "time it was delivered and its GPU utilisation over the last seconds, and its "
                 "state (holds, waits, busy, idle, or alone: no other group on the GPU, nothing "
                 "measured). --json prints one JSON object (one per line with --watch); --watch "
                 "redraws every SECONDS (0.01 to 3600, default 1) until interrupted.",
                 6);

  out += "\nEnvironment read by xpu-run itself:\n  XPU_SHIM_LIBRARY\n";
  append_wrapped(out,
                 "Path of libxpushim.so to preload. Default: <prefix>/lib/libxpushim.so next to "
                 "an installed <prefix>/bin/xpu-run, or libxpushim/libxpushim.so of the build "
                 "tree.",
                 6);
  out += "\nHAMi device-plugin variables (also read; they must agree with the options above):\n";
  // The contract implemented by load_hami() in common/src/settings.cpp.
  const std::pair<std::string_view, std::string_view> hami[] = {
      {"CUDA_DEVICE_MEMORY_LIMIT",
       "Memory quota for every device: 1g, 1024m, 1048576k or 1073741824 (bytes)."},
      {"CUDA_DEVICE_MEMORY_LIMIT_<i>", "Memory quota for CUDA ordinal i (0-63), same forms."},
      {"CUDA_DEVICE_SM_LIMIT", "Compute cap in whole percent (cap mode); 0 and 100 mean no limit."},
      {"CUDA_TASK_PRIORITY", "0 (high) or 1 (low)."},
      {"CUDA_DEVICE_MEMORY_SHARED_CACHE",
       "Processes naming the same path form one group (when XPU_GROUP is unset); xpu-run then "
       "keeps that group instead of making its own."},
  };
  for (const auto& [name, text] : hami) {
    out += fmt::format("  {}\n", name);
    append_wrapped(out, text, 6);
  }

  out +=
      "\nExit status:\n"
      "  COMMAND's exit status; 128+N when COMMAND was killed by signal N (xpu-run then ends\n"
      "  by the same signal). 2: bad option or setting, nothing was started. 126: COMMAND is\n"
      "  not executable. 127: COMMAND not found. 125: xpu-run could not start it (fork failed).\n"
      "  Signals INT, TERM, HUP, QUIT, USR1, USR2 and WINCH sent to xpu-run go to COMMAND.\n";
  return out;
}

std::string usage_hint() { return "Try 'xpu-run --help' for more information.\n"; }

std::string version_text() { return fmt::format("xpu-run (xpushim) {}\n", XPU_RUN_VERSION); }

}  // namespace xpu::run
