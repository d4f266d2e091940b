// Shared by the real-GPU test programs (runtime_quota.cu, driver_paths.cpp, group_member.cu).
//
// Output protocol, parsed by tests/gpu/report.py and tests/gpu/observer.py (see
// tests/gpu/README.md):
//   INFO pid=<pid>                                  lets the outside nvidia-smi observer find us
//   CHECK <name> status=PASS|FAIL|INFO expected=<e> measured=<m> [note=<free text to end of line>]
// expected/measured never contain spaces. A program exits 0 when every CHECK passed, 1 otherwise.
//
// Header-only and C++17, because nvcc compiles the .cu programs that include it.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace xpu::gputest {

inline constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
inline constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

// Sizes in the forms the shim accepts: "2GiB", "512MiB", "64KiB", "2G", "4096m" (HAMi's
// CUDA_DEVICE_MEMORY_LIMIT style) or plain bytes. Strict: the whole string must parse, so a typo in
// run_all.sh fails loudly instead of silently testing the wrong quota.
inline std::optional<std::uint64_t> parse_size(std::string_view s) {
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    if (value > (UINT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(s[i] - '0');
  }
  if (i == 0) return std::nullopt;
  const std::string_view unit = s.substr(i);
  std::uint64_t mult = 1;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "K" || unit == "k" || unit == "KiB") {
    mult = std::uint64_t{1} << 10;
  } else if (unit == "M" || unit == "m" || unit == "MiB") {
    mult = kMiB;
  } else if (unit == "G" || unit == "g" || unit == "GiB") {
    mult = kGiB;
  } else {
    return std::nullopt;
  }
  if (value > UINT64_MAX / mult) return std::nullopt;
  return value * mult;
}

// "--key value" / "--flag" command lines. Unknown keys are the caller's business.
class Args {
 public:
  Args(int argc, char** argv) : argc_(argc), argv_(argv) {}
  bool flag(const char* name) const {
    for (int i = 1; i < argc_; ++i)
      if (std::strcmp(argv_[i], name) == 0) return true;
    return false;
  }
  const char* value(const char* name, const char* fallback) const {
    for (int i = 1; i + 1 < argc_; ++i)
      if (std::strcmp(argv_[i], name) == 0) return argv_[i + 1];
    return fallback;
  }
  // Size option; exits with status 2 on a malformed value (a harness bug, not a test failure).
  std::uint64_t size(const char* name, const char* fallback) const {
    const char* text = value(name, fallback);
    const auto parsed = parse_size(text);
    if (!parsed) {
      std::fprintf(stderr, "bad size for %s: '%s'\n", name, text);
      std::exit(2);
    }
    return *parsed;
  }
  // --quota SIZE, or "none" for a baseline run without the shim (quota checks become INFO).
  std::optional<std::uint64_t> quota() const {
    const std::string_view text = value("--quota", "none");
    if (text == "none") return std::nullopt;
    return size("--quota", "none");
  }
  int integer(const char* name, int fallback) const {
    const char* text = value(name, nullptr);
    return text != nullptr ? std::atoi(text) : fallback;
  }

 private:
  int argc_;
  char** argv_;
};

class Report {
 public:
  Report() {
    // Line-buffered even into a pipe or file: group_member is SIGKILLed mid-run and its last
    // lines must already be out.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("INFO pid=%d\n", static_cast<int>(getpid()));
  }
  void check(const std::string& name, bool ok, const std::string& expected,
             const std::string& measured, const std::string& note = "") {
    ++checks_;
    if (!ok) ++failures_;
    emit(name, ok ? "PASS" : "FAIL", expected, measured, note);
  }
  void info(const std::string& name, const std::string& measured, const std::string& note = "") {
    emit(name, "INFO", "-", measured, note);
  }
  // A quota check in quota mode, or INFO in baseline mode (no shim: nothing to compare against).
  void check_if(bool have_quota, const std::string& name, bool ok, const std::string& expected,
                const std::string& measured, const std::string& note = "") {
    if (have_quota) {
      check(name, ok, expected, measured, note);
    } else {
      info(name, measured, note);
    }
  }
  int failures() const { return failures_; }
  int exit_code() const { return (failures_ == 0 && checks_ > 0) ? 0 : 1; }

 private:
  static void emit(const std::string& name, const char* status, const std::string& expected,
                   const std::string& measured, const std::string& note) {
    std::printf("CHECK %s status=%s expected=%s measured=%s%s%s\n", name.c_str(), status,
                expected.empty() ? "-" : expected.c_str(),
                measured.empty() ? "-" : measured.c_str(),
                note.empty() ? "" : " note=", note.c_str());
  }
  int checks_ = 0;
  int failures_ = 0;
};

inline std::string num(std::uint64_t v) { return std::to_string(v); }
inline std::string le(std::uint64_t v) { return "<=" + std::to_string(v); }
inline std::string ge(std::uint64_t v) { return ">=" + std::to_string(v); }

// Keep the peak allocation alive long enough for nvidia-smi (sampling every 100 ms) to see it.
inline void hold(int ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace xpu::gputest
