// Strict parsers for the human-written values in xpushim's settings: sizes and percentages.
// Every failure says what was wrong; the caller adds the variable name and the accepted forms.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "xpu/common/result.hpp"

namespace xpu {

enum class BareNumber { rejected, bytes };  // what a number without a unit means

// "10GiB", "512MiB", "1.5TiB", "10G", "4096M", "123B"; binary units only (K = KiB = 1024).
// Decimal units (GB, MB) are refused with a hint rather than guessed. Zero is refused.
Result<std::uint64_t> parse_size(std::string_view text, BareNumber bare = BareNumber::rejected);

// "25%" (or "25" when percent_sign_optional): a positive percentage, at most 100, two decimals.
// Returned in hundredths of a percent (basis points): "12.5%" -> 1250.
Result<std::uint32_t> parse_percent(std::string_view text, bool percent_sign_optional);

// 10737418240 -> "10.00 GiB"; exact small values stay in bytes.
std::string format_bytes(std::uint64_t bytes);

}  // namespace xpu
