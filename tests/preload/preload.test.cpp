// Tier 3: real processes under LD_PRELOAD=libxpushim.so against the simulated driver, which
// they find through LD_LIBRARY_PATH exactly as they would find the real one.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "xpu_catch.hpp"

using namespace xpu::test;
using namespace std::chrono_literals;

namespace {

constexpr unsigned long long MiB = 1ULL << 20;
constexpr unsigned long long GiB = 1ULL << 30;
constexpr unsigned long long kCtx = 256 * MiB;  // the simulated context footprint (default)

// One simulated device and one node segment per scenario, shared by its processes.
struct Node {
  std::string segment, state;
  Node() {
    static int n = 0;
    const std::string id = std::to_string(::getpid()) + "-" + std::to_string(++n);
    segment = "xpushim-preload-" + id;
    state = "/dev/shm/xpushim-fake-" + id;
  }
  ~Node() {
    ::unlink(("/dev/shm/" + segment).c_str());
    ::unlink(state.c_str());
  }
  EnvMap env(EnvMap extra = {}) const {
    EnvMap e = current_environment();
    for (const char* k : {"XPU_MEM_LIMIT", "XPU_GROUP", "XPU_COMPUTE", "CUDA_DEVICE_MEMORY_LIMIT",
                          "XPU_LOG_LEVEL", "LD_PRELOAD"})
      e.erase(k);
    e["LD_PRELOAD"] = XPU_TEST_SHIM;
    e["LD_LIBRARY_PATH"] = XPU_TEST_FAKE_DIR;
    e["XPU_FAKE_STATE"] = state;
    e["XPU_FAKE_TOTAL_MEM"] = std::to_string(16 * GiB);
    e["XPU_NODE_SEGMENT"] = segment;
    for (auto& [k, v] : extra) e[k] = v;
    return e;
  }
};

std::string probe_for(const std::string& path) {
  return path == "direct" ? XPU_TEST_PROBE_DIRECT : XPU_TEST_PROBE;
}

struct Run {
  int code;
  std::string out, err;
};

Run run(const Node& node, const std::string& path, std::vector<std::string> args,
        EnvMap extra = {}) {
  std::vector<std::string> argv = {probe_for(path), path};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv, node.env(std::move(extra)));
  const int code = p.wait();
  return {code, p.out(), p.err()};
}

unsigned long long num(const std::string& text, const std::string& key) {
  const std::string v = value_of(text, key);
  INFO(key << " in: " << text);
  REQUIRE_FALSE(v.empty());
  return std::stoull(v);
}

}  // namespace

TEST_CASE("every entry path sees the quota as the device and is stopped at it", "[preload]") {
  for (const std::string path : {"direct", "dlsym", "gpa", "gpa_pt"}) {
    CAPTURE(path);
    Node node;
    auto info = run(node, path, {"info"}, {{"XPU_MEM_LIMIT", "1GiB"}});
    REQUIRE(info.code == 0);
    CHECK(num(info.out, "init") == 0);
    CHECK(num(info.out, "total") == 1 * GiB);
    CHECK(num(info.out, "device_total") == 1 * GiB);
    CHECK(num(info.out, "free") == 1 * GiB - kCtx);  // the context's own memory counts
    CHECK(num(info.out, "null_free_rc") == 1);       // the driver's answer to a NULL argument

    auto fill = run(node, path, {"fill", "64"}, {{"XPU_MEM_LIMIT", "1GiB"}});
    REQUIRE(fill.code == 0);
    CHECK(num(fill.out, "error") == 2);  // CUDA_ERROR_OUT_OF_MEMORY, what frameworks expect
    CHECK(num(fill.out, "allocated") == 1 * GiB - kCtx);
    CHECK(num(fill.out, "free_at_full") == 0);
    CHECK(num(fill.out, "realloc") == 0);  // freeing makes room again
    CHECK(num(fill.out, "free_after") == 1 * GiB - kCtx);
  }
}

