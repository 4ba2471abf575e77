// A table wrapper over the i64 primary index with an optional idx64 secondary index, plus
// inline action sending. Rows are plain structs with `read(reader&)`, `write(writer&)`,
// `packed_size()` and `primary_key()`; those with a secondary index add `secondary_key()`.
#pragma once

#include "core.hpp"

namespace cj {

// The secondary index's table name, as the CDT derives it: the table name's low 4 bits hold
// the index number.
constexpr uint64_t index_table(name table, uint64_t index) {
  return (table.value & 0xfffffffffffffff0ull) | (index & 0x0f);
}

template <typename Row>
struct table {
  name code;
  uint64_t scope;
  name table_name;

  // Finds a row by primary key; returns the iterator (negative when absent).
  int32_t find(uint64_t key) const { return db_find_i64(code.value, scope, table_name.value, key); }

  bool get(uint64_t key, Row& row) const {
    const int32_t it = find(key);
    if (it < 0) return false;
    load(it, row);
    return true;
  }

  static void load(int32_t it, Row& row) {
    const int32_t len = db_get_i64(it, nullptr, 0);
    char* buffer = static_cast<char*>(alloc(uint32_t(len) + 1));
    db_get_i64(it, buffer, uint32_t(len));
    reader r{buffer, buffer + len};
    row.read(r);
  }

  // The next free primary key: one past the last row's (0 for an empty table).
  uint64_t next_key() const {
    const int32_t end = db_end_i64(code.value, scope, table_name.value);
    if (end == -1) return 0;  // the table does not exist yet (-1 is no iterator at all)
    uint64_t last = 0;
    const int32_t it = db_previous_i64(end, &last);
    if (it < 0) return 0;
    check(last != ~uint64_t(0), "no primary key left in the table");
    return last + 1;
  }

  static writer pack(const Row& row) {
    writer w(row.packed_size());
    row.write(w);
    return w;
  }

  // Stores a new row (the primary key must be free), naming the RAM payer.
  void insert(const Row& row, name payer) const {
    const writer w = pack(row);
    db_store_i64(scope, table_name.value, payer.value, row.primary_key(), w.data, w.size);
    if constexpr (Row::has_secondary) {
      const uint64_t secondary = row.secondary_key();
      db_idx64_store(scope, index_table(table_name, 0), payer.value, row.primary_key(),
                     &secondary);
    }
  }

  // Rewrites an existing row in place (same primary key), naming the RAM payer.
  void update(int32_t it, const Row& row, name payer) const {
    const writer w = pack(row);
    db_update_i64(it, payer.value, w.data, w.size);
    if constexpr (Row::has_secondary) {
      uint64_t old_secondary = 0;
      const int32_t sit = db_idx64_find_primary(code.value, scope, index_table(table_name, 0),
                                                &old_secondary, row.primary_key());
      const uint64_t secondary = row.secondary_key();
      if (sit >= 0 && old_secondary != secondary) db_idx64_update(sit, payer.value, &secondary);
    }
  }

  void erase(int32_t it, uint64_t primary) const {
    if constexpr (Row::has_secondary) {
      uint64_t secondary = 0;
      const int32_t sit = db_idx64_find_primary(code.value, scope, index_table(table_name, 0),
                                                &secondary, primary);
      if (sit >= 0) db_idx64_remove(sit);
    }
    db_remove_i64(it);
  }

  // Visits the rows whose secondary key equals `secondary`, in primary key order, until the
  // visitor returns true; returns the primary key it stopped at through `found`.
  template <typename Visitor>
  bool find_secondary(uint64_t secondary, Visitor visit, uint64_t& found) const {
    const uint64_t idx = index_table(table_name, 0);
    const int32_t end = db_idx64_end(code.value, scope, idx);
    uint64_t key = secondary;
    uint64_t primary = 0;
    int32_t sit = db_idx64_lowerbound(code.value, scope, idx, &key, &primary);
    while (sit >= 0 && sit != end && key == secondary) {
      if (visit(primary)) {
        found = primary;
        return true;
      }
      sit = db_idx64_next(sit, &primary);
      if (sit < 0) break;
      // Re-read the secondary key of the row the iterator moved to.
      db_idx64_find_primary(code.value, scope, idx, &key, primary);
    }
    return false;
  }
};

// ---------------------------------------------------------------- inline actions
struct permission_level {
  name actor;
  name permission;
};

// Sends an inline action: account, name, authorizations, then the data with its length.
inline void send_action(name account, name action, const permission_level* auths,
                        uint32_t auth_count, const writer& data) {
  writer w(8 + 8 + 5 + auth_count * 16 + 5 + data.size);
  w.nm(account);
  w.nm(action);
  w.varuint32(auth_count);
  for (uint32_t i = 0; i < auth_count; ++i) {
    w.nm(auths[i].actor);
    w.nm(auths[i].permission);
  }
  w.varuint32(data.size);
  w.put(data.data, data.size);
  send_inline(w.data, w.size);
}

}  // namespace cj
