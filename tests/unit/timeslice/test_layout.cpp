// The shared-memory table: sizes, zero state, packing, and decoding of garbage.
#include <random>
#include <type_traits>

#include "ts_test_support.hpp"
#include "xpu/timeslice/schedule_table.hpp"

namespace xpu::timeslice::test {
namespace {

TEST_CASE("layout: sizes, alignment and version are what the coordinator folds in",
          "[timeslice][layout]") {
  STATIC_REQUIRE(kLayoutVersion == 1);
  STATIC_REQUIRE(sizeof(SlotSchedule) == 64);
  STATIC_REQUIRE(sizeof(GroupSchedule) == 64);
  STATIC_REQUIRE(sizeof(DeviceSchedule) == 32960);
  STATIC_REQUIRE(alignof(DeviceSchedule) == 64);
  STATIC_REQUIRE(std::is_standard_layout_v<DeviceSchedule>);
  STATIC_REQUIRE(std::is_trivially_destructible_v<DeviceSchedule>);
}

TEST_CASE("layout: an all-zero table is the empty state", "[timeslice][layout]") {
  const DeviceSchedule d{};
  CHECK_FALSE(decode_holder(d.holder.load()).present);
  for (const auto& s : d.slots) CHECK_FALSE(decode_config(s.config.load()).present);
  for (std::uint32_t g = 0; g < kMaxGroups; ++g) {
    CHECK_FALSE(decode_group_config(d.groups[g].config.load(), g).present);
  }
}

TEST_CASE("layout: configuration words round-trip", "[timeslice][layout]") {
  for (std::uint32_t share = kMinSharePercent; share <= kMaxSharePercent; ++share) {
    for (const Mode mode : {Mode::kShare, Mode::kCap}) {
      for (const Priority prio : {Priority::kLow, Priority::kNormal, Priority::kHigh}) {
        MemberConfig c;
        c.present = true;
        c.group = (share * 7) % kMaxGroups;
        c.share_percent = share;
        c.mode = mode;
        c.priority = prio;
        c.epoch = share * 100'000;
        const MemberConfig back = decode_config(encode_config(c));
        REQUIRE(back.present);
        CHECK(back.group == c.group);
        CHECK(back.share_percent == share);
        CHECK(back.mode == mode);
        CHECK(back.priority == prio);
        CHECK(back.epoch == c.epoch);
        CHECK(decode_group_config(encode_config(c), c.group).present);
        CHECK_FALSE(decode_group_config(encode_config(c), (c.group + 1) % kMaxGroups).present);
      }
    }
  }
  MemberConfig freed;
  freed.epoch = 42;
  CHECK_FALSE(decode_config(encode_config(freed)).present);
  CHECK(decode_config(encode_config(freed)).epoch == 42);
}

TEST_CASE("layout: garbage words decode to absent or in-range values", "[timeslice][layout]") {
  std::mt19937_64 rng(7);
  int present = 0;
  for (int i = 0; i < 200'000; ++i) {
    const std::uint64_t w = rng();
    const MemberConfig c = decode_config(w);
    if (c.present) {
      ++present;
      CHECK(c.group < kMaxGroups);
      CHECK(c.share_percent >= kMinSharePercent);
      CHECK(c.share_percent <= kMaxSharePercent);
      CHECK(priority_index(c.priority) < kPriorityLevels);
    }
    const HolderWord h = decode_holder(w);
    if (h.present) CHECK(h.group < kMaxGroups);
  }
  // Reserved bits make random words almost never look like a configuration.
  CHECK(present < 100);
  // Share 0 or > 100, priority 3, reserved bits: absent.
  CHECK_FALSE(decode_config(layout::kPresentBit).present);
  CHECK_FALSE(
      decode_config(layout::kPresentBit | (std::uint64_t{101} << layout::kShareShift)).present);
  CHECK_FALSE(decode_config(layout::kPresentBit | (std::uint64_t{50} << layout::kShareShift) |
                            (std::uint64_t{3} << layout::kPriorityShift))
                  .present);
  CHECK_FALSE(decode_config(layout::kPresentBit | (std::uint64_t{50} << layout::kShareShift) |
                            (std::uint64_t{1} << 25))
                  .present);
}

TEST_CASE("layout: holder words", "[timeslice][layout]") {
  CHECK_FALSE(decode_holder(kNoHolder).present);
  for (const std::uint32_t g : {0U, 1U, 128U, 255U}) {
    const HolderWord h = decode_holder(encode_holder(g, 123'456'789));
    CHECK(h.present);
    CHECK(h.group == g);
    CHECK(h.start_us == 123'456'789);
  }
  // Group codes beyond 256 are corruption: nobody holds.
  CHECK_FALSE(decode_holder(257).present);
  CHECK_FALSE(decode_holder(0xFFFF).present);
  // The start wraps at 48 bits instead of spilling into the group code.
  CHECK(decode_holder(encode_holder(5, (std::uint64_t{1} << 48) + 9)).start_us == 9);
  CHECK(decode_holder(encode_holder(5, (std::uint64_t{1} << 48) + 9)).group == 5);
}

}  // namespace
}  // namespace xpu::timeslice::test
