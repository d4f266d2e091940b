// The child's environment: flags -> variables, the default group, LD_PRELOAD, conflicts with
// inherited variables, and finding libxpushim.so.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "launcher.hpp"
#include "xpu_catch.hpp"

namespace fs = std::filesystem;
using xpu::run::compose_environment;
using xpu::run::EnvBlock;
using xpu::run::FlagValue;
using xpu::run::merge_ld_preload;

namespace {

const std::string kShim = "/opt/xpushim/lib/libxpushim.so";
const std::string kGroup = "run-1-2";

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (contains(l, needle)) return true;
  return false;
}

EnvBlock env_of(std::vector<std::pair<std::string, std::string>> vars) {
  return EnvBlock(std::move(vars));
}

FlagValue flag(const std::string& name, const std::string& env, const std::string& value) {
  return FlagValue{name, env, value};
}

// A fresh directory under /tmp, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "xpu-run-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path touch(const std::string& relative) const {
    const fs::path p = path / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "";
    return p;
  }
};

}  // namespace

TEST_CASE("defaults are a fresh group and the shim alone in LD_PRELOAD") {
  auto plan = compose_environment(env_of({{"PATH", "/bin"}}), {}, kShim, kGroup);
  REQUIRE(plan.ok());
  CHECK(plan.value().env.get("XPU_GROUP") == kGroup);
  CHECK(plan.value().env.get("LD_PRELOAD") == kShim);
  CHECK(plan.value().env.get("PATH") == std::string("/bin"));
  CHECK_FALSE(plan.value().env.get("XPU_MEM_LIMIT").has_value());
  CHECK(plan.value().settings.group == kGroup);
  CHECK(plan.value().settings.mem_limit.empty());
  CHECK(plan.value().changes.size() == 2);
}

TEST_CASE("the default group name is a valid group unique per pid and time") {
  const std::string name = xpu::run::default_group_name(4242, 1700000000123456789ull);
  CHECK(name == "run-4242-1700000000123456789");
  CHECK(xpu::validate_option("XPU_GROUP", name).ok());
  CHECK(xpu::run::default_group_name(4242, 1) != xpu::run::default_group_name(4243, 1));
}

TEST_CASE("each flag sets its variable and an inherited value is overridden with a note") {
  EnvBlock inherited({{"XPU_MEM_LIMIT", "2GiB"}, {"XPU_PRIORITY", "low"}});
  auto plan = compose_environment(
      inherited,
      {flag("--mem", "XPU_MEM_LIMIT", "1GiB"), flag("--compute", "XPU_COMPUTE", "30"),
       flag("--mode", "XPU_COMPUTE_MODE", "cap")},
      kShim, kGroup);
  REQUIRE(plan.ok());
  CHECK(plan.value().env.get("XPU_MEM_LIMIT") == std::string("1GiB"));
  CHECK(plan.value().env.get("XPU_PRIORITY") == std::string("low"));  // untouched
  CHECK(plan.value().env.get("XPU_COMPUTE") == std::string("30"));
  CHECK(plan.value().settings.mem_limit.all->bytes == (1ull << 30));
  CHECK(plan.value().settings.compute == 30u);
  CHECK(plan.value().settings.compute_mode == xpu::ComputeMode::cap);
  CHECK(any_contains(plan.value().notes, "--mem overrides the inherited XPU_MEM_LIMIT='2GiB'"));
  // Same value inherited: nothing to say.
  auto same = compose_environment(env_of({{"XPU_MEM_LIMIT", "1GiB"}}),
                                  {flag("--mem", "XPU_MEM_LIMIT", "1GiB")}, kShim, kGroup);
  REQUIRE(same.ok());
  CHECK_FALSE(any_contains(same.value().notes, "overrides"));
}

TEST_CASE(
    "group comes from the flag or an inherited XPU_GROUP or HAMi's shared cache or the default") {
  SECTION("an inherited group is joined, not replaced") {
    auto plan = compose_environment(env_of({{"XPU_GROUP", "outer"}}), {}, kShim, kGroup);
    REQUIRE(plan.ok());
    CHECK(plan.value().env.get("XPU_GROUP") == std::string("outer"));
    CHECK(plan.value().settings.group == "outer");
  }
  SECTION("the flag wins over an inherited group") {
    auto plan = compose_environment(env_of({{"XPU_GROUP", "outer"}}),
                                    {flag("--group", "XPU_GROUP", "mine")}, kShim, kGroup);
    REQUIRE(plan.ok());
    CHECK(plan.value().env.get("XPU_GROUP") == std::string("mine"));
    CHECK(any_contains(plan.value().notes, "--group overrides"));
  }
  SECTION("HAMi's container-wide group is kept") {
    auto plan = compose_environment(env_of({{"CUDA_DEVICE_MEMORY_SHARED_CACHE", "/tmp/c"}}), {},
                                    kShim, kGroup);
    REQUIRE(plan.ok());
    CHECK_FALSE(plan.value().env.get("XPU_GROUP").has_value());
    CHECK(plan.value().settings.group_source == "CUDA_DEVICE_MEMORY_SHARED_CACHE");
  }
}

