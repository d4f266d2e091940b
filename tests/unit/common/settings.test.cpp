#include "xpu/common/settings.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "xpu_catch.hpp"

using namespace xpu;

namespace {

struct Env {
  std::map<std::string, std::string> vars;
  EnvLookup lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }
};

Result<Settings> load(std::map<std::string, std::string> vars) {
  Env env{std::move(vars)};
  return load_settings(env.lookup());
}

std::string error_of(std::map<std::string, std::string> vars) {
  auto r = load(std::move(vars));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::invalid_config);
  return r.error().message;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

const Uuid kUuid0 = *parse_uuid("GPU-00000000-0000-0000-0000-000000000000");
const Uuid kUuidA = *parse_uuid("GPU-8f3c1a2b-1111-2222-3333-444455556666");

}  // namespace

TEST_CASE("no settings: nothing is limited, the segment name has a default", "[settings]") {
  auto s = load({}).value();
  CHECK(s.mem_limit.empty());
  CHECK_FALSE(s.compute);
  CHECK(s.group.empty());
  CHECK(s.node_segment.rfind("xpushim-u", 0) == 0);
  CHECK(s.log_level == LogLevel::warn);
}

TEST_CASE("XPU_MEM_LIMIT forms", "[settings]") {
  SECTION("one size for every device") {
    auto s = load({{"XPU_MEM_LIMIT", "10GiB"}}).value();
    REQUIRE(s.mem_limit.all);
    CHECK(s.mem_limit.all->bytes == 10ULL << 30);
    CHECK(s.mem_limit_source == "XPU_MEM_LIMIT");
  }
  SECTION("a percentage of each device") {
    auto s = load({{"XPU_MEM_LIMIT", "25%"}}).value();
    REQUIRE(s.mem_limit.all);
    CHECK(s.mem_limit.all->percent);
    CHECK(resolve_quota(s, 0, kUuid0, 80ULL << 30).value() == 20ULL << 30);
  }
  SECTION("a per-device list by ordinal and by UUID") {
    auto s =
        load({{"XPU_MEM_LIMIT", "0=10GiB,GPU-8f3c1a2b-1111-2222-3333-444455556666=20GiB"}}).value();
    CHECK(s.mem_limit.devices.size() == 2);
    CHECK(resolve_quota(s, 0, kUuid0, 80ULL << 30).value() == 10ULL << 30);
    CHECK(resolve_quota(s, 1, kUuidA, 80ULL << 30).value() == 20ULL << 30);
    CHECK_FALSE(resolve_quota(s, 2, Uuid{}, 80ULL << 30).value().has_value());
  }
}

TEST_CASE("every malformed XPU_MEM_LIMIT names the variable and the accepted forms", "[settings]") {
  for (const char* bad :
       {"banana", "0", "0GiB", "-1GiB", "10GB", "10XB", "99999999999TiB", "",
        "0=", "0=10GiB,0=20GiB", "64=1GiB", "x=1GiB", "10GiB,20GiB", "0=10GiB,1", "150%", "0%"}) {
    CAPTURE(bad);
    const std::string msg = error_of({{"XPU_MEM_LIMIT", bad}});
    CHECK(contains(msg, "XPU_MEM_LIMIT"));
    CHECK(contains(msg, "Accepted:"));
    CHECK(contains(msg, "10GiB"));
  }
}

TEST_CASE("a quota larger than the device is refused when the device is known", "[settings]") {
  auto s = load({{"XPU_MEM_LIMIT", "100GiB"}}).value();
  auto r = resolve_quota(s, 0, kUuid0, 80ULL << 30);
  REQUIRE_FALSE(r.ok());
  CHECK(contains(r.error().message, "XPU_MEM_LIMIT"));
  CHECK(contains(r.error().message, "larger than device 0"));
}

TEST_CASE("a device named twice (ordinal and UUID) is a conflict", "[settings]") {
  auto s =
      load({{"XPU_MEM_LIMIT", "0=1GiB,GPU-8f3c1a2b-1111-2222-3333-444455556666=2GiB"}}).value();
  auto r = resolve_quota(s, 0, kUuidA, 80ULL << 30);
  REQUIRE_FALSE(r.ok());
  CHECK(contains(r.error().message, "conflicting"));
}

