// The registry contract: protocols (a researcher's work, its HDFS folder, its fund and pay
// rates), and the payout that moves tokens from the fund to a contributor. The payout runs only
// as an inline action of the connected jobs contract, with the fund account's authority.
// Every action follows the same order: check arguments; load rows; require_auth; check
// invariants; write, naming the RAM payer.
#include "cj/pay.hpp"
#include "cj/table.hpp"

using namespace cj;

namespace {

// `config`: a singleton (scope = self, primary key = the table's name) naming the jobs contract
// allowed to call payout.
struct config_row {
  static constexpr bool has_secondary = false;
  name jobs_contract;
  uint64_t primary_key() const { return "config"_n.value; }
  uint32_t packed_size() const { return 8; }
  void read(reader& r) { jobs_contract = r.nm(); }
  void write(writer& w) const { w.nm(jobs_contract); }
};

name self;

constexpr uint32_t max_title = 256;
constexpr uint32_t max_datadir = 1024;

table<protocol_row> protocols(name owner) { return {self, owner.value, "protocol"_n}; }
table<researcher_row> researchers() { return {self, self.value, "researcher"_n}; }

config_row connected_jobs() {
  config_row config;
  check(table<config_row>{self, self.value, "config"_n}.get("config"_n.value, config),
        "the registry is not connected to a jobs contract (conntojobs)");
  return config;
}

// Sends `quantity` of the protocol's token from the registry's own balance (the escrow).
void pay_from_escrow(const protocol_row& row, name to, const asset& quantity, const text& memo) {
  writer data(8 + 8 + 16 + 5 + memo.size);
  data.nm(self);
  data.nm(to);
  data.ast(quantity);
  data.str(string{memo.data, memo.size});
  const permission_level auths[1] = {{self, "active"_n}};
  send_action(row.tokencontract, "transfer"_n, auths, 1, data);
}

void check_account(name account, const char* what) {
  CJ_CHECK(is_account(account.value),
           text() << what << " account " << account << " does not exist");
}

text unknown_protocol(name owner, name researcher) {
  return static_cast<text&&>(text() << "unknown protocol: owner " << owner
                                    << " has no protocol for researcher " << researcher);
}

// datadir is the protocol's HDFS folder: the scheduler watches <datadir>/jobs/incoming and
// writes under <datadir>/jobs/. The contract cannot see other owners' protocols, so the
// scheduler must compare folders by their text; that is sound only for normalized paths.
// Refused: aliases such as "/p/mine/../victim" or "/p//victim", "/" alone, a trailing '/',
// and control bytes (newlines in paths and logs). Call after the absolute-path check.
bool normalized_path(const string& path) {
  uint32_t start = 1;  // the first component starts after the leading '/'
  for (uint32_t i = 1; i <= path.size; ++i) {
    if (i < path.size) {
      const unsigned char c = static_cast<unsigned char>(path.data[i]);
      if (c < 0x20 || c == 0x7f) return false;
      if (c != '/') continue;
    }
    const uint32_t len = i - start;
    if (len == 0) return false;  // "//", a trailing '/', or "/" alone
    if (path.data[start] == '.' && (len == 1 || (len == 2 && path.data[start + 1] == '.')))
      return false;  // "." or ".."
    start = i + 1;
  }
  return true;
}

uint64_t checked_rate(uint32_t bits, uint8_t precision, const char* what) {
  uint64_t fixed = 0;
  switch (rate_to_fixed(bits, precision, fixed)) {
    case rate_error::none: return fixed;
    case rate_error::not_finite: fail(text() << what << " must be a finite number");
    case rate_error::negative: fail(text() << what << " must not be negative");
    case rate_error::too_large:
      fail(text() << what << " must be at most 1000000 tokens per second");
    case rate_error::too_precise:
      fail(text() << what << " is too large for the fund's precision");
    case rate_error::too_small:
      fail(text() << what << " is below the smallest rate the fund's precision can pay");
  }
  return 0;
}

void addprotocol(reader& r) {
  protocol_row row;
  row.title = r.str();
  const name owner = r.nm();
  row.researcher = r.nm();
  row.datadir = r.str();
  row.fundaccount = r.nm();
  row.fund = r.ast();
  row.tokencontract = r.nm();
  const uint32_t dispatcher_bits = r.f32_bits();
  const uint32_t worker_bits = r.f32_bits();
  // An ABI binary extension: absent in the seed's nine-argument form.
  row.max_task_time = r.more() ? r.u64() : default_max_task_time;
  r.done();

  check(row.title.size > 0 && row.title.size <= max_title, "title must be 1 to 256 bytes");
  check(row.datadir.size > 0 && row.datadir.size <= max_datadir && row.datadir.data[0] == '/',
        "datadir must be an absolute path of at most 1024 bytes");
  check(normalized_path(row.datadir),
        "datadir must be a normalized path: no empty, \".\" or \"..\" components, no "
        "control characters");
  check_account(owner, "owner");
  check_account(row.researcher, "researcher");
  check_account(row.fundaccount, "fundaccount");
  check_account(row.tokencontract, "tokencontract");
  check(row.fund.sym.is_valid(), "fund has an invalid symbol");
  check(row.fund.amount > 0 && row.fund.is_amount_within_range(), "fund must be positive");
  row.dispatcher_pay_rate =
      checked_rate(dispatcher_bits, row.fund.sym.precision(), "dispatcher_pay_rate");
  row.worker_pay_rate = checked_rate(worker_bits, row.fund.sym.precision(), "worker_pay_rate");
  check(row.max_task_time > 0 && row.max_task_time < max_time,
        "max_task_time must be 1 to 2^62-1 microseconds");

  // Only token contracts the jobs operator allows: a protocol on a token contract anyone can
  // write (a fake token) would "pay" contributors nothing real.
  const config_row config = connected_jobs();
  const table<token_row> allowed{config.jobs_contract, config.jobs_contract.value, "token"_n};
  CJ_CHECK(allowed.find(row.tokencontract.value) >= 0,
           text() << "token contract " << row.tokencontract << " is not allowed by "
                  << config.jobs_contract << " (allowtoken)");

  const uint64_t code = row.fund.sym.code();
  token_stat_row stat;
  const table<token_stat_row> stats{row.tokencontract, code, "stat"_n};
  CJ_CHECK(stats.get(code, stat),
           (text() << "token ").add_code(code) << " does not exist on " << row.tokencontract);
  token_account_row balance;
  if (!table<token_account_row>{row.tokencontract, row.fundaccount.value, "accounts"_n}.get(
          code, balance))
    balance.balance = asset{0, stat.supply.sym};
  const auto rows = protocols(owner);
  const int32_t it = rows.find(row.researcher.value);
  researcher_row existing;
  const bool taken = researchers().get(row.researcher.value, existing);

  require_auth(owner.value);
  require_auth(row.fundaccount.value);
  // The researcher must consent too: the jobs contract keys worker and dispatcher rows by
  // researcher only, so any protocol for a researcher can settle (zero) the unpaid time of all
  // that researcher's contributors. Without this, a stranger could open (stranger, researcher)
  // with a tiny rate and pay every contributor a token fraction for all their unpaid time.
  require_auth(row.researcher.value);

  CJ_CHECK(it < 0, text() << "owner " << owner << " already has a protocol for researcher "
                          << row.researcher);
  // One protocol per researcher: the time of the researcher's contributors is earned under
  // it and settled only by it (a second protocol, e.g. at a lower rate, could settle it).
  CJ_CHECK(!taken, text() << "researcher " << row.researcher << " already has a protocol (owner "
                          << existing.owner << ")");
  if (stat.supply.sym.value != row.fund.sym.value) {
    text message;
    message << "fund symbol ";
    message.add_symbol(row.fund.sym) << " does not match the token's symbol ";
    message.add_symbol(stat.supply.sym) << " on " << row.tokencontract;
    fail(message);
  }
  // tokencontract is any account the parties name, so its `accounts` row is untrusted: a row
  // whose symbol is not the token's is refused before it is compared or printed (the asset
  // printer's digit buffer holds 18 digits; precision 200 overran it: "access violation").
  if (balance.balance.sym.value != stat.supply.sym.value) {
    text message;
    message << "the balance of " << row.fundaccount << " on " << row.tokencontract
            << " has symbol ";
    message.add_symbol(balance.balance.sym) << ", not the token's ";
    message.add_symbol(stat.supply.sym);
    fail(message);
  }
  CJ_CHECK(balance.balance.amount >= row.fund.amount,
           text() << "insufficient fund: " << row.fundaccount << " holds " << balance.balance
                  << ", the protocol needs " << row.fund);

  // The escrow starts empty: the fund account deposits with a token transfer to the registry
  // whose memo is the researcher (see on_transfer); payouts never exceed what was deposited.
  row.fund.amount = 0;
  rows.insert(row, owner);
  researcher_row index;
  index.researcher = row.researcher;
  index.owner = owner;
  index.max_task_time = row.max_task_time;
  researchers().insert(index, owner);
}

// Reads an account name written as text (1 to 12 characters of a-z, 1-5 and '.').
bool parse_name(const string& text_name, name& out) {
  if (text_name.size == 0 || text_name.size > 12) return false;
  char buffer[13];
  for (uint32_t i = 0; i < text_name.size; ++i) {
    const char c = text_name.data[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '1' && c <= '5') || c == '.')) return false;
    buffer[i] = c;
  }
  buffer[text_name.size] = 0;
  out = name{name_value(buffer)};
  return true;
}

