// The jobs contract: registers workers and dispatchers per researcher, credits their time
// (microseconds) from finished tasks, and pays the unpaid time through the registry.
// Every action follows the same order: check arguments; load rows; require_auth; check
// invariants; write, naming the RAM payer.
#include "cj/pay.hpp"
#include "cj/table.hpp"

using namespace cj;

namespace {

// `job` rows: scope = worker, primary key = an auto-increment id, secondary index on time.
// `credit_id` is the task's identity (0: none) and `credited_at` the block time of the credit.
struct job_row {
  static constexpr bool has_secondary = true;
  uint64_t id = 0;
  name researcher;
  uint64_t time = 0;
  uint64_t credit_id = 0;
  uint64_t credited_at = 0;
  uint64_t primary_key() const { return id; }
  uint64_t secondary_key() const { return time; }
  uint32_t packed_size() const { return 40; }
  void read(reader& r) {
    id = r.u64();
    researcher = r.nm();
    time = r.u64();
    credit_id = r.u64();
    credited_at = r.u64();
  }
  void write(writer& w) const {
    w.u64(id);
    w.nm(researcher);
    w.u64(time);
    w.u64(credit_id);
    w.u64(credited_at);
  }
};

// `credit` rows: the identities of the credits seen (scope = self, primary key = credit_id,
// secondary index on the block time they were seen). A credit whose id is here is a no-op.
// Rows older than the window are pruned by later credits, so RAM stays bounded by the credits
// of one window.
struct credit_row {
  static constexpr bool has_secondary = true;
  uint64_t id = 0;
  uint64_t seen_at = 0;
  uint64_t primary_key() const { return id; }
  uint64_t secondary_key() const { return seen_at; }
  uint32_t packed_size() const { return 16; }
  void read(reader& r) {
    id = r.u64();
    seen_at = r.u64();
  }
  void write(writer& w) const {
    w.u64(id);
    w.u64(seen_at);
  }
};

// How long a credit's identity is remembered (and a job row with an identity is kept):
// 24 hours of block time. A pusher may resend a credit safely within it. Only the tests build
// a copy with a shorter window (to see pruning), never `contracts build`.
#ifndef CJ_CREDIT_WINDOW_US
#define CJ_CREDIT_WINDOW_US (24ull * 3600 * 1000000)
#endif
constexpr uint64_t credit_window_us = CJ_CREDIT_WINDOW_US;
// Expired identities pruned per new credit: more than one, so pruning outpaces insertion.
constexpr int prune_per_credit = 2;

// `reg`: a singleton (scope = self, primary key = the table's name) naming the registry.
struct reg_row {
  static constexpr bool has_secondary = false;
  name registry_contract;
  uint64_t primary_key() const { return "reg"_n.value; }
  uint32_t packed_size() const { return 8; }
  void read(reader& r) { registry_contract = r.nm(); }
  void write(writer& w) const { w.nm(registry_contract); }
};

name self;

table<contributor_row> contributors(bool worker, name account) {
  return {self, account.value, worker ? "worker"_n : "dispatcher"_n};
}

const char* role(bool worker) { return worker ? "worker " : "dispatcher "; }

void check_account(name account, const char* what) {
  CJ_CHECK(is_account(account.value),
           text() << what << " account " << account << " does not exist");
}

void check_time(uint64_t time) {
  check(time > 0, "time must be positive");
  check(time < max_time, "time must be below 2^62 microseconds");
}

text not_registered(bool worker, name account, name researcher) {
  return static_cast<text&&>(text() << role(worker) << account
                                    << " is not registered for researcher " << researcher);
}

void conntoreg(reader& r) {
  const name registry = r.nm();
  r.done();
  check_account(registry, "registry_contract");
  const table<reg_row> regs{self, self.value, "reg"_n};
  const int32_t it = regs.find("reg"_n.value);
  require_auth(self.value);
  const reg_row row{registry};
  if (it >= 0)
    regs.update(it, row, self);
  else
    regs.insert(row, self);
}

void reg_contributor(reader& r, bool worker) {
  const name account = r.nm();
  const name researcher = r.nm();
  r.done();
  check_account(account, worker ? "worker" : "dispatcher");
  check_account(researcher, "researcher");
  const auto rows = contributors(worker, account);
  const int32_t it = rows.find(researcher.value);
  require_auth(self.value);
  CJ_CHECK(it < 0, text() << role(worker) << account << " is already registered for researcher "
                          << researcher);
  contributor_row row;
  row.researcher = researcher;
  rows.insert(row, self);
}

void del_contributor(reader& r, bool worker) {
  const name account = r.nm();
  const name researcher = r.nm();
  r.done();
  const auto rows = contributors(worker, account);
  const int32_t it = rows.find(researcher.value);
  CJ_CHECK(it >= 0, not_registered(worker, account, researcher));
  contributor_row row;
  rows.load(it, row);
  require_auth(self.value);
  // Deleting the row would lose the time nobody has paid for yet.
  CJ_CHECK(row.unpaid_time == 0, text() << role(worker) << account
                                        << " has unpaid time for researcher " << researcher
                                        << "; pay it out first");
  rows.erase(it, researcher.value);
}

reg_row registry() {
  reg_row reg;
  check(table<reg_row>{self, self.value, "reg"_n}.get("reg"_n.value, reg),
        "the jobs contract is not connected to a registry (conntoreg)");
  return reg;
}

const table<owed_row> owed_rows() { return {self, self.value, "owed"_n}; }

// Counts a row of `researcher` that starts (+1) or stops (-1) holding unpaid time.
void count_owed(name researcher, bool starts) {
  const auto owed = owed_rows();
  const int32_t it = owed.find(researcher.value);
  owed_row row;
  row.researcher = researcher;
  if (it >= 0) owed.load(it, row);
  if (starts) {
    row.rows += 1;
    if (it >= 0)
      owed.update(it, row, self);
    else
      owed.insert(row, self);
    return;
  }
  check(it >= 0 && row.rows > 0, "owed count out of step");  // unreachable: every start counts
  row.rows -= 1;
  if (row.rows == 0)
    owed.erase(it, researcher.value);
  else
    owed.update(it, row, self);
}

// Credits `time` (already checked) to a contributor row; the jobs account pays the RAM. The
// researcher must have a protocol: the time is earned under it, bounded by its maximum task
// time, and only it can settle the time (the registry keeps one protocol per researcher and
// refuses delprotocol while rows hold unpaid time).
void credit(bool worker, name account, name researcher, uint64_t time) {
  const auto rows = contributors(worker, account);
  const int32_t it = rows.find(researcher.value);
  CJ_CHECK(it >= 0, not_registered(worker, account, researcher));
  contributor_row row;
  rows.load(it, row);
  const name registry_contract = registry().registry_contract;
  researcher_row protocol;
  CJ_CHECK((table<researcher_row>{registry_contract, registry_contract.value, "researcher"_n}
                .get(researcher.value, protocol)),
           text() << "researcher " << researcher << " has no protocol");
  require_auth(self.value);
  CJ_CHECK(time <= protocol.max_task_time,
           text() << "time " << time << " us exceeds the maximum task time of "
                  << protocol.max_task_time << " us of the protocol of researcher "
                  << researcher);
  // unpaid_time <= total_time always holds, so bounding total_time bounds both.
  CJ_CHECK(time < max_time - row.total_time,
           text() << "time overflows the total_time of " << role(worker) << account
                  << " for researcher " << researcher);
  if (row.unpaid_time == 0) count_owed(researcher, true);
  row.total_time += time;
  row.unpaid_time += time;
  rows.update(it, row, self);
}

const table<credit_row> credits() { return {self, self.value, "credit"_n}; }

// True when `credit_id` was seen before (the credit must then do nothing). Otherwise records
// it, prunes identities older than the window, and returns false. 0 is no identity.
bool seen_before(uint64_t credit_id, uint64_t now) {
  if (credit_id == 0) return false;
  const auto seen = credits();
  if (seen.find(credit_id) >= 0) return true;
  const uint64_t index = index_table("credit"_n, 0);
  for (int i = 0; i < prune_per_credit; ++i) {
    uint64_t oldest = 0;
    uint64_t primary = 0;
    const int32_t sit = db_idx64_lowerbound(self.value, self.value, index, &oldest, &primary);
    if (sit < 0 || sit == db_idx64_end(self.value, self.value, index)) break;
    if (now - oldest < credit_window_us) break;  // seen_at <= now: block time never goes back
    seen.erase(seen.find(primary), primary);
  }
  credit_row row;
  row.id = credit_id;
  row.seen_at = now;
  seen.insert(row, self);
  return false;
}

void newjob(reader& r) {
  const name researcher = r.nm();
  const name worker = r.nm();
  const uint64_t time = r.u64();
  // credit_id is an ABI binary extension: absent in the seed's three-argument form.
  const uint64_t credit_id = r.more() ? r.u64() : 0;
  r.done();
  check_time(time);
  require_auth(self.value);
  const uint64_t now = current_time();
  // A resent credit (same task) changes nothing and does not abort its transaction.
  if (seen_before(credit_id, now)) return prints_l("duplicate credit ignored", 24);
  credit(true, worker, researcher, time);
  const table<job_row> jobs{self, worker.value, "job"_n};
  job_row job;
  job.id = jobs.next_key();
  job.researcher = researcher;
  job.time = time;
  job.credit_id = credit_id;
  job.credited_at = now;
  jobs.insert(job, self);
}

void updatedptch(reader& r) {
  const name researcher = r.nm();
  const name dispatcher = r.nm();
  const uint64_t time = r.u64();
  // credit_id is an ABI binary extension: absent in the seed's three-argument form.
  const uint64_t credit_id = r.more() ? r.u64() : 0;
  r.done();
  check_time(time);
  require_auth(self.value);
  if (seen_before(credit_id, current_time())) return prints_l("duplicate credit ignored", 24);
  credit(false, dispatcher, researcher, time);
}

void removejob(reader& r) {
  const name researcher = r.nm();
  const name worker = r.nm();
  const uint64_t time = r.u64();
  r.done();
  check_time(time);
  const table<job_row> jobs{self, worker.value, "job"_n};
  uint64_t id = 0;
  // Jobs of several researchers may share a length: take the oldest of this researcher's.
  const bool found = jobs.find_secondary(
      time,
      [&](uint64_t primary) {
        job_row job;
        jobs.get(primary, job);
        return job.researcher == researcher;
      },
      id);
  CJ_CHECK(found, text() << "no job of " << time << " us for researcher " << researcher
                         << " on worker " << worker);
  job_row job;
  jobs.get(id, job);
  require_auth(self.value);
  // A job with an identity stays for the credit window: it is the on-chain trace a pusher
  // resending that credit can be checked against.
  CJ_CHECK(job.credit_id == 0 || current_time() - job.credited_at >= credit_window_us,
           text() << "job " << job.id << " of " << time << " us for researcher " << researcher
                  << " on worker " << worker
                  << " was credited less than 24 hours ago (the credit window)");
  jobs.erase(jobs.find(id), id);
}

void payout(reader& r) {
  const name owner = r.nm();
  const name funder = r.nm();
  const name researcher = r.nm();
  const name contributor = r.nm();
  const string type = r.str();
  r.done();
  bool worker = false;
  check(valid_type(type, worker), "type must be \"worker\" or \"dispatcher\"");

  const reg_row reg = registry();
  const auto rows = contributors(worker, contributor);
  const int32_t it = rows.find(researcher.value);
  CJ_CHECK(it >= 0, not_registered(worker, contributor, researcher));
  contributor_row row;
  rows.load(it, row);
  protocol_row protocol;
  const table<protocol_row> protocols{reg.registry_contract, owner.value, "protocol"_n};
  CJ_CHECK(protocols.get(researcher.value, protocol),
           text() << "unknown protocol: owner " << owner << " has no protocol for researcher "
                  << researcher);

  require_auth(funder.value);

  CJ_CHECK(funder == protocol.fundaccount,
           text() << "funder " << funder << " is not the fundaccount of the protocol ("
                  << protocol.fundaccount << ")");
  CJ_CHECK(row.unpaid_time > 0, text() << "nothing to pay: " << role(worker) << contributor
                                        << " has no unpaid time for researcher " << researcher);
  // The registry keeps one protocol per researcher and refuses delprotocol while time is
  // unpaid, so this protocol is the one the unpaid time was earned under.
  const uint64_t amount = compute_pay(
      row.total_time, row.unpaid_time,
      worker ? protocol.worker_pay_rate : protocol.dispatcher_pay_rate);

  // All unpaid time is settled: the rounded-off fraction of a unit is carried by total_time
  // (see compute_pay). The registry reads this row, so it is written before the inline call.
  const uint64_t unpaid = row.unpaid_time;
  row.unpaid_time = 0;
  rows.update(it, row, self);
  count_owed(researcher, false);
  if (amount == 0) {
    // Worth less than one unit (or a zero rate): nothing moves, and the fraction is paid by a
    // later payout, which starts from the same total_time boundary.
    const char message[] = "nothing to transfer: the unpaid time is worth less than one unit";
    return prints_l(message, sizeof(message) - 1);
  }

  writer data(8 * 4 + 5 + type.size);
  data.nm(owner);
  data.nm(researcher);
  data.nm(contributor);
  data.u64(unpaid);
  data.str(type);
  // Only the jobs contract's own authority: the registry pays from its escrow.
  const permission_level auths[1] = {{self, "active"_n}};
  send_action(reg.registry_contract, "payout"_n, auths, 1, data);
}

// allowtoken / denytoken: the token contracts a protocol may be funded on.
void allowtoken(reader& r) {
  const name contract = r.nm();
  r.done();
  check_account(contract, "tokencontract");
  const table<token_row> tokens{self, self.value, "token"_n};
  const int32_t it = tokens.find(contract.value);
  require_auth(self.value);
  CJ_CHECK(it < 0, text() << "token contract " << contract << " is already allowed");
  tokens.insert(token_row{contract}, self);
}

void denytoken(reader& r) {
  const name contract = r.nm();
  r.done();
  const table<token_row> tokens{self, self.value, "token"_n};
  const int32_t it = tokens.find(contract.value);
  CJ_CHECK(it >= 0, text() << "token contract " << contract << " is not allowed");
  require_auth(self.value);
  tokens.erase(it, contract.value);
}

}  // namespace

extern "C" __attribute__((export_name("apply"))) void apply(uint64_t receiver, uint64_t code,
                                                             uint64_t action) {
  self = name{receiver};
  // Only our own actions; notifications from other contracts are ignored.
  if (code != receiver) return;
  reader r = action_reader();
  switch (action) {
    case "conntoreg"_n.value: return conntoreg(r);
    case "regworker"_n.value: return reg_contributor(r, true);
    case "delworker"_n.value: return del_contributor(r, true);
    case "regdisptch"_n.value: return reg_contributor(r, false);
    case "deldisptch"_n.value: return del_contributor(r, false);
    case "newjob"_n.value: return newjob(r);
    case "removejob"_n.value: return removejob(r);
    case "updatedptch"_n.value: return updatedptch(r);
    case "payout"_n.value: return payout(r);
    case "allowtoken"_n.value: return allowtoken(r);
    case "denytoken"_n.value: return denytoken(r);
    default: check(false, "unknown action");
  }
}
