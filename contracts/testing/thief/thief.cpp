// An attacker's contract, for tests only (never deployed by `clusterjobs contracts deploy`):
// what whoever holds a contract account's key could set as its code. steal() sends an inline
// token transfer from any account, claiming that account's active permission; it succeeds
// only where the chain lets this contract's eosio.code act as that permission.
#include "cj/table.hpp"

using namespace cj;

namespace {

// steal(token, from, to, quantity)
void steal(reader& r) {
  const name token = r.nm();
  const name from = r.nm();
  const name to = r.nm();
  const asset quantity = r.ast();
  r.done();
  writer data(8 + 8 + 16 + 1);
  data.nm(from);
  data.nm(to);
  data.ast(quantity);
  data.str("");
  const permission_level auths[1] = {{from, "active"_n}};
  send_action(token, "transfer"_n, auths, 1, data);
}

}  // namespace

extern "C" __attribute__((export_name("apply"))) void apply(uint64_t receiver, uint64_t code,
                                                             uint64_t action) {
  if (code != receiver) return;
  reader r = action_reader();
  if (action == "steal"_n.value) return steal(r);
  check(false, "unknown action");
}
