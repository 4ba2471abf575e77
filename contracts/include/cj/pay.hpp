// The pay formula and the rows both contracts share: the registry's `protocol` row (the jobs
// contract reads it to know the rate at payout) and eosio.token's `stat` and `accounts` rows.
// contracts/README.md documents the formula; tests/unit/test_contracts_pay.py holds a Python
// reference that must agree with it.
#pragma once

#include "core.hpp"

namespace cj {

using u128 = unsigned __int128;

// Fixed-point rates: rate_fixed = round(rate * 10^(precision + 6)), i.e. the rate in units of
// 10^-6 of the fund's smallest unit per second; pay for t microseconds is
// floor(t * rate_fixed / 10^12) smallest units.
constexpr uint64_t rate_scale_us = 1000000000000ull;  // 10^6 (us per s) * 10^6 (rate fraction)
constexpr uint64_t rate_fraction_digits = 6;
// The largest rate accepted, in whole tokens per second.
constexpr double max_rate = 1000000.0;
// Time totals stay below 2^62 us (about 146,000 years) so sums and int64 copies never overflow.
constexpr uint64_t max_time = uint64_t(1) << 62;

enum class rate_error { none, not_finite, negative, too_large, too_precise, too_small };

// Converts a float32 rate (whole tokens per second, from its raw bits) to the fixed-point
// integer; the float is validated by its bits so NaN and infinities never reach arithmetic.
inline rate_error rate_to_fixed(uint32_t bits, uint8_t precision, uint64_t& fixed) {
  const uint32_t exponent = (bits >> 23) & 0xff;
  if (exponent == 0xff) return rate_error::not_finite;
  const bool negative = (bits >> 31) != 0;
  const bool zero = (bits & 0x7fffffffu) == 0;
  if (zero) {
    fixed = 0;
    return rate_error::none;
  }
  if (negative) return rate_error::negative;
  float rate;
  memcpy(&rate, &bits, 4);
  if (double(rate) > max_rate) return rate_error::too_large;
  double scaled = double(rate);
  for (uint64_t i = 0; i < precision + rate_fraction_digits; ++i) scaled *= 10.0;
  // 2^63: the product below must fit unsigned 128 bits with time < 2^62 (it does for < 2^66).
  if (scaled >= 9223372036854775808.0) return rate_error::too_precise;
  fixed = uint64_t(scaled + 0.5);
  if (fixed == 0) return rate_error::too_small;
  return rate_error::none;
}

// The value of `time` microseconds at `rate_fixed`, in the fund's smallest units, rounded
// down. Not bounded: time < 2^62 and rate_fixed < 2^63, so the product fits 128 bits (< 2^125).
inline u128 time_value(uint64_t time, uint64_t rate_fixed) {
  return u128(time) * u128(rate_fixed) / rate_scale_us;
}

// Pay for the `unpaid` most recent microseconds of a contributor's `total` time:
// value(total) - value(total - unpaid). Summed over payouts this telescopes to
// value(total): the fraction of a unit rounded off at one payout is paid at a later one, so no
// time is lost and none is paid twice, while unpaid_time goes back to 0 at every payout.
// Only the difference must fit a token amount: value(total) itself may exceed 2^62-1 (a long
// history priced at a later, higher rate after delprotocol + addprotocol) and bounding it
// would make every later payout, and so the contributor's unpaid time, fail forever.
inline uint64_t compute_pay(uint64_t total, uint64_t unpaid, uint64_t rate_fixed) {
  check(unpaid <= total, "unpaid time exceeds total time");
  if (rate_fixed == 0 || unpaid == 0) return 0;
  const u128 pay = time_value(total, rate_fixed) - time_value(total - unpaid, rate_fixed);
  check(pay <= u128(max_asset_amount), "pay exceeds the largest token amount");
  return uint64_t(pay);
}

// ---------------------------------------------------------------- shared rows
// The jobs contract's `worker` and `dispatcher` rows: scope = the contributor's account,
// primary key = researcher. The registry reads them to price a payout.
struct contributor_row {
  static constexpr bool has_secondary = false;
  name researcher;
  uint64_t total_time = 0;
  uint64_t unpaid_time = 0;
  uint64_t primary_key() const { return researcher.value; }
  uint32_t packed_size() const { return 24; }
  void read(reader& r) {
    researcher = r.nm();
    total_time = r.u64();
    unpaid_time = r.u64();
  }
  void write(writer& w) const {
    w.nm(researcher);
    w.u64(total_time);
    w.u64(unpaid_time);
  }
};

// registry's `protocol` table: scope = owner, primary key = researcher.
struct protocol_row {
  static constexpr bool has_secondary = false;
  string title;
  name researcher;
  string datadir;
  name fundaccount;
  asset fund;
  name tokencontract;
  uint64_t worker_pay_rate = 0;      // fixed point, see rate_to_fixed
  uint64_t dispatcher_pay_rate = 0;  // fixed point, see rate_to_fixed
  uint64_t max_task_time = 0;        // microseconds: the largest credit of one task

