// `xpu-run status` on a segment image in ordinary memory: what is shown, the formats, and
// corrupted values that must neither crash nor be believed.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "json_check.hpp"
#include "status.hpp"
#include "xpu/common/settings.hpp"
#include "xpu/coordinator/layout.hpp"
#include "xpu/timeslice/arbiter.hpp"
#include "xpu_catch.hpp"

namespace co = xpu::coordinator;
namespace ts = xpu::timeslice;
using xpu::run::format_json;
using xpu::run::format_text;
using xpu::run::json_escape;
using xpu::run::snapshot;
using xpu_test::JsonCheck;
#if defined(XPU_CATCH2_V3)
using Catch::Approx;
#endif

namespace {

constexpr auto kReady = static_cast<std::uint32_t>(co::EntryState::ready);
constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;
// The schedules' clock in these tests: 0.5 s into a 2 s delivered-share window.
constexpr ts::Nanos kNow = 100'500'000'000;

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

// The compute settings a slot records (SlotEntry), as the shim writes them, arbitrated.
void set_compute(co::NodeLayout& l, std::uint32_t s, std::uint8_t percent, xpu::ComputeMode mode,
                 xpu::Priority priority) {
  l.slots[s].arbitrated = 1;
  l.slots[s].compute_percent = percent;
  l.slots[s].compute_mode = static_cast<std::uint8_t>(mode);
  l.slots[s].priority = static_cast<std::uint8_t>(priority);
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
  const auto view = snapshot(*l, "seg", kNow);
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
  const std::string text = format_text(snapshot(*l, "seg", kNow));
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
  CHECK(contains(text, "Processes without memory or compute on any GPU yet"));
  CHECK(contains(text, "DELIVERED"));
  CHECK(contains(text, "STATE"));
  CHECK(contains(text, "sleepy"));
}

TEST_CASE("JSON format") {
  auto l = sample();
  const std::string json = format_json(snapshot(*l, "seg", kNow));
  // No process is arbitrated: every compute field is null.
  const std::string unarbitrated =
      R"("arbitrated":false,"compute_percent":null,"compute_mode":null,"priority":null)";
  const std::string unmeasured =
      R"("state":null,"delivered_share_percent":null,"gpu_utilization_percent":null,)"
      R"("gpu_ns_total":null,"heartbeat_age_ms":null)";
  const std::string no_holder =
      R"("holder_group":null,"holder_group_index":null,"slice_age_ms":null,"handovers":0,)";
  const std::string expected =
      R"({"segment":"/dev/shm/seg","exists":true,"devices":[)"
      R"({"uuid":"GPU-fa000000-0000-0000-0000-000000000001","physical_bytes":85899345920,)" +
      no_holder +
      R"("groups":[{"name":"alpha","quota_bytes":1073741824,"used_bytes":134217728,"processes":[)"
      R"({"slot":0,"pid":1001,"comm":"python","group":"alpha","charged_bytes":104857600,)" +
      unarbitrated + "," + unmeasured + "}," +
      R"({"slot":1,"pid":1002,"comm":"worker","group":"alpha","charged_bytes":29360128,)" +
      unarbitrated + "," + unmeasured + "}]}]}," +
      R"({"uuid":"GPU-fa000000-0000-0000-0000-000000000002","physical_bytes":42949672960,)" +
      no_holder +
      R"("groups":[{"name":"beta","quota_bytes":null,"used_bytes":3221225472,"processes":[)"
      R"({"slot":2,"pid":2001,"comm":"train","group":"beta","charged_bytes":3221225472,)" +
      unarbitrated + "," + unmeasured + "}]}]}]," +
      R"("processes_without_gpu":[{"slot":3,"pid":3001,"comm":"sleepy","group":"idle",)" +
      unarbitrated + "}]," + R"("process_count":4,"group_count":3})";
  CHECK(json == expected);
  CHECK(JsonCheck::valid(json));
}

TEST_CASE("compute settings show what a slot records and a dash when not arbitrated") {
  auto l = sample();
  set_compute(*l, 0, 30, xpu::ComputeMode::cap, xpu::Priority::low);
  set_compute(*l, 1, 20, xpu::ComputeMode::share, xpu::Priority::normal);
  l->slots[1].compute_mode = 7;                                         // corrupt
  l->slots[1].priority = 9;                                             // corrupt
  set_compute(*l, 2, 0, xpu::ComputeMode::share, xpu::Priority::high);  // no percentage
  // Slot 3 records settings but does not take part in arbitration; 5 is not a boolean either.
  set_compute(*l, 3, 40, xpu::ComputeMode::cap, xpu::Priority::high);
  l->slots[3].arbitrated = 5;
  const auto view = snapshot(*l, "seg", kNow);
  const std::string text = format_text(view);
  CHECK(contains(text, "30%   cap   low"));
  CHECK(contains(text, "20%   ?     ?"));
  CHECK(contains(text, "w100  share high"));
  CHECK(contains(text, "sleepy           idle                               -     -     -\n"));
  const std::string json = format_json(view);
  CHECK(contains(json, R"("arbitrated":true,"compute_percent":30,"compute_mode":"cap",)"
                       R"("priority":"low")"));
  CHECK(contains(json, R"("arbitrated":true,"compute_percent":20,"compute_mode":"?",)"
                       R"("priority":"?")"));
  CHECK(contains(json, R"("arbitrated":true,"compute_percent":null,"compute_mode":"share",)"
                       R"("priority":"high")"));
  CHECK(contains(json, R"("comm":"sleepy","group":"idle","arbitrated":false,)"
                       R"("compute_percent":null,"compute_mode":null,"priority":null})"));
  CHECK(JsonCheck::valid(json));
}

TEST_CASE("configured and delivered shares, mode, priority and state of competing groups") {
  auto l = sample();
  // On GPU 0: alpha's python (30%, share, normal) holds the device; beta's train (70%, share,
  // low) joins there too and waits. alpha's worker is not arbitrated.
  set_compute(*l, 0, 30, xpu::ComputeMode::share, xpu::Priority::normal);
  set_compute(*l, 2, 70, xpu::ComputeMode::share, xpu::Priority::low);
  ts::Arbiter python(l->schedules[0], 0);
  ts::Arbiter train(l->schedules[0], 2);
  const ts::Nanos t0 = kNow - 10'000'000;
  REQUIRE(python.join(t0, 0, 30, ts::Mode::kShare, ts::Priority::kNormal));
  REQUIRE(train.join(t0, 1, 70, ts::Mode::kShare, ts::Priority::kLow));
  REQUIRE(python.before_launch(t0).go());
  python.on_launch(t0);
  python.on_complete(t0 + 1'000'000, 1, 298'000'000);
  python.on_launch(t0 + 2'000'000);
  train.on_complete(t0 + 2'000'000, 0, 702'000'000);
  REQUIRE_FALSE(train.before_launch(kNow - 1'000'000).go());

  const auto view = snapshot(*l, "seg", kNow);
  REQUIRE(view.devices.size() == 2);
  const auto& gpu0 = view.devices[0];
  REQUIRE(gpu0.holder_index == 0u);
  CHECK(gpu0.holder_name == "alpha");
  CHECK(gpu0.handovers >= 1);
  // beta joined GPU 0's schedule: it is listed there although it has no memory there.
  REQUIRE(gpu0.groups.size() == 2);
  const auto& python_view = gpu0.groups[0].processes[0];
  CHECK(python_view.compute.joined);
  CHECK(python_view.compute.state == "holds");
  REQUIRE(python_view.compute.delivered_share.has_value());
  CHECK(*python_view.compute.delivered_share == Approx(0.298));
  CHECK(python_view.compute.gpu_ns_total == 298'000'000);
  const auto& worker_view = gpu0.groups[0].processes[1];
  CHECK_FALSE(worker_view.compute.joined);
  CHECK(gpu0.groups[1].name == "beta");
  const auto& train_view = gpu0.groups[1].processes[0];
  CHECK(train_view.compute.state == "waits");
  CHECK(*train_view.compute.delivered_share == Approx(0.702));
  // Over the window so far (kNow is 0.5 s into a 2 s window: 2.5 s of wall time).
  CHECK(*train_view.compute.gpu_utilization == Approx(0.702 / 2.5));
  CHECK(train_view.charged == 0);
  // GPU 1 has beta's memory but nobody computes there.
  REQUIRE(view.devices[1].groups.size() == 1);
  CHECK_FALSE(view.devices[1].groups[0].processes[0].compute.joined);

  const std::string text = format_text(view);
  INFO(text);
  CHECK(contains(text, "compute: held by alpha for 10 ms, "));
  CHECK(contains(text, "100.00 MiB / 1.00 GiB  30%   share normal       29.8%  11.9%  holds\n"));
  CHECK(contains(text, "  28.00 MiB / 1.00 GiB  -     -     -                -      -  -\n"));
  CHECK(contains(text, "0 B / none  70%   share low          70.2%  28.1%  waits\n"));
  CHECK(contains(text, "compute: not held, 0 hand-overs"));
  CHECK(contains(text, "DELIVERED"));

  const std::string json = format_json(view);
  INFO(json);
  CHECK(JsonCheck::valid(json));
  CHECK(contains(json, R"("holder_group":"alpha","holder_group_index":0,"slice_age_ms":10,)"));
  CHECK(contains(json, R"("comm":"python","group":"alpha","charged_bytes":104857600,)"
                       R"("arbitrated":true,"compute_percent":30,"compute_mode":"share",)"
                       R"("priority":"normal","state":"holds","delivered_share_percent":29.80,)"
                       R"("gpu_utilization_percent":11.92,"gpu_ns_total":298000000,)"
                       R"("heartbeat_age_ms":)"));
  CHECK(contains(json, R"("comm":"train","group":"beta","charged_bytes":0,"arbitrated":true,)"
                       R"("compute_percent":70,"compute_mode":"share","priority":"low",)"
                       R"("state":"waits","delivered_share_percent":70.20,)"
                       R"("gpu_utilization_percent":28.08,"gpu_ns_total":702000000,)"));
  CHECK(contains(json, R"("comm":"worker","group":"alpha","charged_bytes":29360128,)"
                       R"("arbitrated":false,"compute_percent":null,"compute_mode":null,)"
                       R"("priority":null,"state":null,"delivered_share_percent":null,)"));
}

TEST_CASE("a lone share-mode group shows 'alone' and no delivered share and cap mode is measured") {
  auto l = sample();
  // Both of alpha's processes compute on GPU 0 in share mode, with nobody else there.
  set_compute(*l, 0, 50, xpu::ComputeMode::share, xpu::Priority::normal);
  set_compute(*l, 1, 0, xpu::ComputeMode::share, xpu::Priority::normal);
  ts::Arbiter python(l->schedules[0], 0);
  ts::Arbiter worker(l->schedules[0], 1);
  REQUIRE(python.join(kNow - 1'000'000, 0, 50, ts::Mode::kShare, ts::Priority::kNormal));
  REQUIRE(worker.join(kNow - 1'000'000, 0, 100, ts::Mode::kShare, ts::Priority::kNormal));
  REQUIRE(python.before_launch(kNow - 1'000'000).go());
  // On GPU 1 beta's train runs alone in cap mode: the scheduler tracks it, so it is measured.
  set_compute(*l, 2, 40, xpu::ComputeMode::cap, xpu::Priority::high);
  ts::Arbiter train(l->schedules[1], 2);
  REQUIRE(train.join(kNow - 1'000'000, 1, 40, ts::Mode::kCap, ts::Priority::kHigh));
  REQUIRE(train.before_launch(kNow - 1'000'000).go());
  train.on_launch(kNow - 1'000'000);
  train.on_complete(kNow - 500'000, 1, 250'000'000);

  const auto view = snapshot(*l, "seg", kNow);
  for (const auto& p : view.devices[0].groups[0].processes) {
    CHECK(p.compute.state == "alone");
    CHECK_FALSE(p.compute.delivered_share.has_value());
    CHECK_FALSE(p.compute.gpu_utilization.has_value());
  }
  const auto& train_view = view.devices[1].groups[0].processes[0];
  CHECK(train_view.compute.state == "holds");
  CHECK(train_view.compute.delivered_share == 1.0);
  const std::string text = format_text(view);
  INFO(text);
  CHECK(contains(text, "50%   share normal           -      -  alone\n"));
  CHECK(contains(text, "w100  share normal           -      -  alone\n"));
  CHECK(contains(text, "40%   cap   high        100.0%  10.0%  holds\n"));
  const std::string json = format_json(view);
  CHECK(JsonCheck::valid(json));
  CHECK(contains(json, R"("state":"alone","delivered_share_percent":null,)"
                       R"("gpu_utilization_percent":null,"gpu_ns_total":0,)"));
  CHECK(contains(json, R"("state":"holds","delivered_share_percent":100.00,)"
                       R"("gpu_utilization_percent":10.00,"gpu_ns_total":250000000,)"));
}

TEST_CASE("nothing measured on a device: shares are unknown, not 0%") {
  auto l = sample();
  set_compute(*l, 0, 30, xpu::ComputeMode::share, xpu::Priority::normal);
  set_compute(*l, 2, 70, xpu::ComputeMode::share, xpu::Priority::normal);
  ts::Arbiter python(l->schedules[0], 0);
  ts::Arbiter train(l->schedules[0], 2);
  REQUIRE(python.join(kNow, 0, 30, ts::Mode::kShare, ts::Priority::kNormal));
  REQUIRE(train.join(kNow, 1, 70, ts::Mode::kShare, ts::Priority::kNormal));
  const auto view = snapshot(*l, "seg", kNow);
  for (const auto& g : view.devices[0].groups) {
    for (const auto& p : g.processes) {
      if (!p.compute.joined) continue;
      CHECK(p.compute.state == "idle");
      CHECK_FALSE(p.compute.delivered_share.has_value());
    }
  }
}

TEST_CASE("a schedule row of another group or of an unarbitrated slot is not believed") {
  auto l = sample();
  set_compute(*l, 0, 30, xpu::ComputeMode::share, xpu::Priority::normal);
  // Slot 0 belongs to alpha (0) in the registry, but its row on GPU 0 says group 5.
  ts::Arbiter stale(l->schedules[0], 0);
  REQUIRE(stale.join(kNow, 5, 30, ts::Mode::kShare, ts::Priority::kNormal));
  // Slot 1 is not arbitrated, yet a row on GPU 0 names it, in its own group.
  ts::Arbiter stray(l->schedules[0], 1);
  REQUIRE(stray.join(kNow, 0, 30, ts::Mode::kShare, ts::Priority::kNormal));
  const auto view = snapshot(*l, "seg", kNow);
  const auto& procs = view.devices[0].groups[0].processes;
  CHECK_FALSE(procs[0].compute.joined);
  const std::string text = format_text(view);
  CHECK(contains(text, "  28.00 MiB / 1.00 GiB  -     -     -                -      -  -\n"));
  CHECK(contains(text, "100.00 MiB / 1.00 GiB  30%   share normal           -      -  -\n"));
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

  const auto view = snapshot(*l, "seg", kNow);
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

TEST_CASE("a schedule table of random bytes neither crashes status nor prints garbage") {
  std::mt19937_64 rng(20240611);
  for (int round = 0; round < 20; ++round) {
    auto l = sample();
    for (std::uint32_t s = 0; s < 4; ++s)
      set_compute(*l, s, static_cast<std::uint8_t>(rng()), xpu::ComputeMode::share,
                  xpu::Priority::normal);
    auto* bytes = reinterpret_cast<unsigned char*>(&l->schedules[0]);
    for (std::size_t i = 0; i < sizeof(l->schedules); ++i)
      bytes[i] = static_cast<unsigned char>(rng());
    // Rows that decode as joined, in the slots' own groups, with random counters and windows
    // (some current, to reach the share arithmetic).
    const std::uint32_t groups[] = {0, 0, 1};
    for (std::uint32_t s = 0; s < 3; ++s) {
      for (std::uint32_t d = 0; d < 2; ++d) {
        ts::MemberConfig c;
        c.present = true;
        c.group = groups[s];
        c.share_percent = 1 + static_cast<std::uint32_t>(rng() % 100);
        c.mode = rng() % 2 ? ts::Mode::kCap : ts::Mode::kShare;
        c.priority = static_cast<ts::Priority>(rng() % 3);
        auto& row = l->schedules[d].slots[s];
        row.config.store(ts::encode_config(c));
        if (rng() % 2) row.window_index.store(static_cast<std::uint64_t>(kNow / 2'000'000'000));
      }
    }
    for (const ts::Nanos now :
         {kNow, ts::Nanos{0}, ts::Nanos{-1}, std::numeric_limits<ts::Nanos>::max(),
          static_cast<ts::Nanos>(rng())}) {
      const auto view = snapshot(*l, "seg", now);
      for (const auto& d : view.devices) {
        for (const auto& g : d.groups) {
          for (const auto& p : g.processes) {
            if (p.compute.delivered_share) {
              CHECK(*p.compute.delivered_share >= 0.0);
              CHECK(*p.compute.delivered_share <= 1.0);
            }
            if (p.compute.gpu_utilization) {
              CHECK(*p.compute.gpu_utilization >= 0.0);
              CHECK(*p.compute.gpu_utilization <= 1.0);
            }
          }
        }
      }
      const std::string text = format_text(view);
      CHECK(std::all_of(text.begin(), text.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u >= 0x20 && u != 0x7f) || c == '\n';
      }));
      CHECK_FALSE(contains(text, "nan"));
      CHECK_FALSE(contains(text, "inf"));
      const std::string json = format_json(view);
      CHECK(JsonCheck::valid(json));
      CHECK_FALSE(contains(json, "nan"));
    }
  }
}

TEST_CASE("an empty segment and a missing one") {
  auto l = empty_layout();
  const std::string text = format_text(snapshot(*l, "seg", kNow));
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
