// A strict JSON syntax check (RFC 8259) for the tests of `xpu-run status --json`: no library is
// needed, and it tells whether every document the tool prints parses. Header-only.
#pragma once

#include <cstddef>
#include <string_view>

namespace xpu_test {

class JsonCheck {
 public:
  // True when `text` is exactly one JSON value (surrounding whitespace allowed).
  static bool valid(std::string_view text) {
    JsonCheck c(text);
    c.skip_ws();
    if (!c.value(0)) return false;
    c.skip_ws();
    return c.pos_ == c.text_.size();
  }

 private:
  explicit JsonCheck(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  bool eat_word(std::string_view w) {
    if (text_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  void skip_ws() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
      ++pos_;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }

  bool value(int depth) {
    if (depth > 64) return false;
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        return eat_word("true");
      case 'f':
        return eat_word("false");
      case 'n':
        return eat_word("null");
      default:
        return number();
    }
  }
  bool object(int depth) {
    eat('{');
    skip_ws();
    if (eat('}')) return true;
    for (;;) {
      skip_ws();
      if (!string()) return false;
      skip_ws();
      if (!eat(':')) return false;
      skip_ws();
      if (!value(depth + 1)) return false;
      skip_ws();
      if (eat('}')) return true;
      if (!eat(',')) return false;
    }
  }
  bool array(int depth) {
    eat('[');
    skip_ws();
    if (eat(']')) return true;
    for (;;) {
      skip_ws();
      if (!value(depth + 1)) return false;
      skip_ws();
      if (eat(']')) return true;
      if (!eat(',')) return false;
    }
  }
  bool string() {
    if (!eat('"')) return false;
    while (!at_end()) {
      const auto c = static_cast<unsigned char>(text_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      const char e = peek();
      ++pos_;
      if (e == 'u') {
        for (int i = 0; i < 4; ++i) {
          const char h = peek();
          if (!digit(h) && !(h >= 'a' && h <= 'f') && !(h >= 'A' && h <= 'F')) return false;
          ++pos_;
        }
      } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
        return false;
      }
    }
    return false;
  }
  bool number() {
    eat('-');
    if (eat('0')) {
    } else if (digit(peek())) {
      while (digit(peek())) ++pos_;
    } else {
      return false;
    }
    if (eat('.')) {
      if (!digit(peek())) return false;
      while (digit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digit(peek())) return false;
      while (digit(peek())) ++pos_;
    }
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace xpu_test
