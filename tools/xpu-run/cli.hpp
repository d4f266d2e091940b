// xpu-run's command line: parsing and help text, both generated from the options table
// (common/include/xpu/common/options.def), so a new option needs no change here.
//
//   xpu-run [OPTIONS] [--dry-run] -- COMMAND [ARGS...]
//   xpu-run status [--json] [--watch [SECONDS]] [--node-segment NAME]
//   xpu-run --help | -h | --version
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "xpu/common/result.hpp"

namespace xpu::run {

// One table option given on the command line, already validated by validate_option().
struct FlagValue {
  std::string flag;  // "--mem"
  std::string env;   // "XPU_MEM_LIMIT"
  std::string value;
};

struct RunArgs {
  std::vector<FlagValue> options;    // in command-line order, each flag at most once
  bool dry_run = false;              // print the plan, start nothing
  std::vector<std::string> command;  // after "--"; empty only with dry_run
};

struct StatusArgs {
  bool json = false;
  bool watch = false;
  double interval_s = 1.0;                   // --watch period
  std::optional<std::uint64_t> watch_count;  // hidden --watch-count N: stop after N snapshots
  std::optional<std::string> node_segment;   // --node-segment, else XPU_NODE_SEGMENT/default
};

enum class Mode { run, status, help, version };

struct Cli {
  Mode mode = Mode::run;
  RunArgs run;
  StatusArgs status;
};

// Parses argv[1..]. Errors are usage errors (exit status 2); a bad option value's message names
// the flag, the environment variable and the accepted forms.
Result<Cli> parse_cli(std::span<const std::string> args);

// `xpu-run --help`: every option of the table (flag, metavar, variable, summary, accepted forms),
// the status command, the variables xpu-run itself reads and HAMi's variables.
std::string help_text();

// The line after a usage error.
std::string usage_hint();

std::string version_text();

}  // namespace xpu::run