TEST_CASE("without settings the shim passes everything through", "[preload]") {
  Node node;
  auto info = run(node, "gpa", {"info"});
  REQUIRE(info.code == 0);
  CHECK(num(info.out, "total") == 16 * GiB);
  CHECK(num(info.out, "device_total") == 16 * GiB);
}

TEST_CASE("HAMi's variables set the same quota", "[preload][hami]") {
  Node node;
  auto info = run(node, "gpa", {"info"}, {{"CUDA_DEVICE_MEMORY_LIMIT", "2048m"}});
  CHECK(num(info.out, "total") == 2 * GiB);
}

TEST_CASE("every allocation API is charged and given back", "[preload]") {
  Node node;
  auto r = run(node, "gpa", {"kinds"}, {{"XPU_MEM_LIMIT", "4GiB"}});
  REQUIRE(r.code == 0);
  auto line = [&](const std::string& kind) {
    const auto pos = r.out.find("kind=" + kind + " ");
    INFO(r.out);
    REQUIRE(pos != std::string::npos);
    return r.out.substr(pos, r.out.find('\n', pos) - pos);
  };
  for (const std::string kind : {"pitch", "managed", "async", "vmm", "array"}) {
    CAPTURE(kind);
    const std::string l = line(kind);
    CHECK(num(l, "rc") == 0);
    CHECK(num(l, "charged") > 0);
    CHECK(num(l, "returned") == num(l, "charged"));
  }
  CHECK(num(line("pitch"), "charged") == 1024 * 1024);  // pitch x height, not width x height
  CHECK(num(line("managed"), "charged") == 64 * MiB);
  CHECK(num(line("async"), "charged") >= 64 * MiB);  // what the pool reserved
  CHECK(num(line("vmm"), "charged") == 64 * MiB);
  CHECK(num(line("array"), "charged") >= 64 * MiB);
}

TEST_CASE("a bad configuration fails CUDA initialisation with a clear message", "[preload]") {
  struct Case {
    const char* var;
    const char* value;
    const char* says;
  };
  for (const Case c :
       {Case{"XPU_MEM_LIMIT", "banana", "Accepted:"}, Case{"XPU_MEM_LIMIT", "0GiB", "zero"},
        Case{"XPU_MEM_LIMIT", "32GiB", "larger than device 0"},
        Case{"CUDA_DEVICE_MEMORY_LIMIT", "0", "CUDA_DEVICE_MEMORY_LIMIT"},
        Case{"XPU_GROUP", "bad name", "XPU_GROUP"}}) {
    CAPTURE(c.var, c.value);
    Node node;
    EnvMap extra = {{c.var, c.value}};
    if (std::string(c.var) == "XPU_GROUP") extra["XPU_MEM_LIMIT"] = "1GiB";
    auto r = run(node, "gpa", {"info"}, extra);
    CHECK(num(r.out, "init") == 1);  // CUDA_ERROR_INVALID_VALUE: never "unlimited"
    CHECK(r.err.find(c.var) != std::string::npos);
    CHECK(r.err.find(c.says) != std::string::npos);
  }
}

TEST_CASE("group members share one quota, and a SIGKILLed member's memory is back within 1 s",
          "[preload][group][sigkill]") {
  Node node;
  const EnvMap group = {{"XPU_MEM_LIMIT", "2GiB"}, {"XPU_GROUP", "team"}};
  ChildProcess holder({XPU_TEST_PROBE, "dlsym", "hold", "1200"}, node.env(group));
  REQUIRE(holder.wait_for_output("held", 10s).find("held rc=0") != std::string::npos);
  // 2 GiB - (256 MiB + 1200 MiB held) - 256 MiB for the newcomer's own context = 336 MiB left.
  auto denied = run(node, "direct", {"try", "400"}, group);
  CHECK(num(denied.out, "rc") == 2);
  auto other_group = run(node, "direct", {"try", "400"}, {{"XPU_MEM_LIMIT", "2GiB"}});
  CHECK(num(other_group.out, "rc") == 0);  // another group is not affected

  holder.kill(SIGKILL);
  holder.wait();
  const auto killed = std::chrono::steady_clock::now();
  auto after = run(node, "direct", {"try", "400"}, group);
  const auto took = std::chrono::steady_clock::now() - killed;
  CHECK(num(after.out, "rc") == 0);
  CHECK(took < 1s);
}

