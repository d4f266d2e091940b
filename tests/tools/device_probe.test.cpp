// Quotas against device sizes, and ordinal keys pinned to UUIDs (no driver needed: the probed
// devices are given).
#include <string>
#include <vector>

#include "device_probe.hpp"
#include "launcher.hpp"
#include "xpu_catch.hpp"

using xpu::run::ProbedDevice;

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::vector<ProbedDevice> two_gpus() {
  std::vector<ProbedDevice> devices(2);
  for (int i = 0; i < 2; ++i) {
    devices[i].ordinal = i;
    devices[i].uuid.bytes[0] = 0xab;
    devices[i].uuid.bytes[15] = static_cast<std::uint8_t>(i + 1);
    devices[i].total_bytes = 80 * kGiB;
  }
  return devices;
}

xpu::Settings settings_for(const std::string& mem_limit) {
  auto plan = xpu::run::compose_environment(
      xpu::run::EnvBlock(), {{"--mem", "XPU_MEM_LIMIT", mem_limit}}, "/lib/libxpushim.so", "g");
  REQUIRE(plan.ok());
  return plan.value().settings;
}

const std::string kUuid0 = "GPU-ab000000-0000-0000-0000-000000000001";
const std::string kUuid1 = "GPU-ab000000-0000-0000-0000-000000000002";

}  // namespace

TEST_CASE("ordinal keys are rewritten to UUID keys with values kept verbatim") {
  const auto devices = two_gpus();
  CHECK(xpu::to_string(devices[0].uuid) == kUuid0);
  auto r = xpu::run::rewrite_ordinal_keys("0=10GiB,1=25%", devices);
  REQUIRE(r.ok());
  CHECK(r.value() == kUuid0 + "=10GiB," + kUuid1 + "=25%");
  auto mixed = xpu::run::rewrite_ordinal_keys(kUuid0 + "=1G,1=512MiB", devices);
  REQUIRE(mixed.ok());
  CHECK(mixed.value() == kUuid0 + "=1G," + kUuid1 + "=512MiB");
  CHECK(xpu::run::rewrite_ordinal_keys("10GiB", devices).value() == "10GiB");
  CHECK(xpu::run::rewrite_ordinal_keys("25%", devices).value() == "25%");
  auto missing = xpu::run::rewrite_ordinal_keys("0=1GiB,5=1GiB", devices);
  REQUIRE_FALSE(missing.ok());
  CHECK(contains(missing.error().message, "device 5"));
  // The rewritten list parses to the same quotas, by UUID.
  auto s = settings_for(r.value());
  REQUIRE(s.mem_limit.devices.size() == 2);
  CHECK(s.mem_limit.devices[1].first.uuid == devices[1].uuid);
}

TEST_CASE("has_ordinal_keys") {
  CHECK(xpu::run::has_ordinal_keys(settings_for("0=1GiB").mem_limit));
  CHECK(xpu::run::has_ordinal_keys(settings_for(kUuid0 + "=1GiB,1=1GiB").mem_limit));
  CHECK_FALSE(xpu::run::has_ordinal_keys(settings_for(kUuid0 + "=1GiB").mem_limit));
  CHECK_FALSE(xpu::run::has_ordinal_keys(settings_for("1GiB").mem_limit));
}

TEST_CASE("every quota must fit its device") {
  const auto devices = two_gpus();
  CHECK(xpu::run::check_quotas(settings_for("80GiB"), devices).ok());
  CHECK(xpu::run::check_quotas(settings_for("0=10GiB,1=50%"), devices).ok());
  for (const std::string& too_big :
       {std::string("81GiB"), std::string("1=100GiB"), kUuid1 + "=1TiB"}) {
    auto s = xpu::run::check_quotas(settings_for(too_big), devices);
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.error().message, "XPU_MEM_LIMIT"));
    CHECK(contains(s.error().message, "larger than device"));
    CHECK(contains(s.error().message, "Accepted: "));
  }
  auto absent = xpu::run::check_quotas(settings_for("2=1GiB"), devices);
  REQUIRE_FALSE(absent.ok());
  CHECK(contains(absent.error().message, "names device 2"));
  CHECK(contains(absent.error().message, "0-1"));
  // The same GPU by ordinal and by UUID.
  auto twice = xpu::run::check_quotas(settings_for("0=1GiB," + kUuid0 + "=2GiB"), devices);
  REQUIRE_FALSE(twice.ok());
  CHECK(contains(twice.error().message, "twice"));
}
