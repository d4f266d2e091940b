// `xpu-run status` on a segment image in ordinary memory: what is shown, the formats, and
// corrupted values that must neither crash nor be believed.
#include <cstring>
#include <memory>
#include <string>

#include "status.hpp"
#include "xpu/common/settings.hpp"
#include "xpu/coordinator/layout.hpp"
#include "xpu_catch.hpp"

namespace co = xpu::coordinator;
using xpu::run::format_json;
using xpu::run::format_text;
using xpu::run::json_escape;
using xpu::run::snapshot;

namespace {

constexpr auto kReady = static_cast<std::uint32_t>(co::EntryState::ready);
constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// A segment as the coordinator leaves it: value-initialised (all zero = empty), slots without
// a group.
std::unique_ptr<co::NodeLayout> empty_layout() {
  auto layout = std::make_unique<co::NodeLayout>();
  for (auto& s : layout->slots) s.group.store(co::kNoGroup);
  return layout;
}

void add_device(co::NodeLayout& l, std::uint32_t d, std::uint8_t tag, std::uint64_t bytes) {
  std::memset(l.devices[d].uuid, 0, 16);
  l.devices[d].uuid[0] = 0xfa;
  l.devices[d].uuid[15] = tag;
  l.devices[d].physical_bytes.store(bytes);
  l.devices[d].state.store(kReady);
}

void add_group(co::NodeLayout& l, std::uint32_t g, const char* name) {
  std::strncpy(l.groups[g].name, name, sizeof(l.groups[g].name) - 1);
  l.groups[g].members.store(1);
  l.groups[g].state.store(kReady);
}

void add_slot(co::NodeLayout& l, std::uint32_t s, std::uint32_t group, std::uint32_t pid,
              const char* comm) {
  l.slots[s].pid = pid;
  std::strncpy(l.slots[s].comm, comm, sizeof(l.slots[s].comm) - 1);
  l.slots[s].group.store(group);
  if (group < xpu::kMaxGroups) l.ledger.slot_group[s].store(static_cast<std::uint16_t>(group + 1));
  l.slots[s].state.store(kReady);
}

// Two GPUs; group "alpha" (slots 0, 1) has 1 GiB on GPU 0 and charges there; group "beta"
// (slot 2) has no quota ("unlimited") on GPU 1 and charges there; group "idle" (slot 3) is on
// no GPU.
std::unique_ptr<co::NodeLayout> sample() {
  auto l = empty_layout();
  add_device(*l, 0, 1, 80 * kGiB);
  add_device(*l, 1, 2, 40 * kGiB);
  add_group(*l, 0, "alpha");
  add_group(*l, 1, "beta");
  add_group(*l, 2, "idle");
  add_slot(*l, 0, 0, 1001, "python");
  add_slot(*l, 1, 0, 1002, "worker");
  add_slot(*l, 2, 1, 2001, "train");
  add_slot(*l, 3, 2, 3001, "sleepy");
  l->ledger.quota[0][0].store(kGiB);
  l->ledger.charged[0][0].store(100 * kMiB);
  l->ledger.charged[0][1].store(28 * kMiB);
  l->ledger.quota[1][1].store(xpu::memquota::kUnlimited);
  l->ledger.charged[1][2].store(3 * kGiB);
  return l;
}

}  // namespace

TEST_CASE("snapshot lists devices and the groups on each with their processes and usage") {
  auto l = sample();
  const auto view = snapshot(*l, "seg");
  CHECK(view.segment == "/dev/shm/seg");
  CHECK(view.process_count == 4);
  CHECK(view.group_count == 3);
  REQUIRE(view.devices.size() == 2);
  CHECK(view.devices[0].uuid == "GPU-fa000000-0000-0000-0000-000000000001");
  CHECK(view.devices[0].physical_bytes == 80 * kGiB);
  REQUIRE(view.devices[0].groups.size() == 1);
  const auto& alpha = view.devices[0].groups[0];
  CHECK(alpha.name == "alpha");
  CHECK(alpha.quota == kGiB);
  CHECK(alpha.used == 128 * kMiB);
  REQUIRE(alpha.processes.size() == 2);
  CHECK(alpha.processes[0].pid == 1001);
  CHECK(alpha.processes[0].comm == "python");
  CHECK(alpha.processes[0].charged == 100 * kMiB);
  CHECK(alpha.processes[1].charged == 28 * kMiB);
  REQUIRE(view.devices[1].groups.size() == 1);
  CHECK(view.devices[1].groups[0].name == "beta");
  CHECK_FALSE(view.devices[1].groups[0].quota.has_value());
  CHECK(view.devices[1].groups[0].used == 3 * kGiB);
  REQUIRE(view.off_gpu.size() == 1);
  CHECK(view.off_gpu[0].comm == "sleepy");
  CHECK(view.off_gpu[0].group == "idle");
}

TEST_CASE("text format") {
  auto l = sample();
  const std::string text = format_text(snapshot(*l, "seg"));
  CHECK(contains(text, "/dev/shm/seg: 2 GPUs, 3 groups, 4 processes"));
  CHECK(contains(text, "GPU-fa000000-0000-0000-0000-000000000001  80.00 GiB"));
  CHECK(contains(text, "alpha"));
  CHECK(contains(text, "1.00 GiB"));
  CHECK(contains(text, "128.00 MiB"));
  CHECK(contains(text, "1001"));
  CHECK(contains(text, "python"));
  CHECK(contains(text, "none"));  // beta's quota
  CHECK(contains(text, "SHARE"));
  CHECK(contains(text, "PRIORITY"));
  CHECK(contains(text, "without memory on any GPU"));
  CHECK(contains(text, "sleepy"));
}

