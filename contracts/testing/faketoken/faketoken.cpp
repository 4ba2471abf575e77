// A fake token contract, for tests only (never deployed by `clusterjobs contracts deploy`):
// it writes whatever eosio.token-shaped rows a test asks for, so the registry's handling of a
// token contract it cannot trust is exercised on the real chain. No authorization checks.
#include "cj/table.hpp"

using namespace cj;

// Only this test contract notifies; the real contracts never import it.
extern "C" CJ_IMPORT(require_recipient) void require_recipient(uint64_t account);

namespace {

// Raw rows: the bytes go to the chain exactly as the test packed them.
struct raw_row {
  static constexpr bool has_secondary = false;
  uint64_t key = 0;
  string data;
  uint64_t primary_key() const { return key; }
  uint32_t packed_size() const { return data.size; }
  void write(writer& w) const { w.put(data.data, data.size); }
  void read(reader&) {}
};

// setrow(scope, table, key, data): stores `data` (any bytes) as the row.
void setrow(name self, reader& r) {
  const uint64_t scope = r.u64();
  const name table_name = r.nm();
  raw_row row;
  row.key = r.u64();
  row.data = r.str();
  r.done();
  const table<raw_row> rows{self, scope, table_name};
  const int32_t it = rows.find(row.key);
  if (it >= 0)
    rows.update(it, row, self);
  else
    rows.insert(row, self);
}

// notify(account, ...): sends this action on to `account` as a notification; the data
// after the account is free-form (e.g. the packed arguments of the account's own action
// of the same name).
void notify(reader& r) {
  const name account = r.nm();
  require_recipient(account.value);
}

// transfer(from, to, quantity, memo): notifies `to` and moves nothing.
void notify_to(reader& r) {
  r.nm();
  const name to = r.nm();
  require_recipient(to.value);
}

}  // namespace

extern "C" __attribute__((export_name("apply"))) void apply(uint64_t receiver, uint64_t code,
                                                             uint64_t action) {
  if (code != receiver) return;
  reader r = action_reader();
  switch (action) {
    case "setrow"_n.value: return setrow(name{receiver}, r);
    // Actions named like the registry's and the jobs contract's, sent on as notifications.
    case "payout"_n.value: return notify(r);
    // A look-alike transfer: moves nothing, but notifies `to` as eosio.token would.
    case "transfer"_n.value: return notify_to(r);
    default: check(false, "unknown action");
  }
}
