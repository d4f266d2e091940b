// End-to-end: the built xpu-run binary with real child processes. XPU_SHIM_LIBRARY points at a
// tiny do-nothing shared library, so children are ordinary programs that ld.so can preload into.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "json_check.hpp"
#include "subprocess.hpp"
#include "xpu/common/settings.hpp"
#include "xpu/coordinator/segment.hpp"
#include "xpu/memquota/ledger.hpp"
#include "xpu/timeslice/arbiter.hpp"
#include "xpu/timeslice/clock.hpp"
#include "xpu_catch.hpp"

namespace co = xpu::coordinator;
namespace fs = std::filesystem;
namespace ts = xpu::timeslice;
using xpu_test::Process;

namespace {

const std::string kXpuRun = XPU_RUN_EXE;
const std::string kDummy = XPU_RUN_DUMMY_PRELOAD;

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> words;
  std::string w;
  for (char c : s) {
    if (c == ' ' || c == '\n') {
      if (!w.empty()) words.push_back(w);
      w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) words.push_back(w);
  return words;
}

// A minimal, explicit environment: nothing of the test runner's XPU_/HAMi variables leaks in.
std::vector<std::string> base_env(std::vector<std::string> extra = {}) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> env = {std::string("PATH=") + (path ? path : "/usr/bin:/bin"),
                                  "XPU_SHIM_LIBRARY=" + kDummy};
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

struct Result {
  int status = -1;
  std::string out, err;
};

Result run(std::vector<std::string> args, std::vector<std::string> env = base_env()) {
  args.insert(args.begin(), kXpuRun);
  Process p(args, env);
  auto st = p.wait(20);
  REQUIRE(st.has_value());
  return Result{xpu_test::shell_status(*st), p.out(), p.err()};
}

// Unique per test: segments live in /dev/shm, shared by everything on this machine.
std::string unique_segment(const char* what) {
  static int counter = 0;
  return "xpu-run-test-" + std::string(what) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++counter);
}

}  // namespace

TEST_CASE("a malformed size exits 2 before starting the command and names the variable") {
  const Result r = run({"--mem", "banana", "--", "sh", "-c", "echo started"});
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "xpu-run: --mem: XPU_MEM_LIMIT='banana' is invalid"));
  CHECK(contains(r.err, "Accepted: a size with a binary unit"));
}

TEST_CASE("bad input of every kind exits 2") {
  for (std::vector<std::string> args : {std::vector<std::string>{"--mem=0", "--", "true"},
                                        {"--mem", "-1GiB", "--", "true"},
                                        {"--mem", "10XiB", "--", "true"},
                                        {"--mem", "99999999999999999999GiB", "--", "true"},
                                        {"--compute", "0", "--", "true"},
                                        {"--mode", "fast", "--", "true"},
                                        {"--priority=urgent", "--", "true"},
                                        {"--log-level", "loud", "--", "true"},
                                        {"--group", "a b", "--", "true"},
                                        {"--node-segment", "a/b", "--", "true"},
                                        {"--bogus", "--", "true"},
                                        {"--mem", "1GiB", "true"},
                                        {"--mem", "1GiB", "--"},
                                        {}}) {
    const Result r = run(args);
    CHECK(r.status == 2);
    CHECK(contains(r.err, "xpu-run: "));
    CHECK(r.out.empty());
  }
}

TEST_CASE("the child sees LD_PRELOAD and the quota and one group") {
  const Result r =
      run({"--mem", "1GiB", "--", "sh", "-c", "echo $LD_PRELOAD $XPU_MEM_LIMIT $XPU_GROUP"});
  REQUIRE(r.status == 0);
  const auto words = split_words(r.out);
  REQUIRE(words.size() == 3);
  CHECK(words[0] == kDummy);
  CHECK(words[1] == "1GiB");
  CHECK(words[2].rfind("run-", 0) == 0);
  CHECK(xpu::validate_option("XPU_GROUP", words[2]).ok());
  CHECK(r.err.empty());
}

TEST_CASE("every process under one xpu-run is in the same group and two runs differ") {
  const std::vector<std::string> cmd = {"--", "sh", "-c",
                                        "echo $XPU_GROUP; sh -c 'echo $XPU_GROUP'"};
  const Result a = run(cmd);
  const Result b = run(cmd);
  const auto wa = split_words(a.out), wb = split_words(b.out);
  REQUIRE(wa.size() == 2);
  REQUIRE(wb.size() == 2);
  CHECK(wa[0] == wa[1]);
  CHECK(wa[0] != wb[0]);
}

