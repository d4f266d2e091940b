// Typed errors inside xpushim. Exceptions never cross extern "C"; functions that can fail for a
// reason the caller must act on return Result<T>. (C++20 has no std::expected.)
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace xpu {

enum class Errc {
  invalid_config,  // a setting is malformed or conflicting: fail closed
  over_quota,      // the request does not fit the quota: the driver's out-of-memory error
  unavailable,     // an infrastructure piece (segment, driver) is missing: fail open
  incompatible,    // a shared segment of another layout version
  exhausted,       // a fixed-size table is full
  internal,        // a bug or a corrupted value we refused to use
};

struct Error {
  Errc code;
  std::string message;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace xpu