TEST_CASE("LD_PRELOAD has the shim first and keeps the user's entries without duplicates") {
  std::vector<std::string> notes;
  CHECK(merge_ld_preload(std::nullopt, kShim, &notes) == kShim);
  CHECK(merge_ld_preload(std::string(""), kShim, &notes) == kShim);
  CHECK(merge_ld_preload(std::string("/a/liba.so"), kShim, &notes) == kShim + ":/a/liba.so");
  CHECK(merge_ld_preload(std::string("/a/liba.so:/b/libb.so"), kShim, &notes) ==
        kShim + ":/a/liba.so:/b/libb.so");
  // ld.so also splits at blanks; empty entries are dropped.
  CHECK(merge_ld_preload(std::string(" /a/liba.so  libb.so::"), kShim, &notes) ==
        kShim + ":/a/liba.so:libb.so");
  CHECK(notes.empty());
  CHECK(merge_ld_preload(kShim, kShim, &notes) == kShim);
  CHECK(merge_ld_preload("/a/liba.so:" + kShim, kShim, &notes) == kShim + ":/a/liba.so");
  CHECK(any_contains(notes, "kept once"));
  // Another copy of the shim would interpose too: it is replaced.
  notes.clear();
  CHECK(merge_ld_preload(std::string("/old/libxpushim.so:/a/liba.so"), kShim, &notes) ==
        kShim + ":/a/liba.so");
  CHECK(any_contains(notes, "/old/libxpushim.so"));

  auto plan = compose_environment(env_of({{"LD_PRELOAD", "/a/liba.so"}}), {}, kShim, kGroup);
  REQUIRE(plan.ok());
  CHECK(plan.value().env.get("LD_PRELOAD") == kShim + ":/a/liba.so");
  CHECK(xpu::run::preload_has_shim(std::string("/a/liba.so /x/libxpushim.so"), kShim));
  CHECK_FALSE(xpu::run::preload_has_shim(std::string("/a/liba.so"), kShim));
  CHECK_FALSE(xpu::run::preload_has_shim(std::nullopt, kShim));
}

TEST_CASE("conflicts with inherited variables are caught before anything starts") {
  SECTION("HAMi's CUDA_DEVICE_MEMORY_LIMIT disagrees with --mem") {
    const std::vector<FlagValue> flags = {flag("--mem", "XPU_MEM_LIMIT", "2GiB")};
    auto plan =
        compose_environment(env_of({{"CUDA_DEVICE_MEMORY_LIMIT", "1g"}}), flags, kShim, kGroup);
    REQUIRE_FALSE(plan.ok());
    const std::string& msg = plan.error().message;
    CHECK(contains(msg, "conflicting"));
    CHECK(contains(msg, "XPU_MEM_LIMIT"));
    CHECK(contains(msg, "CUDA_DEVICE_MEMORY_LIMIT"));
    CHECK(xpu::run::attribute_to_flag(msg, flags).rfind("--mem: ", 0) == 0);
  }
  SECTION("HAMi's value agrees with --mem") {
    auto plan = compose_environment(env_of({{"CUDA_DEVICE_MEMORY_LIMIT", "1g"}}),
                                    {flag("--mem", "XPU_MEM_LIMIT", "1GiB")}, kShim, kGroup);
    CHECK(plan.ok());
  }
  SECTION("a malformed inherited HAMi value") {
    auto plan =
        compose_environment(env_of({{"CUDA_DEVICE_MEMORY_LIMIT", "lots"}}), {}, kShim, kGroup);
    REQUIRE_FALSE(plan.ok());
    CHECK(contains(plan.error().message, "CUDA_DEVICE_MEMORY_LIMIT='lots'"));
    CHECK(contains(plan.error().message, "Accepted"));
  }
  SECTION("a malformed inherited XPU_ variable") {
    auto plan = compose_environment(env_of({{"XPU_COMPUTE", "200"}}), {}, kShim, kGroup);
    REQUIRE_FALSE(plan.ok());
    CHECK(contains(plan.error().message, "XPU_COMPUTE='200'"));
  }
  SECTION("CUDA_DEVICE_SM_LIMIT disagrees with --compute") {
    auto plan = compose_environment(env_of({{"CUDA_DEVICE_SM_LIMIT", "50"}}),
                                    {flag("--compute", "XPU_COMPUTE", "30")}, kShim, kGroup);
    REQUIRE_FALSE(plan.ok());
    CHECK(contains(plan.error().message, "CUDA_DEVICE_SM_LIMIT"));
  }
}