TEST_CASE("flags override inherited variables and unrelated ones are kept") {
  const Result r = run({"--mem=2GiB", "--group", "g1", "--log-level", "info", "--", "sh", "-c",
                        "echo $XPU_MEM_LIMIT $XPU_GROUP $XPU_LOG_LEVEL $KEEP_ME"},
                       base_env({"XPU_MEM_LIMIT=5GiB", "XPU_GROUP=outer", "KEEP_ME=yes"}));
  REQUIRE(r.status == 0);
  CHECK(r.out == "2GiB g1 info yes\n");
  // --log-level info: xpu-run says what it overrode.
  CHECK(contains(r.err, "--mem overrides the inherited XPU_MEM_LIMIT='5GiB'"));
  CHECK(contains(r.err, "--group overrides the inherited XPU_GROUP='outer'"));
}

TEST_CASE("an inherited group is joined") {
  const Result r = run({"--", "sh", "-c", "echo $XPU_GROUP"}, base_env({"XPU_GROUP=outer"}));
  CHECK(r.out == "outer\n");
}

TEST_CASE("LD_PRELOAD keeps the user's entries and never holds the shim twice") {
  const std::string cmd = "echo $LD_PRELOAD";
  const Result same = run({"--", "sh", "-c", cmd}, base_env({"LD_PRELOAD=" + kDummy}));
  CHECK(same.out == kDummy + "\n");
  // A second copy of the dummy under another path stands for "the user's own library".
  const fs::path copy =
      fs::temp_directory_path() / ("xpu-run-user-" + std::to_string(getpid()) + ".so");
  fs::copy_file(kDummy, copy, fs::copy_options::overwrite_existing);
  const Result user = run({"--", "sh", "-c", cmd}, base_env({"LD_PRELOAD=" + copy.string()}));
  CHECK(user.out == kDummy + ":" + copy.string() + "\n");
  const Result both =
      run({"--", "sh", "-c", cmd}, base_env({"LD_PRELOAD=" + copy.string() + ":" + kDummy}));
  CHECK(both.out == kDummy + ":" + copy.string() + "\n");
  fs::remove(copy);
}

TEST_CASE("a conflict with an inherited CUDA_DEVICE_MEMORY_LIMIT exits 2") {
  const Result r = run({"--mem", "2GiB", "--", "sh", "-c", "echo started"},
                       base_env({"CUDA_DEVICE_MEMORY_LIMIT=1g"}));
  CHECK(r.status == 2);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "conflicting settings"));
  CHECK(contains(r.err, "CUDA_DEVICE_MEMORY_LIMIT"));
  CHECK(contains(r.err, "--mem"));
}

TEST_CASE("the command's exit status is xpu-run's") {
  CHECK(run({"--", "sh", "-c", "exit 7"}).status == 7);
  CHECK(run({"--", "true"}).status == 0);
  CHECK(run({"--", "false"}).status == 1);
}

TEST_CASE("death by a signal is reported as 128+N") {
  CHECK(run({"--", "sh", "-c", "kill -TERM $$"}).status == 143);
  CHECK(run({"--", "sh", "-c", "kill -KILL $$"}).status == 137);
}

TEST_CASE("signals sent to xpu-run reach the command") {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    Process p({kXpuRun, "--", "sh", "-c", "echo $$; exec sleep 30"}, base_env());
    const auto line = p.read_line(10);
    REQUIRE(line.has_value());
    const pid_t child = static_cast<pid_t>(std::stol(*line));
    REQUIRE(child > 0);
    const double start = xpu_test::now_s();
    REQUIRE(::kill(p.pid(), sig) == 0);
    const auto st = p.wait(5);
    REQUIRE(st.has_value());
    CHECK(xpu_test::shell_status(*st) == 128 + sig);
    CHECK(xpu_test::now_s() - start < 5);
    // The command is gone (xpu-run waited for it), not orphaned.
    errno = 0;
    CHECK(::kill(child, 0) == -1);
    CHECK(errno == ESRCH);
  }
}

