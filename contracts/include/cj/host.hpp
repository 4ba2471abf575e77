// Host functions of Antelope (Leap 4.x) that the contracts import from module "env".
// Each name and signature must match nodeos's whitelist exactly; contracts/build.py checks the
// undefined symbols of every wasm against contracts/build.py:HOST_FUNCTIONS.
#pragma once

#include <stdint.h>

#define CJ_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

extern "C" {
// Assertions and output.
CJ_IMPORT(eosio_assert) void eosio_assert(uint32_t test, const char* msg);
CJ_IMPORT(eosio_assert_message)
void eosio_assert_message(uint32_t test, const char* msg, uint32_t len);
CJ_IMPORT(prints_l) void prints_l(const char* text, uint32_t len);

// Action context.
CJ_IMPORT(read_action_data) uint32_t read_action_data(void* buffer, uint32_t len);
CJ_IMPORT(action_data_size) uint32_t action_data_size();
CJ_IMPORT(require_auth) void require_auth(uint64_t account);
CJ_IMPORT(has_auth) uint32_t has_auth(uint64_t account);
CJ_IMPORT(is_account) uint32_t is_account(uint64_t account);
CJ_IMPORT(current_receiver) uint64_t current_receiver();
// The account whose contract sent the running inline action; 0 for a transaction's own action.
CJ_IMPORT(get_sender) uint64_t get_sender();
// The pending block's time in microseconds since the Unix epoch.
CJ_IMPORT(current_time) uint64_t current_time();
CJ_IMPORT(send_inline) void send_inline(const char* packed_action, uint32_t len);

// Memory: host memcpy traps on overlapping ranges, so the contracts only use memmove.
CJ_IMPORT(memmove) void* cj_host_memmove(void* dest, const void* src, uint32_t len);
CJ_IMPORT(memset) void* cj_host_memset(void* dest, int value, uint32_t len);

// Primary i64 index.
CJ_IMPORT(db_store_i64)
int32_t db_store_i64(uint64_t scope, uint64_t table, uint64_t payer, uint64_t id,
                     const void* data, uint32_t len);
CJ_IMPORT(db_update_i64)
void db_update_i64(int32_t iterator, uint64_t payer, const void* data, uint32_t len);
CJ_IMPORT(db_remove_i64) void db_remove_i64(int32_t iterator);
CJ_IMPORT(db_get_i64) int32_t db_get_i64(int32_t iterator, void* data, uint32_t len);
CJ_IMPORT(db_next_i64) int32_t db_next_i64(int32_t iterator, uint64_t* primary);
CJ_IMPORT(db_previous_i64) int32_t db_previous_i64(int32_t iterator, uint64_t* primary);
CJ_IMPORT(db_find_i64)
int32_t db_find_i64(uint64_t code, uint64_t scope, uint64_t table, uint64_t id);
CJ_IMPORT(db_lowerbound_i64)
int32_t db_lowerbound_i64(uint64_t code, uint64_t scope, uint64_t table, uint64_t id);
CJ_IMPORT(db_end_i64) int32_t db_end_i64(uint64_t code, uint64_t scope, uint64_t table);

// Secondary uint64 index.
CJ_IMPORT(db_idx64_store)
int32_t db_idx64_store(uint64_t scope, uint64_t table, uint64_t payer, uint64_t id,
                       const uint64_t* secondary);
CJ_IMPORT(db_idx64_update)
void db_idx64_update(int32_t iterator, uint64_t payer, const uint64_t* secondary);
CJ_IMPORT(db_idx64_remove) void db_idx64_remove(int32_t iterator);
CJ_IMPORT(db_idx64_next) int32_t db_idx64_next(int32_t iterator, uint64_t* primary);
CJ_IMPORT(db_idx64_find_primary)
int32_t db_idx64_find_primary(uint64_t code, uint64_t scope, uint64_t table,
                              uint64_t* secondary, uint64_t primary);
CJ_IMPORT(db_idx64_lowerbound)
int32_t db_idx64_lowerbound(uint64_t code, uint64_t scope, uint64_t table,
                            uint64_t* secondary, uint64_t* primary);
CJ_IMPORT(db_idx64_end)
int32_t db_idx64_end(uint64_t code, uint64_t scope, uint64_t table);
}
