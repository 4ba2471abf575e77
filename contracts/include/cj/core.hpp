// Core of the contracts' header library: memory, assertions with composed messages, the
// name/symbol/asset types and the binary (de)serialization used by action data and rows.
#pragma once

#include <stdint.h>

#include "host.hpp"

// The compiler may emit calls to memcpy/memset for struct copies; define them here (each
// contract is one translation unit) so the wasm never imports the host memcpy, which traps on
// overlapping (even identical) ranges.
extern "C" void* memcpy(void* dest, const void* src, unsigned long len) {
  return cj_host_memmove(dest, src, static_cast<uint32_t>(len));
}
extern "C" void* memmove(void* dest, const void* src, unsigned long len) {
  return cj_host_memmove(dest, src, static_cast<uint32_t>(len));
}
extern "C" void* memset(void* dest, int value, unsigned long len) {
  return cj_host_memset(dest, value, static_cast<uint32_t>(len));
}

extern "C" unsigned char __heap_base;

namespace cj {

// ---------------------------------------------------------------- memory
// A bump allocator: memory and globals are fresh for every action, so nothing is freed.
inline uint32_t& heap_top() {
  static uint32_t top = 0;
  return top;
}

inline void* alloc(uint32_t len) {
  uint32_t& top = heap_top();
  if (top == 0) top = reinterpret_cast<uint32_t>(&__heap_base);
  top = (top + 7u) & ~7u;
  const uint32_t start = top;
  const uint64_t end = uint64_t(start) + len;
  eosio_assert(end < (uint64_t(1) << 32), "out of memory");
  const uint64_t have = uint64_t(__builtin_wasm_memory_size(0)) * 65536u;
  if (end > have) {
    const uint64_t pages = (end - have + 65535u) / 65536u;
    eosio_assert(int32_t(__builtin_wasm_memory_grow(0, uint32_t(pages))) != -1, "out of memory");
  }
  top = uint32_t(end);
  return reinterpret_cast<void*>(start);
}

inline uint32_t cstrlen(const char* text) {
  uint32_t n = 0;
  while (text[n]) ++n;
  return n;
}

// ---------------------------------------------------------------- names
// An account/action/table name: up to 12 characters of .12345a-z plus a 13th of .1-5a-j.
constexpr uint64_t char_value(char c) {
  if (c >= 'a' && c <= 'z') return uint64_t(c - 'a') + 6;
  if (c >= '1' && c <= '5') return uint64_t(c - '1') + 1;
  return 0;
}

constexpr uint64_t name_value(const char* text) {
  uint64_t value = 0;
  int i = 0;
  for (; i < 12 && text[i]; ++i) value |= (char_value(text[i]) & 0x1f) << (64 - 5 * (i + 1));
  if (i == 12 && text[12]) value |= char_value(text[12]) & 0x0f;
  return value;
}

struct name {
  uint64_t value = 0;
  constexpr bool operator==(const name& other) const { return value == other.value; }
  constexpr bool operator!=(const name& other) const { return value != other.value; }
};

constexpr name operator""_n(const char* text, unsigned long) { return name{name_value(text)}; }

// ---------------------------------------------------------------- symbols and assets
struct symbol {
  uint64_t value = 0;  // low byte: precision; upper bytes: code letters, first letter lowest
  constexpr uint8_t precision() const { return uint8_t(value & 0xff); }
  constexpr uint64_t code() const { return value >> 8; }
  bool is_valid() const {
    uint64_t code_bits = code();
    if (code_bits == 0) return false;
    if (precision() > 18) return false;
    // Letters A-Z, packed from the lowest byte, no gaps.
    for (int i = 0; i < 7; ++i) {
      const uint64_t c = code_bits & 0xff;
      if (c == 0) return (code_bits >> 8) == 0;
      if (c < 'A' || c > 'Z') return false;
      code_bits >>= 8;
    }
    return code_bits == 0;
  }
};

// The largest asset amount eosio.token accepts: 2^62 - 1.
constexpr int64_t max_asset_amount = (int64_t(1) << 62) - 1;

struct asset {
  int64_t amount = 0;
  symbol sym;
  bool is_amount_within_range() const {
    return amount >= -max_asset_amount && amount <= max_asset_amount;
  }
};

// ---------------------------------------------------------------- messages
// A composed assertion message: literal text, names, numbers and assets.
struct text {
  char* data;
  uint32_t size = 0;
  uint32_t capacity;

  explicit text(uint32_t cap = 256) : data(static_cast<char*>(alloc(cap))), capacity(cap) {}