TEST_CASE("a command that cannot be run exits 127 if not found and 126 if not executable") {
  const Result missing = run({"--", "xpu-run-no-such-command-anywhere"});
  CHECK(missing.status == 127);
  CHECK(contains(missing.err, "xpu-run-no-such-command-anywhere"));
  const fs::path plain = fs::temp_directory_path() / ("xpu-run-noexec-" + std::to_string(getpid()));
  std::ofstream(plain) << "echo hi\n";
  fs::permissions(plain, fs::perms::owner_read | fs::perms::owner_write);
  const Result noexec = run({"--", plain.string()});
  fs::remove(plain);
  // No x bit at all: execve refuses with EACCES, even for root.
  CHECK(noexec.status == 126);
  CHECK(contains(noexec.err, "cannot run"));
}

TEST_CASE("help lists every option of the table and version prints") {
  const Result r = run({"--help"});
  CHECK(r.status == 0);
  for (const xpu::OptionInfo& row : xpu::option_table()) {
    CHECK(contains(r.out, std::string(row.flag) + " " + std::string(row.metavar)));
    CHECK(contains(r.out, std::string(row.env)));
  }
  CHECK(contains(r.out, "CUDA_DEVICE_MEMORY_LIMIT"));
  CHECK(run({"-h"}).status == 0);
  const Result v = run({"--version"});
  CHECK(v.status == 0);
  CHECK(contains(v.out, "xpu-run"));
}

TEST_CASE("dry run prints the settings and the environment and runs nothing") {
  const Result r =
      run({"--dry-run", "--mem", "512MiB", "--group", "dry", "--", "sh", "-c", "echo ran"});
  CHECK(r.status == 0);
  CHECK_FALSE(contains(r.out, "\nran\n"));
  CHECK(contains(r.out, "memory quota: 512.00 MiB on each device"));
  CHECK(contains(r.out, "XPU_MEM_LIMIT=512MiB"));
  CHECK(contains(r.out, "XPU_GROUP=dry"));
  CHECK(contains(r.out, "LD_PRELOAD=" + kDummy));
  CHECK(contains(r.out, "Command: sh -c 'echo ran'"));
}

TEST_CASE("without XPU_SHIM_LIBRARY the shim is looked for next to the binary") {
  const char* path = std::getenv("PATH");
  const Result r = run({"--dry-run"}, {std::string("PATH=") + (path ? path : "/bin")});
  // The build tree's layout: build/tools/xpu-run/xpu-run -> build/libxpushim/libxpushim.so.
  const std::string build_shim =
      (fs::path(kXpuRun).parent_path() / "../../libxpushim/libxpushim.so").lexically_normal();
  if (fs::exists(build_shim)) {
    CHECK(r.status == 0);
    CHECK(contains(r.out, "LD_PRELOAD=" + build_shim));
  } else {
    CHECK(r.status == 2);
    CHECK(contains(r.err, build_shim));
    CHECK(contains(r.err, "XPU_SHIM_LIBRARY"));
  }
  const Result bad = run({"--", "true"}, {"XPU_SHIM_LIBRARY=/nonexistent/libxpushim.so"});
  CHECK(bad.status == 2);
  CHECK(contains(bad.err, "XPU_SHIM_LIBRARY='/nonexistent/libxpushim.so'"));
}

TEST_CASE("status without a segment says so and exits 0") {
  const std::string seg = unique_segment("none");
  const Result text = run({"status"}, base_env({"XPU_NODE_SEGMENT=" + seg}));
  CHECK(text.status == 0);
  CHECK(text.out == "no xpushim processes on this node\n");
  const Result json = run({"status", "--json", "--node-segment", seg});
  CHECK(json.status == 0);
  CHECK(contains(json.out, R"("exists":false)"));
  CHECK(run({"status", "--bogus"}).status == 2);
  // A bad unrelated variable does not stop status.
  CHECK(run({"status"}, base_env({"XPU_NODE_SEGMENT=" + seg, "XPU_MEM_LIMIT=banana"})).status == 0);
}