TEST_CASE("errors are attributed to the flag by whole variable names") {
  const std::vector<FlagValue> flags = {flag("--compute", "XPU_COMPUTE", "30")};
  CHECK(xpu::run::attribute_to_flag("XPU_COMPUTE_MODE='x' is invalid", flags) ==
        "XPU_COMPUTE_MODE='x' is invalid");
  CHECK(xpu::run::attribute_to_flag("XPU_COMPUTE='x' is invalid", flags) ==
        "--compute: XPU_COMPUTE='x' is invalid");
  CHECK(xpu::run::attribute_to_flag("nothing", flags) == "nothing");
}

TEST_CASE("update_plan re-parses the composed environment") {
  auto plan =
      compose_environment(EnvBlock(), {flag("--mem", "XPU_MEM_LIMIT", "0=1GiB")}, kShim, kGroup);
  REQUIRE(plan.ok());
  const std::string uuid = "GPU-8f3c1a2b-0000-0000-0000-000000000001";
  REQUIRE(xpu::run::update_plan(plan.value(), "XPU_MEM_LIMIT", uuid + "=1GiB").ok());
  CHECK(plan.value().env.get("XPU_MEM_LIMIT") == uuid + "=1GiB");
  REQUIRE(plan.value().settings.mem_limit.devices.size() == 1);
  CHECK(plan.value().settings.mem_limit.devices[0].first.uuid.has_value());
  CHECK_FALSE(xpu::run::update_plan(plan.value(), "XPU_MEM_LIMIT", "nonsense").ok());
}

TEST_CASE("EnvBlock keeps the first of duplicate names like getenv") {
  std::string a = "A=1", b = "B=2", a2 = "A=3", junk = "NOEQUALS";
  char* envp[] = {a.data(), b.data(), a2.data(), junk.data(), nullptr};
  const EnvBlock env = EnvBlock::from_environ(envp);
  CHECK(env.get("A") == std::string("1"));
  CHECK(env.entries() == std::vector<std::string>{"A=1", "B=2"});
  CHECK(env.lookup()("B") == std::string("2"));
  CHECK_FALSE(env.lookup()("C").has_value());
}

TEST_CASE("the shim is found from XPU_SHIM_LIBRARY or the install layout or the build layout") {
  TempDir dir;
  SECTION("installed: <prefix>/bin/xpu-run -> <prefix>/lib/libxpushim.so") {
    const fs::path exe = dir.touch("prefix/bin/xpu-run");
    const fs::path shim = dir.touch("prefix/lib/libxpushim.so");
    auto found = xpu::run::locate_shim(EnvBlock(), exe.string());
    REQUIRE(found.ok());
    CHECK(found.value() == shim.string());
  }
  SECTION("not found: the error lists every path tried") {
    const fs::path exe = dir.touch("prefix/bin/xpu-run");
    auto found = xpu::run::locate_shim(EnvBlock(), exe.string());
    REQUIRE_FALSE(found.ok());
    CHECK(contains(found.error().message, (dir.path / "prefix/lib/libxpushim.so").string()));
    CHECK(contains(found.error().message, "XPU_SHIM_LIBRARY"));
  }
  SECTION("XPU_SHIM_LIBRARY wins and must exist") {
    const fs::path exe = dir.touch("prefix/bin/xpu-run");
    dir.touch("prefix/lib/libxpushim.so");
    const fs::path mine = dir.touch("elsewhere/libmine.so");
    auto found = xpu::run::locate_shim(env_of({{"XPU_SHIM_LIBRARY", mine.string()}}), exe.string());
    REQUIRE(found.ok());
    CHECK(found.value() == mine.string());
    auto missing = xpu::run::locate_shim(
        env_of({{"XPU_SHIM_LIBRARY", (dir.path / "nope.so").string()}}), exe.string());
    REQUIRE_FALSE(missing.ok());
    CHECK(contains(missing.error().message, "XPU_SHIM_LIBRARY='"));
    CHECK_FALSE(xpu::run::locate_shim(env_of({{"XPU_SHIM_LIBRARY", ""}}), exe.string()).ok());
  }
  SECTION("a relative XPU_SHIM_LIBRARY becomes absolute") {
    const fs::path mine = dir.touch("libmine.so");
    const fs::path cwd = fs::current_path();
    fs::current_path(dir.path);
    auto found = xpu::run::locate_shim(env_of({{"XPU_SHIM_LIBRARY", "./libmine.so"}}), "");
    fs::current_path(cwd);
    REQUIRE(found.ok());
    CHECK(found.value() == mine.string());
  }
  SECTION("a path LD_PRELOAD cannot express is refused") {
    const fs::path odd = dir.touch("a:b/libxpushim.so");
    auto found = xpu::run::locate_shim(env_of({{"XPU_SHIM_LIBRARY", odd.string()}}), "");
    REQUIRE_FALSE(found.ok());
    CHECK(contains(found.error().message, "LD_PRELOAD"));
  }
}