  text& add(const char* part, uint32_t len) {
    for (uint32_t i = 0; i < len && size < capacity; ++i) data[size++] = part[i];
    return *this;
  }
  text& operator<<(const char* part) { return add(part, cstrlen(part)); }
  text& operator<<(name n) {
    static const char map[] = ".12345abcdefghijklmnopqrstuvwxyz";
    char out[13];
    uint64_t v = n.value;
    for (int i = 0; i < 13; ++i) {
      if (i == 0) {
        out[12] = map[v & 0x0f];
        v >>= 4;
      } else {
        out[12 - i] = map[v & 0x1f];
        v >>= 5;
      }
    }
    uint32_t len = 13;
    while (len > 0 && out[len - 1] == '.') --len;
    return add(out, len);
  }
  text& operator<<(uint64_t v) {
    char digits[20];
    uint32_t n = 0;
    do {
      digits[n++] = char('0' + v % 10);
      v /= 10;
    } while (v);
    while (n) add(&digits[--n], 1);
    return *this;
  }
  text& add_code(uint64_t code_bits) {
    for (; code_bits; code_bits >>= 8) {
      const char c = char(code_bits & 0xff);
      add(&c, 1);
    }
    return *this;
  }
  text& add_symbol(symbol s) {
    return (*this << uint64_t(s.precision()) << ",").add_code(s.code());
  }
  text& operator<<(const asset& a) {
    uint64_t mag = a.amount < 0 ? uint64_t(-(a.amount + 1)) + 1 : uint64_t(a.amount);
    if (a.amount < 0) *this << "-";
    // Valid symbols have at most 18 decimals (and 10^18 fits uint64); clamp so that an
    // unchecked symbol (e.g. from another contract's row) cannot overrun `digits`.
    const int precision = a.sym.precision() > 18 ? 18 : a.sym.precision();
    uint64_t div = 1;
    for (int i = 0; i < precision; ++i) div *= 10;
    *this << mag / div;
    if (precision) {
      *this << ".";
      uint64_t frac = mag % div;
      char digits[18];
      for (int i = precision - 1; i >= 0; --i) {
        digits[i] = char('0' + frac % 10);
        frac /= 10;
      }
      add(digits, uint32_t(precision));
    }
    return (*this << " ").add_code(a.sym.code());
  }
};

inline void check(bool ok, const char* message) {
  if (!ok) eosio_assert_message(0, message, cstrlen(message));
}

inline void check(bool ok, const text& message) {
  if (!ok) eosio_assert_message(0, message.data, message.size);
}

[[noreturn]] inline void fail(const text& message) {
  eosio_assert_message(0, message.data, message.size);
  __builtin_unreachable();
}

// check() with a composed message that is built only when the check fails (composing names
// and numbers costs CPU that every successful action would otherwise pay).
#define CJ_CHECK(condition, ...)            \
  do {                                      \
    if (!(condition)) ::cj::fail(__VA_ARGS__); \
  } while (0)

// ---------------------------------------------------------------- bytes
struct bytes {
  const char* data = nullptr;
  uint32_t size = 0;
};

// A string as received: a view into the action data or a row buffer.
using string = bytes;

inline bool equals(const string& s, const char* literal) {
  const uint32_t len = cstrlen(literal);
  if (s.size != len) return false;
  for (uint32_t i = 0; i < len; ++i)
    if (s.data[i] != literal[i]) return false;
  return true;
}

// ---------------------------------------------------------------- serialization
// Reads the Antelope binary format (little-endian integers, varuint32 lengths).
struct reader {
  const char* pos;
  const char* end;

  void need(uint32_t len) const {
    check(uint32_t(end - pos) >= len, "read past the end of the serialized data");
  }
  template <typename T>
  T raw() {
    need(sizeof(T));
    T value;
    memcpy(&value, pos, sizeof(T));
    pos += sizeof(T);
    return value;
  }
  uint32_t varuint32() {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      check(shift < 35, "varuint32 is too long");
      const uint8_t byte = raw<uint8_t>();
      value |= uint64_t(byte & 0x7f) << shift;
      if (!(byte & 0x80)) break;
    }
    check(value <= 0xffffffffu, "varuint32 out of range");
    return uint32_t(value);
  }
  uint64_t u64() { return raw<uint64_t>(); }
  int64_t i64() { return raw<int64_t>(); }
  uint32_t f32_bits() { return raw<uint32_t>(); }
  name nm() { return name{raw<uint64_t>()}; }
  symbol sym() { return symbol{raw<uint64_t>()}; }
  asset ast() {
    asset a;
    a.amount = i64();
    a.sym = sym();
    return a;
  }
  string str() {
    const uint32_t len = varuint32();
    need(len);
    string s{pos, len};
    pos += len;
    return s;
  }
  // True while bytes are left: an ABI binary extension (a `$` field) is present only then.
  bool more() const { return pos != end; }
  void done() const { check(pos == end, "unexpected bytes after the serialized data"); }
};

// Writes the same format into a buffer sized up front by the caller.
struct writer {
  char* data;
  uint32_t size = 0;
  uint32_t capacity;

  explicit writer(uint32_t cap) : data(static_cast<char*>(alloc(cap))), capacity(cap) {}

  void put(const void* src, uint32_t len) {
    check(capacity - size >= len, "serialization buffer too small");
    memcpy(data + size, src, len);
    size += len;
  }
  template <typename T>
  void raw(T value) {
    put(&value, sizeof(T));
  }
  void varuint32(uint32_t value) {
    do {
      uint8_t byte = value & 0x7f;
      value >>= 7;
      if (value) byte |= 0x80;
      raw(byte);
    } while (value);
  }
  void u64(uint64_t v) { raw(v); }
  void nm(name n) { raw(n.value); }
  void ast(const asset& a) {
    raw(a.amount);
    raw(a.sym.value);
  }
  void str(const string& s) {
    varuint32(s.size);
    put(s.data, s.size);
  }
  void str(const char* s) { str(string{s, cstrlen(s)}); }
};

// The action's data, read once.
inline reader action_reader() {
  const uint32_t len = action_data_size();
  char* buffer = static_cast<char*>(alloc(len ? len : 1));
  if (len) read_action_data(buffer, len);
  return reader{buffer, buffer + len};
}

}  // namespace cj
