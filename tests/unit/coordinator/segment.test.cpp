// The node segment across real processes: creation, attach, version refusal, permissions,
// groups, and SIGKILL at arbitrary instants (nothing lost, nothing deadlocked).
#include "xpu/coordinator/segment.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "xpu/memquota/ledger.hpp"
#include "xpu_catch.hpp"

using namespace xpu;
using namespace xpu::coordinator;

namespace {

constexpr std::uint64_t MiB = 1ULL << 20;

// A unique segment per test, removed afterwards.
struct TempSegment {
  std::string name;
  TempSegment() {
    static int counter = 0;
    name = "xpushim-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  }
  ~TempSegment() { ::shm_unlink(name.c_str()); }
};

std::unique_ptr<NodeSegment> open_or_die(const std::string& name) {
  auto seg = NodeSegment::open(name);
  if (!seg) FAIL(seg.error().message);
  return std::move(seg.value());
}

Uuid uuid_of(std::uint8_t n) {
  Uuid u;
  u.bytes[0] = 0xfa;
  u.bytes[15] = n;
  return u;
}

}  // namespace

TEST_CASE("the first process creates the segment, others attach to the same tables", "[segment]") {
  TempSegment t;
  auto a = open_or_die(t.name);
  auto b = open_or_die(t.name);
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + t.name).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);  // other users are kept out
  CHECK(a->device_index(uuid_of(1), 80 * MiB).value() == 0);
  CHECK(b->device_index(uuid_of(2), 80 * MiB).value() == 1);
  CHECK(b->device_index(uuid_of(1), 80 * MiB).value() == 0);  // keyed by UUID, not order
  const auto me = ProcessIdentity::current();
  CHECK(me.pid == static_cast<std::uint32_t>(::getpid()));
  CHECK(me.start_time_ticks > 0);
  const auto sa = a->claim_slot("train", me).value();
  const auto sb = b->claim_slot("train", me).value();
  CHECK(sa != sb);
  CHECK(a->own_group() == b->own_group());
  CHECK(a->group_name(a->own_group()) == "train");
  REQUIRE(a->set_group_quota(0, 10 * MiB).ok());
  REQUIRE(b->set_group_quota(0, 10 * MiB).ok());  // members agree
  auto conflict = b->set_group_quota(0, 20 * MiB);
  REQUIRE_FALSE(conflict.ok());
  CHECK(conflict.error().message.find("conflicting settings") != std::string::npos);
}

TEST_CASE("a segment of another layout is refused, never misread", "[segment]") {
  TempSegment t;
  {
    const int fd = ::shm_open(t.name.c_str(), O_CREAT | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, sizeof(NodeLayout)) == 0);
    void* p = ::mmap(nullptr, sizeof(NodeLayout), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    auto* layout = static_cast<NodeLayout*>(p);
    std::memcpy(layout->header.magic, kMagic, sizeof(kMagic));
    layout->header.layout_major = kLayoutMajor + 1;
    layout->header.segment_bytes = sizeof(NodeLayout);
    layout->header.ready = 1;
    ::munmap(p, sizeof(NodeLayout));
    ::close(fd);
  }
  auto seg = NodeSegment::open(t.name);
  REQUIRE_FALSE(seg.ok());
  CHECK(seg.error().code == Errc::incompatible);
  CHECK(seg.error().message.find("refusing to misread") != std::string::npos);
  CHECK(seg.error().message.find("XPU_NODE_SEGMENT") != std::string::npos);
}

TEST_CASE("open_existing never creates a segment", "[segment]") {
  TempSegment t;
  CHECK_FALSE(NodeSegment::open_existing(t.name).ok());
}

TEST_CASE("a group is recycled when its last member leaves", "[segment]") {
  TempSegment t;
  auto a = open_or_die(t.name);
  const auto me = ProcessIdentity::current();
  REQUIRE(a->claim_slot("short-lived", me).ok());
  const auto g = a->own_group();
  a->release_slot();
  CHECK(a->group_name(g).empty());
}

namespace {

// A child that joins the group and keeps allocating and freeing until killed.
[[noreturn]] void churn(const std::string& name, std::uint32_t seed) {
  auto seg = NodeSegment::open(name);
  if (!seg) ::_exit(3);
  auto slot = seg.value()->claim_slot("shared", ProcessIdentity::current());
  if (!slot) ::_exit(4);
  memquota::Ledger ledger(seg.value()->layout().ledger);
  const auto group = seg.value()->own_group();
  std::mt19937 rng(seed);
  std::uint64_t held = 0;
  for (;;) {
    const std::uint64_t want = (rng() % 8 + 1) * MiB;
    if (ledger.reserve(group, slot.value(), 0, want) == memquota::Admission::admitted) held += want;
    if (held > 20 * MiB || rng() % 3 == 0) {
      ledger.release(slot.value(), 0, held);
      held = 0;
    }
  }
}

}  // namespace

TEST_CASE("processes killed at any instant give their memory back and block nobody",
          "[segment][sigkill]") {
  TempSegment t;
  auto parent = open_or_die(t.name);
  REQUIRE(parent->claim_slot("shared", ProcessIdentity::current()).ok());
  REQUIRE(parent->set_group_quota(0, 64 * MiB).ok());
  memquota::Ledger ledger(parent->layout().ledger);
  std::mt19937 rng(1234);
  for (int round = 0; round < 12; ++round) {
    std::vector<pid_t> children;
    for (int c = 0; c < 4; ++c) {
      const pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) churn(t.name, static_cast<std::uint32_t>(round * 10 + c));
      children.push_back(pid);
    }
    // Kill each child at a random instant: mid-claim, mid-reserve, mid-release, anywhere.
    for (pid_t pid : children) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
      ::kill(pid, SIGKILL);
    }
    for (pid_t pid : children) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
    }
    const auto start = std::chrono::steady_clock::now();
    parent->reap_dead();
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < std::chrono::seconds(1));
    // Everything the dead held is back: the whole quota is available to the survivor.
    CHECK(ledger.group_usage(parent->own_group(), 0) == 0);
    REQUIRE(ledger.reserve(parent->own_group(), *parent->own_slot(), 0, 64 * MiB) ==
            memquota::Admission::admitted);
    ledger.release(*parent->own_slot(), 0, 64 * MiB);
  }
  // The group survives with its live member; the registry is not stuck.
  CHECK(parent->group_name(parent->own_group()) == "shared");
  auto late = open_or_die(t.name);
  CHECK(late->claim_slot("shared", ProcessIdentity::current()).ok());
}