// A token transfer notification: a deposit into a protocol's escrow when it comes from the
// protocol's token contract (never a look-alike), is addressed to the registry, and comes
// from the protocol's fund account with the researcher's name as its memo. Anything else
// addressed to the registry is refused, so no token is stranded here unaccounted for.
void on_transfer(name code, reader& r) {
  const name from = r.nm();
  const name to = r.nm();
  const asset quantity = r.ast();
  const string memo = r.str();
  if (to != self || from == self) return;  // not a deposit (e.g. our own payouts and refunds)
  name researcher;
  check(parse_name(memo, researcher),
        "a deposit's memo must be the researcher of a protocol (an account name)");
  researcher_row index;
  CJ_CHECK(researchers().get(researcher.value, index),
           text() << "no protocol for researcher " << researcher << " to deposit into");
  const auto rows = protocols(index.owner);
  const int32_t it = rows.find(researcher.value);
  protocol_row row;
  rows.load(it, row);
  CJ_CHECK(code == row.tokencontract, text() << "the protocol of researcher " << researcher
                                             << " is funded on " << row.tokencontract
                                             << ", not on " << code);
  CJ_CHECK(from == row.fundaccount, text() << "deposits to the protocol of researcher "
                                           << researcher << " come from its fundaccount "
                                           << row.fundaccount << ", not from " << from);
  if (quantity.sym.value != row.fund.sym.value) {
    text message;
    message << "the deposit's symbol ";
    message.add_symbol(quantity.sym) << " is not the protocol's ";
    message.add_symbol(row.fund.sym);
    fail(message);
  }
  check(quantity.amount > 0, "a deposit must be positive");
  check(quantity.amount <= max_asset_amount - row.fund.amount,
        "the deposit would take the protocol's fund beyond the largest token amount");
  row.fund.amount += quantity.amount;
  rows.update(it, row, index.owner);  // same size: no RAM is charged in the notification
}