TEST_CASE("JSON format") {
  auto l = sample();
  const std::string json = format_json(snapshot(*l, "seg"));
  const std::string expected =
      R"({"segment":"/dev/shm/seg","exists":true,"devices":[)"
      R"({"uuid":"GPU-fa000000-0000-0000-0000-000000000001","physical_bytes":85899345920,)"
      R"("groups":[{"name":"alpha","quota_bytes":1073741824,"used_bytes":134217728,"processes":[)"
      R"({"slot":0,"pid":1001,"comm":"python","group":"alpha","charged_bytes":104857600,)"
      R"("compute_percent":null,"compute_mode":null,"priority":null},)"
      R"({"slot":1,"pid":1002,"comm":"worker","group":"alpha","charged_bytes":29360128,)"
      R"("compute_percent":null,"compute_mode":null,"priority":null}]}]},)"
      R"({"uuid":"GPU-fa000000-0000-0000-0000-000000000002","physical_bytes":42949672960,)"
      R"("groups":[{"name":"beta","quota_bytes":null,"used_bytes":3221225472,"processes":[)"
      R"({"slot":2,"pid":2001,"comm":"train","group":"beta","charged_bytes":3221225472,)"
      R"("compute_percent":null,"compute_mode":null,"priority":null}]}]}],)"
      R"("processes_without_gpu":[{"slot":3,"pid":3001,"comm":"sleepy","group":"idle",)"
      R"("compute_percent":null,"compute_mode":null,"priority":null}],)"
      R"("process_count":4,"group_count":3})";
  CHECK(json == expected);
}

TEST_CASE("compute columns show what a slot records and a dash while nothing is recorded") {
  auto l = sample();
  l->slots[0].compute_percent = 30;
  l->slots[0].compute_mode = static_cast<std::uint8_t>(xpu::ComputeMode::cap);
  l->slots[0].priority = static_cast<std::uint8_t>(xpu::Priority::low);
  l->slots[1].compute_percent = 20;
  l->slots[1].compute_mode = 7;  // corrupt
  l->slots[1].priority = 9;      // corrupt
  const auto view = snapshot(*l, "seg");
  const std::string text = format_text(view);
  CHECK(contains(text, "30%    cap    low"));
  CHECK(contains(text, "20%    ?      ?"));
  const std::string json = format_json(view);
  CHECK(contains(json, R"("compute_percent":30,"compute_mode":"cap","priority":"low")"));
  CHECK(contains(json, R"("compute_percent":20,"compute_mode":"?","priority":"?")"));
}

TEST_CASE("corrupted segment values are bounded and not believed") {
  auto l = sample();
  // A slot whose group index is out of range, and one pointing at a free group.
  add_slot(*l, 10, 99999, 4001, "lost");
  add_slot(*l, 11, 200, 4002, "orphan");
  // Names that fill their arrays without a terminating NUL.
  std::memset(l->slots[12].comm, 'c', sizeof(l->slots[12].comm));
  l->slots[12].group.store(0);
  l->slots[12].state.store(kReady);
  std::memset(l->groups[5].name, 'n', sizeof(l->groups[5].name));
  l->groups[5].state.store(kReady);
  // An escape sequence in a name must not reach the terminal.
  add_slot(*l, 13, 0, 4003, "evil\x1b[2J");
  // Slot states that are not `ready` are skipped.
  l->slots[14].state.store(static_cast<std::uint32_t>(co::EntryState::claiming));
  l->slots[15].state.store(12345);

  const auto view = snapshot(*l, "seg");
  CHECK(view.process_count == 8);
  bool saw_lost = false, saw_orphan = false;
  for (const auto& p : view.off_gpu) {
    if (p.comm == "lost") saw_lost = p.group == "?";
    if (p.comm == "orphan") saw_orphan = p.group == "?";
  }
  CHECK(saw_lost);
  CHECK(saw_orphan);
  bool saw_long = false;
  for (const auto& p : view.devices[0].groups[0].processes)
    if (p.slot == 12) saw_long = p.comm == std::string(sizeof(l->slots[12].comm), 'c');
  CHECK(saw_long);
  const std::string text = format_text(view);
  CHECK_FALSE(contains(text, "\x1b"));
  CHECK(contains(text, "evil?[2J"));
  CHECK(contains(format_json(view), R"("comm":"evil\u001b[2J")"));
}

TEST_CASE("an empty segment and a missing one") {
  auto l = empty_layout();
  const std::string text = format_text(snapshot(*l, "seg"));
  CHECK(contains(text, "no xpushim processes on this node"));
  CHECK(xpu::run::format_absent("seg", false) == "no xpushim processes on this node\n");
  const std::string json = xpu::run::format_absent("seg", true);
  CHECK(contains(json, R"("exists":false)"));
  CHECK(contains(json, R"("segment":"/dev/shm/seg")"));
}

TEST_CASE("JSON strings are escaped and invalid UTF-8 is replaced") {
  CHECK(json_escape("plain") == "\"plain\"");
  CHECK(json_escape("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json_escape("tab\there\nnl") == R"("tab\there\nnl")");
  CHECK(json_escape(std::string("nul\0x", 5)) == R"("nul\u0000x")");
  CHECK(json_escape("\x7f") == R"("\u007f")");
  CHECK(json_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(json_escape("bad\xff") == R"("bad\ufffd")");
  CHECK(json_escape("\xc3") == R"("\ufffd")");                      // truncated
  CHECK(json_escape("\xc0\xaf") == R"("\ufffd\ufffd")");            // overlong
  CHECK(json_escape("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");  // surrogate
}