TEST_CASE("other options parse strictly", "[settings]") {
  CHECK(load({{"XPU_GROUP", "train.a-1:x"}}).value().group == "train.a-1:x");
  CHECK(contains(error_of({{"XPU_GROUP", ""}}), "XPU_GROUP"));
  CHECK(contains(error_of({{"XPU_GROUP", "has space"}}), "XPU_GROUP"));
  CHECK(contains(error_of({{"XPU_GROUP", std::string(64, 'a')}}), "XPU_GROUP"));
  CHECK(load({{"XPU_LOG_LEVEL", "info"}}).value().log_level == LogLevel::info);
  CHECK(contains(error_of({{"XPU_LOG_LEVEL", "verbose"}}), "error, warn, info or debug"));
  CHECK(*load({{"XPU_COMPUTE", "30"}}).value().compute == 30);
  CHECK(*load({{"XPU_COMPUTE", "30%"}}).value().compute == 30);
  for (const char* bad : {"0", "101", "12.5", "x", "-3"}) {
    CAPTURE(bad);
    CHECK(contains(error_of({{"XPU_COMPUTE", bad}}), "XPU_COMPUTE"));
  }
  CHECK(load({{"XPU_COMPUTE", "20"}, {"XPU_COMPUTE_MODE", "cap"}}).value().compute_mode ==
        ComputeMode::cap);
  // A cap without a percentage is refused, never "unlimited".
  const auto lone_cap = load({{"XPU_COMPUTE_MODE", "cap"}});
  REQUIRE_FALSE(lone_cap.ok());
  CHECK(contains(lone_cap.error().message, "XPU_COMPUTE_MODE=cap needs XPU_COMPUTE"));
  CHECK(contains(error_of({{"XPU_COMPUTE_MODE", "hard"}}), "share or cap"));
  CHECK(load({{"XPU_PRIORITY", "high"}}).value().priority == Priority::high);
  CHECK(contains(error_of({{"XPU_PRIORITY", "urgent"}}), "high, normal or low"));
  CHECK(contains(error_of({{"XPU_NODE_SEGMENT", "a/b"}}), "XPU_NODE_SEGMENT"));
  // Scheduler overrides: names and durations are checked against the scheduler's own list.
  CHECK(load({{"XPU_SCHED_TUNABLES", "idle_grace=500us,low_inflight=250us"}})
            .value()
            .sched_tunables == "idle_grace=500us,low_inflight=250us");
  CHECK(contains(error_of({{"XPU_SCHED_TUNABLES", "idle_grace=5"}}), "not a duration"));
  CHECK(contains(error_of({{"XPU_SCHED_TUNABLES", "idle=5ms"}}), "unknown name 'idle'"));
  CHECK(contains(error_of({{"XPU_SCHED_TUNABLES", "idle=5ms"}}), "idle_grace"));
  // The newest name, preempt_drain_wait, takes the same forms and gets the same errors.
  CHECK(load({{"XPU_SCHED_TUNABLES", "preempt_drain_wait=6ms"}}).value().sched_tunables ==
        "preempt_drain_wait=6ms");
  const std::string bad = error_of({{"XPU_SCHED_TUNABLES", "preempt_drain_wait=6"}});
  CHECK(contains(bad, "XPU_SCHED_TUNABLES"));
  CHECK(contains(bad, "not a duration"));
  CHECK(contains(error_of({{"XPU_SCHED_TUNABLES", "idle=5ms"}}), "preempt_drain_wait"));
}