void delprotocol(reader& r) {
  const name owner = r.nm();
  const name researcher = r.nm();
  r.done();
  const auto rows = protocols(owner);
  const int32_t it = rows.find(researcher.value);
  CJ_CHECK(it >= 0, unknown_protocol(owner, researcher));
  protocol_row row;
  rows.load(it, row);
  const config_row config = connected_jobs();
  owed_row owed;
  table<owed_row>{config.jobs_contract, config.jobs_contract.value, "owed"_n}.get(
      researcher.value, owed);
  require_auth(owner.value);
  // The escrow stays while contributors hold unpaid time earned under this protocol.
  CJ_CHECK(owed.rows == 0, text() << "the protocol of researcher " << researcher
                                  << " still owes unpaid time to contributors (" << owed.rows
                                  << " rows); pay them out first");
  rows.erase(it, researcher.value);
  const auto index = researchers();
  index.erase(index.find(researcher.value), researcher.value);
  if (row.fund.amount > 0) {
    text memo(96);
    memo << "clusterjobs refund of the protocol of researcher " << researcher;
    pay_from_escrow(row, row.fundaccount, row.fund, memo);
  }
}

void conntojobs(reader& r) {
  const name jobs = r.nm();
  r.done();
  check_account(jobs, "jobs_contract");
  const table<config_row> configs{self, self.value, "config"_n};
  const int32_t it = configs.find("config"_n.value);
  require_auth(self.value);
  const config_row row{jobs};
  if (it >= 0)
    configs.update(it, row, self);
  else
    configs.insert(row, self);
}

