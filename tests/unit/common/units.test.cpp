#include "xpu/common/units.hpp"

#include <string>

#include "xpu_catch.hpp"

using xpu::BareNumber;
using xpu::parse_percent;
using xpu::parse_size;

TEST_CASE("sizes with binary units parse exactly", "[units]") {
  CHECK(parse_size("10GiB").value() == 10ULL << 30);
  CHECK(parse_size("512MiB").value() == 512ULL << 20);
  CHECK(parse_size("1.5TiB").value() == 3ULL << 39);
  CHECK(parse_size("10G").value() == 10ULL << 30);
  CHECK(parse_size("4096M").value() == 4096ULL << 20);
  CHECK(parse_size("123B").value() == 123);
  CHECK(parse_size("1k").value() == 1024);
  CHECK(parse_size("2gib").value() == 2ULL << 30);
  CHECK(parse_size(" 1 GiB ").value() == 1ULL << 30);
  CHECK(parse_size("0.5KiB").value() == 512);
}

TEST_CASE("malformed sizes are refused with the reason", "[units]") {
  auto reason = [](const char* text) {
    auto r = parse_size(text);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  CHECK(reason("").find("empty") != std::string::npos);
  CHECK(reason("0GiB").find("zero") != std::string::npos);
  CHECK(reason("-1GiB").find("negative") != std::string::npos);
  CHECK(reason("10GB").find("ambiguous") != std::string::npos);
  CHECK(reason("10XB").find("unknown unit") != std::string::npos);
  CHECK(reason("10").find("no unit") != std::string::npos);
  CHECK(reason("GiB").find("number") != std::string::npos);
  CHECK(reason("1.2.3GiB").find("decimal point") != std::string::npos);
  CHECK(reason("99999999999TiB").find("overflow") != std::string::npos);
  CHECK(reason("184467440737095516160B").find("too large") != std::string::npos);
}

TEST_CASE("a bare number means bytes only where the contract says so", "[units]") {
  CHECK(parse_size("1073741824", BareNumber::bytes).value() == 1ULL << 30);
  CHECK_FALSE(parse_size("1073741824", BareNumber::rejected).ok());
}

TEST_CASE("percentages", "[units]") {
  CHECK(parse_percent("25%", false).value() == 2500);
  CHECK(parse_percent("12.5%", false).value() == 1250);
  CHECK(parse_percent("100%", false).value() == 10000);
  CHECK(parse_percent("30", true).value() == 3000);
  CHECK_FALSE(parse_percent("30", false).ok());
  CHECK_FALSE(parse_percent("0%", false).ok());
  CHECK_FALSE(parse_percent("101%", false).ok());
  CHECK_FALSE(parse_percent("-5%", false).ok());
  CHECK_FALSE(parse_percent("1.234%", false).ok());
  CHECK_FALSE(parse_percent("abc%", false).ok());
}
