#include "xpu/common/units.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <initializer_list>
#include <limits>

namespace xpu {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// A decimal number "123" or "1.25", split into an integer part and up to 9 fraction digits,
// so that "1.5GiB" is computed exactly in integers. Signs, exponents and hex are not numbers here.
struct Decimal {
  std::uint64_t whole = 0;
  std::uint64_t frac = 0;        // fraction digits as an integer...
  std::uint64_t frac_scale = 1;  // ...over this power of ten
};

Result<Decimal> parse_decimal(std::string_view digits) {
  Decimal d;
  bool seen_dot = false;
  bool seen_digit = false;
  for (char c : digits) {
    if (c == '.') {
      if (seen_dot) return make_error(Errc::invalid_config, "more than one decimal point");
      seen_dot = true;
      continue;
    }
    if (c < '0' || c > '9') return make_error(Errc::invalid_config, "not a number");
    seen_digit = true;
    const auto v = static_cast<std::uint64_t>(c - '0');
    if (!seen_dot) {
      if (d.whole > (std::numeric_limits<std::uint64_t>::max() - v) / 10)
        return make_error(Errc::invalid_config, "the number is too large");
      d.whole = d.whole * 10 + v;
    } else if (d.frac_scale < 1'000'000'000) {  // further digits cannot matter
      d.frac = d.frac * 10 + v;
      d.frac_scale *= 10;
    }
  }
  if (!seen_digit) return make_error(Errc::invalid_config, "no digits");
  return d;
}

struct Unit {
  std::string_view name;
  std::uint64_t factor;
};
constexpr std::array<Unit, 9> kUnits{{{"B", 1},
                                      {"K", 1ULL << 10},
                                      {"KiB", 1ULL << 10},
                                      {"M", 1ULL << 20},
                                      {"MiB", 1ULL << 20},
                                      {"G", 1ULL << 30},
                                      {"GiB", 1ULL << 30},
                                      {"T", 1ULL << 40},
                                      {"TiB", 1ULL << 40}}};

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text, BareNumber bare) {
  const std::string_view s = trim(text);
  if (s.empty()) return make_error(Errc::invalid_config, "the value is empty");
  if (s.front() == '-') return make_error(Errc::invalid_config, "a size cannot be negative");
  std::size_t split = 0;
  while (split < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[split])) || s[split] == '.'))
    ++split;
  const std::string_view number = s.substr(0, split);
  const std::string_view unit = trim(s.substr(split));
  if (number.empty()) return make_error(Errc::invalid_config, "it does not start with a number");
  auto dec = parse_decimal(number);
  if (!dec) return dec.error();

  std::uint64_t factor = 0;
  if (unit.empty()) {
    if (bare == BareNumber::rejected)
      return make_error(
          Errc::invalid_config,
          fmt::format("'{}' has no unit (write {}GiB, or {}B for bytes)", s, number, number));
    factor = 1;
  }
  for (const Unit& u : kUnits) {
    if (iequals(unit, u.name)) factor = u.factor;
  }
  if (factor == 0) {
    for (std::string_view decimal_unit : {"KB", "MB", "GB", "TB"}) {
      if (iequals(unit, decimal_unit))
        return make_error(Errc::invalid_config,
                          fmt::format("unit '{}' is ambiguous (decimal or binary?); write {}iB",
                                      unit, unit.substr(0, 1)));
    }
    return make_error(Errc::invalid_config, fmt::format("unknown unit '{}'", unit));
  }
  const Decimal d = dec.value();
  if (d.whole > std::numeric_limits<std::uint64_t>::max() / factor)
    return make_error(Errc::invalid_config, "the size overflows 64 bits");
  std::uint64_t bytes = d.whole * factor;
  // frac * factor can exceed 64 bits (10^9 * 2^40), so split factor by frac_scale first; both
  // partial products then stay below 2^64.
  const std::uint64_t frac_bytes =
      (factor / d.frac_scale) * d.frac + ((factor % d.frac_scale) * d.frac) / d.frac_scale;
  if (bytes > std::numeric_limits<std::uint64_t>::max() - frac_bytes)
    return make_error(Errc::invalid_config, "the size overflows 64 bits");
  bytes += frac_bytes;
  if (bytes == 0) return make_error(Errc::invalid_config, "a quota of zero bytes is not allowed");
  return bytes;
}

Result<std::uint32_t> parse_percent(std::string_view text, bool percent_sign_optional) {
  std::string_view s = trim(text);
  if (s.empty()) return make_error(Errc::invalid_config, "the value is empty");
  if (s.front() == '-') return make_error(Errc::invalid_config, "a percentage cannot be negative");
  if (!s.empty() && s.back() == '%') {
    s.remove_suffix(1);
  } else if (!percent_sign_optional) {
    return make_error(Errc::invalid_config, "a percentage must end in '%'");
  }
  auto dec = parse_decimal(trim(s));
  if (!dec) return dec.error();
  const Decimal d = dec.value();
  if (d.frac_scale > 100 && d.frac % (d.frac_scale / 100) != 0)
    return make_error(Errc::invalid_config, "at most two decimals are allowed");
  if (d.whole > 100) return make_error(Errc::invalid_config, "a percentage cannot exceed 100%");
  const std::uint64_t hundredths = d.whole * 100 + d.frac * 100 / d.frac_scale;
  if (hundredths == 0) return make_error(Errc::invalid_config, "0% is not allowed");
  if (hundredths > 10000)
    return make_error(Errc::invalid_config, "a percentage cannot exceed 100%");
  return static_cast<std::uint32_t>(hundredths);
}

std::string format_bytes(std::uint64_t bytes) {
  constexpr std::array<const char*, 5> names{"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double v = static_cast<double>(bytes);
  std::size_t i = 0;
  while (v >= 1024.0 && i + 1 < names.size()) {
    v /= 1024.0;
    ++i;
  }
  return fmt::format("{:.2f} {}", v, names[i]);
}

}  // namespace xpu