void payout(reader& r) {
  const name owner = r.nm();
  const name researcher = r.nm();
  const name contributor = r.nm();
  const int64_t unpaid_time = r.i64();
  const string type = r.str();
  r.done();
  bool worker = false;
  check(valid_type(type, worker), "type must be \"worker\" or \"dispatcher\"");
  check(unpaid_time > 0, "unpaid_time must be positive");
  check(uint64_t(unpaid_time) < max_time, "unpaid_time must be below 2^62 microseconds");

  const config_row config = connected_jobs();
  const auto rows = protocols(owner);
  const int32_t it = rows.find(researcher.value);
  CJ_CHECK(it >= 0, unknown_protocol(owner, researcher));
  protocol_row row;
  rows.load(it, row);
  // The contributor's total time, as the jobs contract has just settled it.
  contributor_row contributor_time;
  const table<contributor_row> times{config.jobs_contract, contributor.value,
                                     worker ? "worker"_n : "dispatcher"_n};
  CJ_CHECK(times.get(researcher.value, contributor_time),
           text() << config.jobs_contract << " has no " << (worker ? "worker " : "dispatcher ")
                  << contributor << " for researcher " << researcher);
  const uint64_t contributor_total = contributor_time.total_time;

  // Only the jobs contract's inline action (jobs::payout checked the funder's authority): a
  // transaction signed by the jobs account's key cannot call payout directly.
  require_auth(config.jobs_contract.value);
  CJ_CHECK(get_sender() == config.jobs_contract.value,
           text() << "payout runs only as an inline action of " << config.jobs_contract);

  const uint64_t amount =
      compute_pay(contributor_total, uint64_t(unpaid_time),
                  worker ? row.worker_pay_rate : row.dispatcher_pay_rate);
  check(amount > 0, "nothing to pay: the unpaid time is worth less than one token unit");
  const asset quantity{int64_t(amount), row.fund.sym};
  CJ_CHECK(amount <= uint64_t(row.fund.amount),
           text() << "insufficient fund: the protocol has " << row.fund
                  << " left, the payout needs " << quantity);

  row.fund.amount -= int64_t(amount);
  rows.update(it, row, owner);

  text memo(128);
  memo << "clusterjobs " << (worker ? "worker" : "dispatcher") << " pay, researcher "
       << researcher;
  pay_from_escrow(row, contributor, quantity, memo);
}

}  // namespace

extern "C" __attribute__((export_name("apply"))) void apply(uint64_t receiver, uint64_t code,
                                                             uint64_t action) {
  self = name{receiver};
  // Of notifications only token transfers (deposits) are handled; on_transfer checks that the
  // token contract is the protocol's.
  if (code != receiver) {
    if (action != "transfer"_n.value) return;
    reader r = action_reader();
    return on_transfer(name{code}, r);
  }
  reader r = action_reader();
  switch (action) {
    case "addprotocol"_n.value: return addprotocol(r);
    case "delprotocol"_n.value: return delprotocol(r);
    case "conntojobs"_n.value: return conntojobs(r);
    case "payout"_n.value: return payout(r);
    default: check(false, "unknown action");
  }
}
