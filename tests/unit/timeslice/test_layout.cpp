// The shared-memory table: sizes, zero state, packing, and decoding of garbage.
#include <cstddef>
#include <random>
#include <type_traits>

#include "ts_test_support.hpp"
#include "xpu/timeslice/schedule_table.hpp"

namespace xpu::timeslice::test {
namespace {

TEST_CASE("layout: sizes, alignment and version are what the coordinator folds in",
          "[timeslice][layout]") {
  STATIC_REQUIRE(kLayoutVersion == 2);
  STATIC_REQUIRE(sizeof(SlotSchedule) == 64);
  STATIC_REQUIRE(sizeof(GroupSchedule) == 64);
  STATIC_REQUIRE(sizeof(DeviceSchedule) == 32960);
  STATIC_REQUIRE(alignof(DeviceSchedule) == 64);
  STATIC_REQUIRE(std::is_standard_layout_v<DeviceSchedule>);
  STATIC_REQUIRE(std::is_trivially_destructible_v<DeviceSchedule>);
  // Version 2: the previous-holder record sits in line 0 next to the holder word, and each group
  // has an in-flight lease (exclusive hand-over).
  STATIC_REQUIRE(offsetof(DeviceSchedule, previous_holder) == 16);
  STATIC_REQUIRE(offsetof(GroupSchedule, inflight_until_ns) == 48);
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

TEST_CASE("layout: previous-holder records apply only to their own holder word",
          "[timeslice][layout]") {
  const std::uint64_t word = encode_holder(5, 123'456'789);
  PreviousHolder p = decode_previous(encode_previous(word, true, 7), word);
  CHECK(p.present);
  CHECK(p.group == 7);
  CHECK(decode_previous(encode_previous(word, true, 255), word).group == 255);
  CHECK_FALSE(decode_previous(encode_previous(word, false, 7), word).present);
  CHECK(previous_matches(encode_previous(word, false, 7), word));
  // A record written for another slice (or not yet written for this one) names nobody.
  const std::uint64_t next = encode_holder(5, 123'456'790);
  CHECK_FALSE(previous_matches(encode_previous(word, true, 7), next));
  CHECK_FALSE(decode_previous(encode_previous(word, true, 7), next).present);
  // The tag is the slice start alone: another group's word of the same microsecond shares it.
  CHECK(decode_previous(encode_previous(word, true, 7), encode_holder(6, 123'456'789)).present);
  // "Nobody holds" has a tag of its own, so a group that let go is carried to the next install.
  p = decode_previous(encode_previous(kNoHolder, true, 3), kNoHolder);
  CHECK(p.present);
  CHECK(p.group == 3);
  // Zero and corrupt group codes name nobody.
  CHECK_FALSE(decode_previous(0, kNoHolder).present);
  CHECK_FALSE(decode_previous((word & ~std::uint64_t{0xFFFF}) | 0xFFFF, word).present);
  CHECK_FALSE(decode_previous((word & ~std::uint64_t{0xFFFF}) | 257, word).present);
}

}  // namespace
}  // namespace xpu::timeslice::test