TEST_CASE("concurrent processes of one group never exceed the quota together",
          "[preload][group][concurrency]") {
  Node node;
  const EnvMap group = {{"XPU_MEM_LIMIT", "2GiB"},
                        {"XPU_GROUP", "racers"},
                        {"XPU_FAKE_CTX_BYTES", std::to_string(16 * MiB)}};
  constexpr int kProcs = 6;
  std::vector<std::unique_ptr<ChildProcess>> procs;
  for (int i = 0; i < kProcs; ++i)
    procs.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{XPU_TEST_PROBE, "gpa", "grab", "64"}, node.env(group)));
  for (auto& p : procs)
    REQUIRE(p->wait_for_output("ready", 20s).find("ready") != std::string::npos);
  for (auto& p : procs) p->write_stdin("g");  // all race for the quota now
  unsigned long long total = 0;
  for (auto& p : procs) total += num(p->wait_for_output("grabbed=", 20s), "grabbed");
  const unsigned long long room = 2 * GiB - kProcs * 16 * MiB;
  CHECK(total <= room);
  CHECK(total > room - 64 * MiB);  // and the quota was used, not refused early
  for (auto& p : procs) CHECK(p->wait() == 0);
}

TEST_CASE("cuGetProcAddress and dlsym hand out hooks only for hooked exports", "[preload][gpa]") {
  Node node;
  auto r = run(node, "gpa", {"gpa"}, {{"XPU_MEM_LIMIT", "1GiB"}});
  REQUIRE(r.code == 0);
  auto line = [&](const std::string& name) {
    const std::string text = "\n" + r.out;
    const auto pos = text.find("\n" + name + " ");
    INFO(r.out);
    REQUIRE(pos != std::string::npos);
    return text.substr(pos + 1, text.find('\n', pos + 1) - pos - 1);
  };
  CHECK(value_of(line("gpa_self"), "lib") == "libxpushim.so");
  CHECK(line("alloc13000") == "alloc13000 rc=0 status=0 lib=libxpushim.so");
  CHECK(line("alloc2000") == "alloc2000 rc=0 status=0 lib=libxpushim.so");  // the v1 ABI hook
  CHECK(line("alloc1000") == "alloc1000 rc=0 status=2 lib=none");           // driver's verdict
  CHECK(line("alloc13010") == "alloc13010 rc=1 status=-1 lib=untouched");
  CHECK(line("alloc_v2name") == "alloc_v2name rc=0 status=1 lib=none");
  CHECK(line("async_pt") == "async_pt rc=0 status=0 lib=libxpushim.so");
  CHECK(line("name") == "name rc=0 status=0 lib=libcuda.so.1");  // not hooked: the driver's
  CHECK(line("gpa") == "gpa rc=0 status=0 lib=libxpushim.so");
  CHECK(line("gpa4") == "gpa4 rc=0 status=0 lib=libxpushim.so");
  CHECK(line("badflags") == "badflags rc=1 status=-1 lib=untouched");
  CHECK(value_of(line("dlsym_alloc"), "lib") == "libxpushim.so");
  CHECK(value_of(line("dlsym_name"), "lib") == "libcuda.so.1");
  CHECK(r.out.find("dlsym_next_malloc=found") != std::string::npos);
}

TEST_CASE("NVML memory info shows the quota inside a quota'd CUDA process", "[preload][nvml]") {
  Node node;
  auto r = run(node, "gpa", {"nvml"}, {{"XPU_MEM_LIMIT", "3GiB"}});
  REQUIRE(r.code == 0);
  CHECK(num(r.out, "nvml_total") == 3 * GiB);
  CHECK(num(r.out, "nvml_v2_total") == 3 * GiB);
  CHECK(num(r.out, "nvml_free") == 3 * GiB - kCtx);
}