TEST_CASE("HAMi's device-plugin contract", "[settings][hami]") {
  SECTION("memory limits, all devices and per ordinal") {
    auto s =
        load({{"CUDA_DEVICE_MEMORY_LIMIT", "1g"}, {"CUDA_DEVICE_MEMORY_LIMIT_1", "1024m"}}).value();
    CHECK(s.mem_limit.all->bytes == 1ULL << 30);
    CHECK(resolve_quota(s, 1, kUuidA, 80ULL << 30).value() == 1ULL << 30);
    CHECK(contains(s.mem_limit_source, "CUDA_DEVICE_MEMORY_LIMIT"));
  }
  SECTION("bare numbers are bytes") {
    CHECK(load({{"CUDA_DEVICE_MEMORY_LIMIT", "1073741824"}}).value().mem_limit.all->bytes ==
          1ULL << 30);
  }
  SECTION("zero or malformed is an error, never 'no limit'") {
    CHECK(contains(error_of({{"CUDA_DEVICE_MEMORY_LIMIT", "0"}}), "CUDA_DEVICE_MEMORY_LIMIT"));
    CHECK(
        contains(error_of({{"CUDA_DEVICE_MEMORY_LIMIT_0", "lots"}}), "CUDA_DEVICE_MEMORY_LIMIT_0"));
  }
  SECTION("disagreeing with XPU_MEM_LIMIT is a conflict; agreeing is fine") {
    CHECK(contains(error_of({{"XPU_MEM_LIMIT", "2GiB"}, {"CUDA_DEVICE_MEMORY_LIMIT", "1g"}}),
                   "conflicting"));
    CHECK(load({{"XPU_MEM_LIMIT", "1GiB"}, {"CUDA_DEVICE_MEMORY_LIMIT", "1g"}}).ok());
  }
  SECTION("SM limit is a cap; 0 and 100 mean no limit") {
    auto s = load({{"CUDA_DEVICE_SM_LIMIT", "30"}}).value();
    CHECK(*s.compute == 30);
    CHECK(s.compute_mode == ComputeMode::cap);
    CHECK_FALSE(load({{"CUDA_DEVICE_SM_LIMIT", "0"}}).value().compute);
    CHECK_FALSE(load({{"CUDA_DEVICE_SM_LIMIT", "100"}}).value().compute);
    CHECK(contains(error_of({{"CUDA_DEVICE_SM_LIMIT", "abc"}}), "CUDA_DEVICE_SM_LIMIT"));
    CHECK(
        contains(error_of({{"XPU_COMPUTE", "50"}, {"CUDA_DEVICE_SM_LIMIT", "30"}}), "conflicting"));
  }
  SECTION("task priority") {
    CHECK(load({{"CUDA_TASK_PRIORITY", "0"}}).value().priority == Priority::high);
    CHECK(load({{"CUDA_TASK_PRIORITY", "1"}}).value().priority == Priority::low);
    CHECK(contains(error_of({{"CUDA_TASK_PRIORITY", "2"}}), "CUDA_TASK_PRIORITY"));
    CHECK(
        contains(error_of({{"XPU_PRIORITY", "high"}, {"CUDA_TASK_PRIORITY", "1"}}), "conflicting"));
  }
  SECTION("the shared cache file makes the container one group") {
    auto a = load({{"CUDA_DEVICE_MEMORY_SHARED_CACHE", "/usr/local/vgpu/x.cache"}}).value();
    auto b = load({{"CUDA_DEVICE_MEMORY_SHARED_CACHE", "/usr/local/vgpu/x.cache"}}).value();
    CHECK(a.group == b.group);
    CHECK(a.group.rfind("hami:", 0) == 0);
    CHECK(a.group.size() <= 63);
  }
}

TEST_CASE("the README's configuration table names every option of the table", "[settings]") {
  std::ifstream in(std::string(XPU_SOURCE_DIR) + "/README.md");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string readme = text.str();
  for (const OptionInfo& o : option_table()) {
    CAPTURE(o.env);
    CHECK(contains(readme, "`" + std::string(o.env) + "`"));
    CHECK(contains(readme, "`" + std::string(o.flag) + "`"));
  }
}

TEST_CASE("the options table drives validation and describes every setting", "[settings]") {
  CHECK(option_table().size() == 8);
  for (const OptionInfo& o : option_table()) {
    CAPTURE(o.env);
    CHECK_FALSE(o.flag.empty());
    CHECK_FALSE(o.accepts.empty());
    CHECK_FALSE(validate_option(o.env, "\x01garbage").ok());
  }
  auto s = load({{"XPU_MEM_LIMIT", "4GiB"}, {"XPU_GROUP", "g"}}).value();
  const auto lines = describe(s);
  CHECK(contains(lines.at(0), "4.00 GiB"));
  CHECK(contains(lines.at(1), "g (from XPU_GROUP)"));
}
