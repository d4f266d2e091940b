#include "xpu/memquota/process_account.hpp"

#include <memory>

#include "xpu_catch.hpp"

using namespace xpu::memquota;

namespace {
constexpr std::uint64_t MiB = 1ULL << 20;

struct Fixture {
  std::unique_ptr<LedgerTable> table = std::make_unique<LedgerTable>();
  Fixture() {
    Ledger(*table).attach_slot(0, 0);
    table->quota[0][0] = 100 * MiB;
  }
  ProcessAccount account{*table, 0, 0};
};
}  // namespace

TEST_CASE("allocations settle to what the driver really used and free exactly that", "[account]") {
  Fixture f;
  auto& a = f.account;
  REQUIRE(a.reserve(0, 10 * MiB) == Admission::admitted);
  a.commit(AllocKind::device_pointer, 0x1000, 0, 10 * MiB, 12 * MiB);  // rounded up by the driver
  CHECK(a.group_usage(0) == 12 * MiB);
  auto taken = a.take(AllocKind::device_pointer, 0x1000);
  REQUIRE(taken);
  CHECK_FALSE(a.take(AllocKind::device_pointer, 0x1000));  // a second free is unknown
  a.credit(*taken);
  CHECK(a.group_usage(0) == 0);
}

TEST_CASE("a failed free restores the record and a failed allocation cancels", "[account]") {
  Fixture f;
  auto& a = f.account;
  REQUIRE(a.reserve(0, 5 * MiB) == Admission::admitted);
  a.cancel(0, 5 * MiB);
  CHECK(a.group_usage(0) == 0);
  REQUIRE(a.reserve(0, 5 * MiB) == Admission::admitted);
  a.commit(AllocKind::vmm_handle, 42, 0, 5 * MiB, 5 * MiB);
  auto taken = a.take(AllocKind::vmm_handle, 42);
  a.restore(AllocKind::vmm_handle, 42, *taken);
  CHECK(a.take(AllocKind::vmm_handle, 42));
  CHECK_FALSE(a.take(AllocKind::array, 42));  // kinds do not collide
}

TEST_CASE("pools are charged max(handed out, reserved)", "[account][pools]") {
  Fixture f;
  auto& a = f.account;
  const std::uint64_t pool = 0xabc;
  REQUIRE(a.pool_reserve(0, pool, 30 * MiB) == Admission::admitted);
  a.pool_commit(0x10, pool, 30 * MiB);
  a.pool_settle(pool, 32 * MiB);  // the pool reserved a little more than asked
  CHECK(a.group_usage(0) == 32 * MiB);
  a.pool_credit(*a.pool_take(0x10));
  CHECK(a.group_usage(0) == 32 * MiB);  // freed bytes stay in the pool, still device memory
  // Reusing the pool's reserved bytes needs no new admission...
  REQUIRE(a.pool_reserve(0, pool, 30 * MiB) == Admission::admitted);
  CHECK(a.group_usage(0) == 32 * MiB);
  a.pool_commit(0x20, pool, 30 * MiB);
  a.pool_credit(*a.pool_take(0x20));
  // ...and when the pool trims, the charge follows.
  a.pool_settle(pool, 0);
  CHECK(a.group_usage(0) == 0);
  // Growth beyond the quota is refused.
  CHECK(a.pool_reserve(0, pool, 101 * MiB) == Admission::over_quota);
  REQUIRE(a.pool_reserve(0, pool, 60 * MiB) == Admission::admitted);
  a.pool_forget(pool);
  CHECK(a.group_usage(0) == 0);
}

TEST_CASE("graph memory and context footprints are charged as the driver holds them", "[account]") {
  Fixture f;
  auto& a = f.account;
  a.settle_graph_memory(0, 20 * MiB);
  a.add_context_footprint(0, 500 * MiB / 10);
  CHECK(a.group_usage(0) == 70 * MiB);
  CHECK(a.reserve(0, 31 * MiB) == Admission::over_quota);  // they count against requests
  a.settle_graph_memory(0, 0);
  a.remove_context_footprint(0, 50 * MiB);
  CHECK(a.group_usage(0) == 0);
}