  uint64_t primary_key() const { return researcher.value; }
  uint32_t packed_size() const {
    return 5 + title.size + 8 + 5 + datadir.size + 8 + 16 + 8 + 16 + 8;
  }
  void read(reader& r) {
    title = r.str();
    researcher = r.nm();
    datadir = r.str();
    fundaccount = r.nm();
    fund = r.ast();
    tokencontract = r.nm();
    worker_pay_rate = r.u64();
    dispatcher_pay_rate = r.u64();
    max_task_time = r.u64();
  }
  void write(writer& w) const {
    w.str(title);
    w.nm(researcher);
    w.str(datadir);
    w.nm(fundaccount);
    w.ast(fund);
    w.nm(tokencontract);
    w.u64(worker_pay_rate);
    w.u64(dispatcher_pay_rate);
    w.u64(max_task_time);
  }
};

// registry's `researcher` table: scope = the registry, primary key = researcher. A researcher
// has at most one protocol; the jobs contract reads this row on every credit (which protocol
// the time is earned under, and its maximum task time).
struct researcher_row {
  static constexpr bool has_secondary = false;
  name researcher;
  name owner;
  uint64_t max_task_time = 0;
  uint64_t primary_key() const { return researcher.value; }
  uint32_t packed_size() const { return 24; }
  void read(reader& r) {
    researcher = r.nm();
    owner = r.nm();
    max_task_time = r.u64();
  }
  void write(writer& w) const {
    w.nm(researcher);
    w.nm(owner);
    w.u64(max_task_time);
  }
};

// The jobs contract's `owed` table: scope = the jobs contract, primary key = researcher; how
// many worker and dispatcher rows of that researcher hold unpaid time. The registry refuses
// delprotocol while it is not zero (the escrow must stay until the time is paid).
struct owed_row {
  static constexpr bool has_secondary = false;
  name researcher;
  uint64_t rows = 0;
  uint64_t primary_key() const { return researcher.value; }
  uint32_t packed_size() const { return 16; }
  void read(reader& r) {
    researcher = r.nm();
    rows = r.u64();
  }
  void write(writer& w) const {
    w.nm(researcher);
    w.u64(rows);
  }
};

// The jobs contract's `token` table: scope = the jobs contract, primary key = the token
// contract's account. Only these token contracts may fund a protocol (allowtoken/denytoken).
struct token_row {
  static constexpr bool has_secondary = false;
  name contract;
  uint64_t primary_key() const { return contract.value; }
  uint32_t packed_size() const { return 8; }
  void read(reader& r) { contract = r.nm(); }
  void write(writer& w) const { w.nm(contract); }
};

// The default maximum task time of a protocol (addprotocol's optional last argument): 7 days.
constexpr uint64_t default_max_task_time = 7ull * 24 * 3600 * 1000000;

// eosio.token's `stat` table: scope = symbol code, primary key = symbol code.
struct token_stat_row {
  static constexpr bool has_secondary = false;
  asset supply;
  asset max_supply;
  name issuer;
  uint64_t primary_key() const { return supply.sym.code(); }
  uint32_t packed_size() const { return 40; }
  void read(reader& r) {
    supply = r.ast();
    max_supply = r.ast();
    issuer = r.nm();
  }
  void write(writer& w) const {
    w.ast(supply);
    w.ast(max_supply);
    w.nm(issuer);
  }
};

// eosio.token's `accounts` table: scope = owner, primary key = symbol code.
struct token_account_row {
  static constexpr bool has_secondary = false;
  asset balance;
  uint64_t primary_key() const { return balance.sym.code(); }
  uint32_t packed_size() const { return 16; }
  void read(reader& r) { balance = r.ast(); }
  void write(writer& w) const { w.ast(balance); }
};

inline bool valid_type(const string& type, bool& is_worker) {
  if (equals(type, "worker")) {
    is_worker = true;
    return true;
  }
  if (equals(type, "dispatcher")) {
    is_worker = false;
    return true;
  }
  return false;
}

}  // namespace cj
