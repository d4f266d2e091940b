// xpu-run's command line: every flag of the options table in both forms, bad values for every
// option, usage errors, status arguments and the help text.
#include <map>
#include <string>
#include <vector>

#include "cli.hpp"
#include "xpu/common/settings.hpp"
#include "xpu_catch.hpp"

using xpu::run::Cli;
using xpu::run::Mode;
using xpu::run::parse_cli;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

xpu::Result<Cli> parse(std::vector<std::string> args) { return parse_cli(args); }

// A valid value per option. A new row in options.def fails here until it gets one.
const std::map<std::string, std::string>& good_values() {
  static const std::map<std::string, std::string> values = {
      {"XPU_MEM_LIMIT", "1GiB"},       {"XPU_GROUP", "team.a:1"},
      {"XPU_COMPUTE", "30%"},          {"XPU_COMPUTE_MODE", "cap"},
      {"XPU_PRIORITY", "low"},         {"XPU_LOG_LEVEL", "debug"},
      {"XPU_NODE_SEGMENT", "seg-x_1"}, {"XPU_SCHED_TUNABLES", "idle_grace=500us,slice=20ms"},
  };
  return values;
}

// Malformed values per option: syntax, zero, negative, unknown unit, overflow, range.
const std::map<std::string, std::vector<std::string>>& bad_values() {
  static const std::map<std::string, std::vector<std::string>> values = {
      {"XPU_MEM_LIMIT",
       {"banana", "0", "0GiB", "-1GiB", "10GB", "10XiB", "99999999999999999999GiB", "1GiB,2GiB",
        "0=1GiB,0=2GiB", "x=1GiB", "150%", ""}},
      {"XPU_GROUP", {"", "has space", "a/b", std::string(64, 'g')}},
      {"XPU_COMPUTE", {"0", "101", "-5", "30.5", "abc", ""}},
      {"XPU_COMPUTE_MODE", {"fast", "", "SHARE"}},
      {"XPU_PRIORITY", {"urgent", "", "0"}},
      {"XPU_LOG_LEVEL", {"loud", "", "INFO"}},
      {"XPU_NODE_SEGMENT", {"", "a/b", "x y", std::string(201, 's')}},
      {"XPU_SCHED_TUNABLES",
       {"", "slice", "slice=", "slice=20", "slice=-1ms", "slice=1.5ms", "bogus=1ms", "slice=1h",
        "slice=20ms,", "max_inflight_launches=1ms", "slice=99999999999s"}},
  };
  return values;
}

}  // namespace

TEST_CASE("every option of the table is accepted as --flag VALUE and --flag=VALUE") {
  for (const xpu::OptionInfo& row : xpu::option_table()) {
    const std::string env(row.env), flag(row.flag);
    REQUIRE(good_values().count(env) == 1);
    const std::string value = good_values().at(env);
    for (int form = 0; form < 2; ++form) {
      auto cli = form == 0 ? parse({flag, value, "--", "prog", "arg"})
                           : parse({flag + "=" + value, "--", "prog", "arg"});
      REQUIRE(cli.ok());
      CHECK(cli.value().mode == Mode::run);
      REQUIRE(cli.value().run.options.size() == 1);
      CHECK(cli.value().run.options[0].flag == flag);
      CHECK(cli.value().run.options[0].env == env);
      CHECK(cli.value().run.options[0].value == value);
      CHECK(cli.value().run.command == std::vector<std::string>{"prog", "arg"});
    }
  }
}

TEST_CASE("all options together keep their order and the command's own flags") {
  std::vector<std::string> args;
  for (const xpu::OptionInfo& row : xpu::option_table()) {
    args.emplace_back(row.flag);
    args.push_back(good_values().at(std::string(row.env)));
  }
  args.insert(args.end(), {"--dry-run", "--", "python", "--mem", "x", "--", "-h"});
  auto cli = parse(args);
  REQUIRE(cli.ok());
  CHECK(cli.value().run.dry_run);
  CHECK(cli.value().run.options.size() == xpu::option_table().size());
  CHECK(cli.value().run.command == std::vector<std::string>{"python", "--mem", "x", "--", "-h"});
}

