#include "xpu/memquota/ledger.hpp"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "xpu/memquota/view.hpp"
#include "xpu_catch.hpp"

using namespace xpu::memquota;

namespace {
// The table is large (for shared memory); keep test instances on the heap, zeroed = empty.
std::unique_ptr<LedgerTable> make_table() { return std::make_unique<LedgerTable>(); }
constexpr std::uint64_t MiB = 1ULL << 20;
}  // namespace

TEST_CASE("reserve admits up to the quota and refuses beyond it", "[ledger]") {
  auto t = make_table();
  Ledger ledger(*t);
  ledger.attach_slot(0, 5);
  t->quota[5][0] = 100 * MiB;
  CHECK(ledger.reserve(5, 0, 0, 60 * MiB) == Admission::admitted);
  CHECK(ledger.reserve(5, 0, 0, 40 * MiB) == Admission::admitted);  // exactly at the quota
  CHECK(ledger.reserve(5, 0, 0, 1) == Admission::over_quota);
  CHECK(ledger.group_usage(5, 0) == 100 * MiB);
  ledger.release(0, 0, 40 * MiB);
  CHECK(ledger.reserve(5, 0, 0, 40 * MiB) == Admission::admitted);  // freeing makes room again
}

TEST_CASE("a group's members share one quota and other groups and devices are separate",
          "[ledger]") {
  auto t = make_table();
  Ledger ledger(*t);
  ledger.attach_slot(1, 0);
  ledger.attach_slot(2, 0);
  ledger.attach_slot(3, 1);
  t->quota[0][0] = 100 * MiB;
  t->quota[1][0] = 100 * MiB;
  t->quota[0][1] = 10 * MiB;
  CHECK(ledger.reserve(0, 1, 0, 70 * MiB) == Admission::admitted);
  CHECK(ledger.reserve(0, 2, 0, 40 * MiB) == Admission::over_quota);
  CHECK(ledger.reserve(0, 2, 0, 30 * MiB) == Admission::admitted);
  CHECK(ledger.reserve(1, 3, 0, 100 * MiB) == Admission::admitted);  // another group
  CHECK(ledger.reserve(0, 1, 1, 10 * MiB) == Admission::admitted);   // another device
  CHECK(ledger.reserve(0, 2, 1, 1) == Admission::over_quota);
}

TEST_CASE("unset and unlimited quotas admit and still count", "[ledger]") {
  auto t = make_table();
  Ledger ledger(*t);
  ledger.attach_slot(0, 0);
  CHECK(ledger.reserve(0, 0, 0, 1ULL << 40) == Admission::admitted);
  t->quota[0][1] = kUnlimited;
  CHECK(ledger.reserve(0, 0, 1, 1ULL << 40) == Admission::admitted);
  CHECK(ledger.group_usage(0, 1) == 1ULL << 40);
}

TEST_CASE("release never goes below zero and detach forgets a slot", "[ledger]") {
  auto t = make_table();
  Ledger ledger(*t);
  ledger.attach_slot(7, 3);
  ledger.force_charge(7, 2, 5 * MiB);
  ledger.release(7, 2, 9 * MiB);
  CHECK(ledger.slot_usage(7, 2) == 0);
  ledger.force_charge(7, 2, 5 * MiB);
  CHECK(ledger.group_usage(3, 2) == 5 * MiB);
  ledger.detach_slot(7);
  CHECK(ledger.group_usage(3, 2) == 0);
  CHECK(ledger.slot_usage(7, 2) == 0);
}

TEST_CASE("concurrent reservations of one group never exceed the quota together",
          "[ledger][concurrency]") {
  auto t = make_table();
  Ledger ledger(*t);
  constexpr int kThreads = 16;
  constexpr std::uint64_t kQuota = 1000;
  for (int s = 0; s < kThreads; ++s) ledger.attach_slot(static_cast<std::uint32_t>(s), 9);
  t->quota[9][0] = kQuota;
  std::atomic<bool> go{false};
  std::atomic<std::uint64_t> granted{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < kThreads; ++s) {
    threads.emplace_back([&, s] {
      while (!go.load()) {
      }
      // Each thread keeps what it gets: 16 threads x 100 requests of 7 bytes, quota 1000.
      // (The instantaneous sum may include another thread's request that is about to be
      // taken back; what was *granted* must never exceed the quota.)
      for (int i = 0; i < 100; ++i) {
        if (ledger.reserve(9, static_cast<std::uint32_t>(s), 0, 7) == Admission::admitted) {
          const std::uint64_t now_granted = granted += 7;
          REQUIRE(now_granted <= kQuota);
        }
      }
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  CHECK(granted.load() == ledger.group_usage(9, 0));
  CHECK(granted.load() <= kQuota);
  // No request was refused while it still fitted: the group is full to within one request.
  CHECK(granted.load() > kQuota - 7);
}

TEST_CASE("the virtual view saturates", "[view]") {
  auto v = virtual_view(10 * MiB, 4 * MiB, 100 * MiB);
  CHECK(v.total == 10 * MiB);
  CHECK(v.free == 6 * MiB);
  CHECK(v.used == 4 * MiB);
  CHECK(virtual_view(10 * MiB, 4 * MiB, 1 * MiB).free == 1 * MiB);  // the card is fuller
  CHECK(virtual_view(10 * MiB, 12 * MiB, 100 * MiB).free == 0);     // usage above the quota
  CHECK(pitched_bytes(1000, 3) == 1024 * 3);
}