namespace {

// A segment of the tests' own name in /dev/shm, removed at the end of the test however it ends.
struct TestSegment {
  explicit TestSegment(const char* what) : name(unique_segment(what)) {}
  ~TestSegment() {
    std::error_code ec;
    fs::remove("/dev/shm/" + name, ec);
  }
  TestSegment(const TestSegment&) = delete;
  TestSegment& operator=(const TestSegment&) = delete;
  std::string name;
};

// One registered process of a real segment: its own handle (its own open file description, so
// two of them in this test process hold two slots), a device and a slot in the named group.
struct Member {
  Member(const std::string& segment, const std::string& group, co::SlotCompute compute) {
    auto opened = co::NodeSegment::open(segment);
    REQUIRE(opened.ok());
    handle = std::move(opened).value();
    xpu::Uuid uuid;
    uuid.bytes[0] = 0x5e;
    uuid.bytes[15] = 0x01;
    auto d = handle->device_index(uuid, 16ull << 30);
    REQUIRE(d.ok());
    device = d.value();
    auto s = handle->claim_slot(group, co::ProcessIdentity::current(), compute);
    REQUIRE(s.ok());
    slot = s.value();
  }
  ~Member() {
    if (handle) handle->release_slot();
  }
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;
  std::unique_ptr<co::NodeSegment> handle;
  std::uint32_t device = 0;
  std::uint32_t slot = 0;
};

co::SlotCompute arbitrated(std::uint8_t percent, xpu::ComputeMode mode, xpu::Priority priority) {
  return co::SlotCompute{true, percent, static_cast<std::uint8_t>(mode),
                         static_cast<std::uint8_t>(priority)};
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', start)) {
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace

TEST_CASE("status shows a live process of a real segment") {
  const TestSegment seg("live");
  Member me(seg.name, "status-test",
            arbitrated(30, xpu::ComputeMode::share, xpu::Priority::normal));
  REQUIRE(me.handle->set_group_quota(me.device, 1ull << 30).ok());
  xpu::memquota::Ledger(me.handle->layout().ledger).force_charge(me.slot, me.device, 300ull << 20);
  // It computes on the GPU, alone there: the scheduler measures nothing then.
  ts::Arbiter arbiter(me.handle->schedule(me.device), me.slot);
  REQUIRE(arbiter.join(ts::monotonic_now_ns(), me.handle->own_group(), 30, ts::Mode::kShare,
                       ts::Priority::kNormal));
  REQUIRE(arbiter.before_launch(ts::monotonic_now_ns()).go());

  const Result json = run({"status", "--json"}, base_env({"XPU_NODE_SEGMENT=" + seg.name}));
  CHECK(json.status == 0);
  INFO(json.out);
  CHECK(contains(json.out, R"("uuid":"GPU-5e000000-0000-0000-0000-000000000001")"));
  CHECK(contains(json.out, R"("physical_bytes":17179869184)"));
  CHECK(contains(json.out, R"("holder_group":"status-test","holder_group_index":)"));
  CHECK(contains(json.out, R"("name":"status-test","quota_bytes":1073741824,)"
                           R"("used_bytes":314572800)"));
  CHECK(contains(json.out, "\"pid\":" + std::to_string(::getpid()) + ","));
  CHECK(contains(json.out, R"("charged_bytes":314572800,"arbitrated":true,"compute_percent":30,)"
                           R"("compute_mode":"share","priority":"normal","state":"alone",)"
                           R"("delivered_share_percent":null,"gpu_utilization_percent":null,)"
                           R"("gpu_ns_total":0,"heartbeat_age_ms":)"));
  CHECK(json.out.back() == '\n');
  CHECK(xpu_test::JsonCheck::valid(json.out));

  const Result text = run({"status", "--node-segment", seg.name});
  CHECK(text.status == 0);
  INFO(text.out);
  CHECK(contains(text.out, "1 GPU, 1 group, 1 process"));
  CHECK(contains(text.out, "compute: held by status-test for "));
  CHECK(contains(text.out, "status-test"));
  CHECK(contains(text.out, "300.00 MiB / 1.00 GiB  30%   share normal           -      -  alone"));
  CHECK(contains(text.out, std::to_string(::getpid())));

  // --watch refreshes until interrupted (SIGINT or SIGTERM), then exits 0.
  for (int sig : {SIGINT, SIGTERM}) {
    Process watch({kXpuRun, "status", "--json", "--watch", "0.1", "--node-segment", seg.name},
                  base_env());
    REQUIRE(watch.read_line(10).has_value());
    REQUIRE(watch.read_line(10).has_value());
    ::kill(watch.pid(), sig);
    const auto st = watch.wait(5);
    REQUIRE(st.has_value());
    CHECK(xpu_test::shell_status(*st) == 0);
  }
}

TEST_CASE("status shows configured and delivered shares of two competing groups") {
  const TestSegment seg("shares");
  Member alpha(seg.name, "alpha", arbitrated(30, xpu::ComputeMode::share, xpu::Priority::normal));
  Member beta(seg.name, "beta", arbitrated(0, xpu::ComputeMode::share, xpu::Priority::low));
  REQUIRE(alpha.device == beta.device);
  ts::Arbiter a(alpha.handle->schedule(alpha.device), alpha.slot);
  ts::Arbiter b(beta.handle->schedule(beta.device), beta.slot);
  const ts::Nanos now = ts::monotonic_now_ns();
  REQUIRE(a.join(now, alpha.handle->own_group(), 30, ts::Mode::kShare, ts::Priority::kNormal));
  REQUIRE(b.join(now, beta.handle->own_group(), 100, ts::Mode::kShare, ts::Priority::kLow));
  // alpha takes the device and is charged 300 ms of GPU time; beta must wait, then gets 100 ms.
  REQUIRE(a.before_launch(now).go());
  a.on_launch(now);
  a.on_complete(now, 1, 300'000'000);
  a.on_launch(now);  // more work in flight: alpha keeps holding
  REQUIRE_FALSE(b.before_launch(now).go());
  b.on_complete(now, 0, 100'000'000);

  const Result json = run({"status", "--json", "--node-segment", seg.name});
  REQUIRE(json.status == 0);
  INFO(json.out);
  CHECK(xpu_test::JsonCheck::valid(json.out));
  CHECK(contains(json.out, R"("holder_group":"alpha")"));
  CHECK(contains(json.out, R"("arbitrated":true,"compute_percent":30,"compute_mode":"share",)"
                           R"("priority":"normal","state":"holds",)"
                           R"("delivered_share_percent":75.00,"gpu_utilization_percent":)"));
  CHECK(contains(json.out, R"("arbitrated":true,"compute_percent":null,"compute_mode":"share",)"
                           R"("priority":"low","state":)"));
  CHECK(contains(json.out, R"("delivered_share_percent":25.00,"gpu_utilization_percent":)"));
  CHECK(contains(json.out, R"("gpu_ns_total":300000000,)"));
  CHECK(contains(json.out, R"("gpu_ns_total":100000000,)"));

  const Result text = run({"status", "--node-segment", seg.name});
  REQUIRE(text.status == 0);
  INFO(text.out);
  CHECK(contains(text.out, "1 GPU, 2 groups, 2 processes"));
  CHECK(contains(text.out, "compute: held by alpha for "));
  CHECK(contains(text.out, "30%   share normal       75.0%"));
  CHECK(contains(text.out, "w100  share low          25.0%"));
  CHECK(contains(text.out, "holds\n"));
}

TEST_CASE("status survives a schedule table of random bytes") {
  const TestSegment seg("corrupt");
  Member me(seg.name, "victim", arbitrated(50, xpu::ComputeMode::cap, xpu::Priority::high));
  std::mt19937_64 rng(7);
  for (int round = 0; round < 5; ++round) {
    for (std::uint32_t d = 0; d < xpu::kMaxDevices; ++d) {
      auto* bytes = reinterpret_cast<unsigned char*>(&me.handle->schedule(d));
      for (std::size_t i = 0; i < sizeof(ts::DeviceSchedule); ++i)
        bytes[i] = static_cast<unsigned char>(rng());
    }
    const Result text = run({"status", "--node-segment", seg.name});
    CHECK(text.status == 0);
    CHECK(contains(text.out, "victim"));
    CHECK(std::all_of(text.out.begin(), text.out.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return (u >= 0x20 && u != 0x7f) || c == '\n';
    }));
    const Result json = run({"status", "--json", "--node-segment", seg.name});
    CHECK(json.status == 0);
    CHECK(xpu_test::JsonCheck::valid(json.out));
  }
}

TEST_CASE("status --watch prints one snapshot per interval") {
  const TestSegment seg("watch");
  Member me(seg.name, "watched", arbitrated(0, xpu::ComputeMode::share, xpu::Priority::normal));
  const double start = xpu_test::now_s();
  const Result text =
      run({"status", "--watch", "0.05", "--watch-count", "3", "--node-segment", seg.name});
  CHECK(text.status == 0);
  CHECK(xpu_test::now_s() - start >= 0.1);  // two intervals between three snapshots
  // Not a terminal: no escape sequences, snapshots parted by a separator line.
  CHECK_FALSE(contains(text.out, "\x1b"));
  CHECK(count(text.out, "Node segment /dev/shm/" + seg.name) == 3);
  CHECK(count(text.out,
              "\n------------------------------------------------------------------------\n") == 2);
  CHECK(text.out.rfind("Node segment", 0) == 0);

  // With --json: JSON lines, one document per snapshot.
  const Result json =
      run({"status", "--json", "--watch=0.05", "--watch-count=4", "--node-segment", seg.name});
  CHECK(json.status == 0);
  const auto lines = lines_of(json.out);
  CHECK(lines.size() == 4);
  for (const std::string& line : lines) {
    CHECK(xpu_test::JsonCheck::valid(line));
    CHECK(contains(line, R"("group":"watched")"));
  }

  // Without a segment, --watch keeps saying so.
  const Result absent = run({"status", "--json", "--watch", "0.05", "--watch-count", "2",
                             "--node-segment", unique_segment("absent")});
  CHECK(absent.status == 0);
  CHECK(count(absent.out, R"("exists":false)") == 2);
}

TEST_CASE("bad --watch values are refused before anything is printed") {
  for (std::vector<std::string> args : {std::vector<std::string>{"status", "--watch", "0"},
                                        {"status", "--watch", "-1"},
                                        {"status", "--watch=3601"},
                                        {"status", "--watch", "soon"},
                                        {"status", "--watch", "1e3"},
                                        {"status", "--watch-count", "0"},
                                        {"status", "--watch-count"}}) {
    const Result r = run(args);
    INFO(args[1] + (args.size() > 2 ? " " + args[2] : ""));
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    CHECK(contains(r.err, "xpu-run: --watch"));
    CHECK(contains(r.err, "Try 'xpu-run --help'"));
  }
  const Result r = run({"status", "--watch", "0"});
  CHECK(contains(r.err,
                 "xpu-run: --watch: '0' is not a refresh period. Accepted: a number of seconds "
                 "from 0.01 to 3600 (2, 0.5)\n"));
}

#ifdef XPU_RUN_FAKE_LIB_DIR
// With the simulated driver on the library path, xpu-run checks quotas against the devices and
// pins ordinals to UUIDs (the fake's UUIDs are GPU-face0000-...-0000000000NN).
TEST_CASE("with a driver ordinals become UUIDs and oversized quotas are refused") {
  const std::vector<std::string> fake = {std::string("LD_LIBRARY_PATH=") + XPU_RUN_FAKE_LIB_DIR,
                                         "XPU_FAKE_DEVICES=2", "XPU_FAKE_TOTAL_MEM=17179869184"};
  const Result pinned =
      run({"--mem", "0=1GiB,1=25%", "--", "sh", "-c", "echo $XPU_MEM_LIMIT"}, base_env(fake));
  CHECK(pinned.status == 0);
  CHECK(pinned.out ==
        "GPU-face0000-0000-0000-0000-000000000000=1GiB,"
        "GPU-face0000-0000-0000-0000-000000000001=25%\n");
  const Result too_big =
      run({"--mem", "1=17GiB", "--", "sh", "-c", "echo started"}, base_env(fake));
  CHECK(too_big.status == 2);
  CHECK(too_big.out.empty());
  CHECK(contains(too_big.err, "--mem: XPU_MEM_LIMIT"));
  CHECK(contains(too_big.err, "larger than device 1"));
  const Result absent = run({"--mem", "2=1GiB", "--", "true"}, base_env(fake));
  CHECK(absent.status == 2);
  CHECK(contains(absent.err, "names device 2"));
  const Result everywhere = run({"--mem", "20GiB", "--", "true"}, base_env(fake));
  CHECK(everywhere.status == 2);
}
#endif

TEST_CASE("without a driver ordinal keys are kept for the shim to resolve") {
  const Result r =
      run({"--mem", "0=1GiB", "--log-level=info", "--", "sh", "-c", "echo $XPU_MEM_LIMIT"},
          base_env({"LD_LIBRARY_PATH=/nonexistent"}));
  CHECK(r.status == 0);
  if (r.out == "0=1GiB\n") {
    CHECK(contains(r.err, "device check skipped"));
  } else {
    // A machine with a real driver in the default search path: device 0 was pinned.
    CHECK(r.out.rfind("GPU-", 0) == 0);
  }
}