TEST_CASE("a bad value for any option names the flag and the variable and the accepted forms") {
  for (const xpu::OptionInfo& row : xpu::option_table()) {
    const std::string env(row.env), flag(row.flag);
    REQUIRE(bad_values().count(env) == 1);
    for (const std::string& bad : bad_values().at(env)) {
      for (int form = 0; form < 2; ++form) {
        auto cli =
            form == 0 ? parse({flag, bad, "--", "true"}) : parse({flag + "=" + bad, "--", "true"});
        REQUIRE_FALSE(cli.ok());
        const std::string& msg = cli.error().message;
        CHECK(msg.rfind(flag + ": ", 0) == 0);
        CHECK(contains(msg, env + "='" + bad + "'"));
        CHECK(contains(msg, "Accepted: " + std::string(row.accepts)));
      }
    }
  }
}

TEST_CASE("specific memory errors say what is wrong") {
  auto decimal = parse({"--mem", "10GB", "--", "true"});
  REQUIRE_FALSE(decimal.ok());
  CHECK(contains(decimal.error().message, "GiB"));
  auto overflow = parse({"--mem=99999999999999999999GiB", "--", "true"});
  REQUIRE_FALSE(overflow.ok());
  CHECK(contains(overflow.error().message, "XPU_MEM_LIMIT"));
}

TEST_CASE("usage errors") {
  SECTION("no arguments") {
    auto cli = parse({});
    REQUIRE_FALSE(cli.ok());
    CHECK(contains(cli.error().message, "missing '--'"));
  }
  SECTION("missing --") {
    auto cli = parse({"--mem", "1GiB", "python", "train.py"});
    REQUIRE_FALSE(cli.ok());
    CHECK(contains(cli.error().message, "'python'"));
    CHECK(contains(cli.error().message, "--"));
  }
  SECTION("options but no -- at all") {
    auto cli = parse({"--mem", "1GiB"});
    REQUIRE_FALSE(cli.ok());
    CHECK(contains(cli.error().message, "missing '--'"));
  }
  SECTION("missing command after --") {
    auto cli = parse({"--mem", "1GiB", "--"});
    REQUIRE_FALSE(cli.ok());
    CHECK(contains(cli.error().message, "missing the command"));
  }
  SECTION("unknown option, long and short") {
    for (std::string bad : {"--memory", "--bogus=1", "-x", "-"}) {
      auto cli = parse({bad, "--", "true"});
      REQUIRE_FALSE(cli.ok());
      CHECK(contains(cli.error().message, "unknown option"));
    }
  }
  SECTION("flag without a value") {
    for (const xpu::OptionInfo& row : xpu::option_table()) {
      auto at_end = parse({std::string(row.flag)});
      REQUIRE_FALSE(at_end.ok());
      CHECK(contains(at_end.error().message, std::string(row.flag) + " needs a value"));
      auto before_separator = parse({std::string(row.flag), "--", "true"});
      REQUIRE_FALSE(before_separator.ok());
      CHECK(contains(before_separator.error().message, "needs a value"));
    }
  }
  SECTION("a flag given twice") {
    auto cli = parse({"--mem", "1GiB", "--mem=2GiB", "--", "true"});
    REQUIRE_FALSE(cli.ok());
    CHECK(contains(cli.error().message, "--mem is given twice"));
  }
  SECTION("--dry-run takes no value") {
    auto cli = parse({"--dry-run=yes", "--", "true"});
    REQUIRE_FALSE(cli.ok());
  }
  SECTION("status must come first") {
    auto cli = parse({"--mem", "1GiB", "status"});
    REQUIRE_FALSE(cli.ok());
  }
}

TEST_CASE("help and version and dry-run modes") {
  CHECK(parse({"--help"}).value().mode == Mode::help);
  CHECK(parse({"-h"}).value().mode == Mode::help);
  CHECK(parse({"--mem", "1GiB", "--help", "--", "true"}).value().mode == Mode::help);
  CHECK(parse({"--version"}).value().mode == Mode::version);
  auto dry = parse({"--dry-run", "--mem", "1GiB"});
  REQUIRE(dry.ok());
  CHECK(dry.value().run.dry_run);
  CHECK(dry.value().run.command.empty());
  // After "--" everything is the command's, help flags included.
  auto cmd = parse({"--", "prog", "--help"});
  REQUIRE(cmd.ok());
  CHECK(cmd.value().mode == Mode::run);
}

TEST_CASE("status arguments") {
  auto plain = parse({"status"});
  REQUIRE(plain.ok());
  CHECK(plain.value().mode == Mode::status);
  CHECK_FALSE(plain.value().status.json);
  CHECK_FALSE(plain.value().status.watch);

  auto json_watch = parse({"status", "--json", "--watch"});
  REQUIRE(json_watch.ok());
  CHECK(json_watch.value().status.json);
  CHECK(json_watch.value().status.watch);
  CHECK(json_watch.value().status.interval_s == 1.0);

  auto period = parse({"status", "--watch", "2", "--json"});
  REQUIRE(period.ok());
  CHECK(period.value().status.interval_s == 2.0);
  CHECK(period.value().status.json);
  CHECK(parse({"status", "--watch=0.5"}).value().status.interval_s == 0.5);

  auto segment = parse({"status", "--node-segment", "my-seg"});
  REQUIRE(segment.ok());
  REQUIRE(segment.value().status.node_segment.has_value());
  CHECK(*segment.value().status.node_segment == "my-seg");

  CHECK(parse({"status", "--help"}).value().mode == Mode::help);
  for (std::vector<std::string> bad : {std::vector<std::string>{"status", "--mem", "1GiB"},
                                       {"status", "extra"},
                                       {"status", "--node-segment", "a/b"},
                                       {"status", "--json=1"}}) {
    CHECK_FALSE(parse(bad).ok());
  }
}

TEST_CASE("status --watch periods are positive numbers of seconds up to an hour") {
  CHECK(parse({"status", "--watch", "3600"}).value().status.interval_s == 3600.0);
  CHECK(parse({"status", "--watch", "0.01"}).value().status.interval_s == 0.01);
  CHECK(parse({"status", "--watch", ".25"}).value().status.interval_s == 0.25);
  // Without a value the next option is not taken for one.
  auto next = parse({"status", "--watch", "--json"});
  REQUIRE(next.ok());
  CHECK(next.value().status.interval_s == 1.0);
  CHECK(next.value().status.json);
  for (const char* bad : {"0", "0.0", "-1", "-0.5", "3600.5", "86400", "1e9", "1e-3", "abc", "",
                          "nan", "inf", "+1", "1s", "0x10", "0.001", "1..2", " 1"}) {
    INFO(bad);
    for (auto args : {std::vector<std::string>{"status", "--watch", bad},
                      std::vector<std::string>{"status", std::string("--watch=") + bad}}) {
      auto r = parse(args);
      REQUIRE_FALSE(r.ok());
      CHECK(contains(r.error().message, "--watch: '" + std::string(bad) +
                                            "' is not a refresh period. Accepted: a number of "
                                            "seconds from 0.01 to 3600"));
    }
  }
  // --watch-count N (hidden): stop after N snapshots; it implies --watch.
  auto counted = parse({"status", "--watch-count", "3", "--watch", "0.05"});
  REQUIRE(counted.ok());
  CHECK(counted.value().status.watch);
  CHECK(counted.value().status.watch_count == 3u);
  CHECK(counted.value().status.interval_s == 0.05);
  CHECK(parse({"status", "--watch-count=1"}).value().status.watch_count == 1u);
  CHECK_FALSE(parse({"status"}).value().status.watch_count.has_value());
  for (const char* bad : {"0", "-1", "x", "1.5", "", "99999999999999999999"}) {
    INFO(bad);
    auto r = parse({"status", std::string("--watch-count=") + bad});
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message, "--watch-count: '" + std::string(bad) + "' is not a count"));
  }
  CHECK_FALSE(parse({"status", "--watch-count"}).ok());
}

TEST_CASE("help lists every option of the table and HAMi's variables") {
  const std::string help = xpu::run::help_text();
  for (const xpu::OptionInfo& row : xpu::option_table()) {
    CHECK(contains(help, std::string(row.flag) + " " + std::string(row.metavar)));
    CHECK(contains(help, std::string(row.env)));
    // Wrapped text: compare the first words of the summary and of the accepted forms.
    const std::string summary(row.summary);
    CHECK(contains(help, summary.substr(0, summary.find(' ', 20))));
    const std::string accepts(row.accepts);
    CHECK(contains(help, "Accepted: " + accepts.substr(0, accepts.find(' ', 10))));
  }
  for (const char* hami :
       {"CUDA_DEVICE_MEMORY_LIMIT", "CUDA_DEVICE_MEMORY_LIMIT_<i>", "CUDA_DEVICE_SM_LIMIT",
        "CUDA_TASK_PRIORITY", "CUDA_DEVICE_MEMORY_SHARED_CACHE", "XPU_SHIM_LIBRARY"})
    CHECK(contains(help, hami));
  CHECK(contains(help, "xpu-run status"));
  CHECK(contains(help, "--dry-run"));
  CHECK(contains(xpu::run::version_text(), "xpu-run"));
}
