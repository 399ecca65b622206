/**
 * The Store on Redis (ioredis): what several daemons share, so a user, a session, a variable or a
 * buffered change written through one node is seen by every other node and survives restarts.
 *
 * Redis layout. `P` is the key prefix, `observerio:` unless the `keyPrefix` option says otherwise
 * (tests use it to isolate themselves); the variables hash never takes a prefix because the original
 * daemon and its tools read it by that exact name.
 *
 *   <apiKey>:vs                  hash    fields `<name>:type` and `<name>:value` for each variable,
 *                                        exactly as the original daemon wrote them; new fields are only
 *                                        ever added with HSET, never deleted and recreated, so a small
 *                                        hash keeps them in first-seen order (`HKEYS` gives
 *                                        testing1:type, testing1:value, testing2:type, ...).
 *   P varorder:{<apiKey>:vs}     zset    variable name → first-seen sequence (0, 1, 2, ...). Redis stops
 *                                        keeping hash fields in insertion order once a hash outgrows its
 *                                        listpack encoding (by default more than 256 variables, or any
 *                                        value over 64 bytes), so first-seen order is kept here. A hash
 *                                        the original daemon wrote is indexed in its field order by the
 *                                        first setVars that finds this zset empty.
 *   P user:<emailKey(email)>     hash    email (as registered), apiKey, passwordHash
 *                                        (`scrypt$N$r$p$salt$hash`, never the password), createdAt (ms).
 *   P apikey:<apiKey>            string  emailKey(email): the email lowercased, Unicode NFC.
 *   P session:<token>            string  JSON {apiKey, email, expiresAt}, with a PX expiry at expiresAt.
 *   P outbox:{<apiKey>:vs}       hash    variable name → JSON {type, value} waiting for a device.
 *   P login:<sha256(emailKey)>   hash    failed sign-ins (login-limiter.ts, script LOGIN): `f` failure times,
 *                                        `i` start times of attempts in flight (ms, space-separated, oldest
 *                                        first), `l` locked until (ms, Redis TIME); PEXPIRE at the moment
 *                                        nothing in it counts any more. Hashed: fixed size, no email in keys.
 *   P outbox-order:{<apiKey>:vs} zset    variable name → push sequence; a replaced variable gets a new,
 *                                        higher sequence (moves to the end), and past `outboxMaxPerKey`
 *                                        names the lowest sequences are dropped (ZPOPMIN).
 *
 * DESIGN.md §8 data (store-contract.ts). Every key of API key K carries the hash tag `{K:vs}`, so all
 * of them hash to the slot of `K:vs` itself and every script and MULTI below is single-slot (Redis
 * Cluster ready). `K:vs` keeps its layout and meaning: the latest value any device reported.
 *
 *   P devices:{K:vs}             hash    deviceId → JSON {lastAddress, generated} (touchDevice).
 *   P labels:{K:vs}              hash    deviceId → JSON object of labels, replaced whole (setLabels).
 *   P seen:{K:vs}                zset    deviceId → last seen (ms); the key's devices are its members.
 *                                        ZADD GT, so a late write never moves it back.
 *   P presence:{K:vs}            zset    deviceId → presence expiry (ms); online = score > now. Heartbeats
 *                                        ZADD GT; markOffline ZREMs; a dead node's devices lapse by themselves.
 *   P reported:{K:vs}:<deviceId> hash    variable name → `<place>\0<type>\0<value>`, place 0, 1, 2, … its
 *                                        first-seen order (a big hash keeps no field order), and field
 *                                        `\0v` the list's version, new at every write (WRITE_REPORTED): a
 *                                        reader holding that version's list parsed reads nothing more, and
 *                                        a write sends only what changed since it (a device reporting one
 *                                        value of a thousand sends that one). No name or type holds a
 *                                        control character (isVarName, isVarType), so neither collides.
 *                                        A string here is the earlier layout (JSON [{name, type, value}]),
 *                                        read as such and replaced by the next write.
 *   P sent:{K:vs}:<deviceId>     hash    name → JSON {name, type, value}: what the device was last sent.
 *   P overrides:{K:vs}           hash    sha256(overrideKey) → JSON {n, o: Override}; a fixed-size field
 *                                        whatever the target, `n` the override's place (applyOps order).
 *   P strategies:{K:vs}          hash    name → JSON {n, s: {name, vars, version, updatedAt, updatedBy}}.
 *   P state:{K:vs}               string  the state version, INCR by every commit.
 *   P history:{K:vs}             stream  entry id → field `e`, the entry's JSON without id and with
 *                                        delivered 0; ids `<ms>-<seq>` chosen by COMMIT (the entry's `at`,
 *                                        or just after the last id when that is later); trimmed by MINID
 *                                        (age) and MAXLEN (count); XREVRANGE pages it newest first.
 *   P delivered:{K:vs}           hash    entry id → devices reached (stream entries cannot change);
 *                                        fields go with their entries when those are pruned.
 *
 * Values are read with HVALS/HMGET/ZSCORE, never HGETALL into an object, so no device id or variable
 * name (`__proto__`) ever becomes an object key. Per-device keys are deleted with the device record.
 *
 * Every write that touches more than one key runs as one Lua script (or a MULTI of one slot), so it is
 * atomic against other daemons and costs one round trip. `commit` reads the state at the caller's
 * version, computes the new values in TypeScript (history.ts applyOps, variables-common.ts) and hands
 * them to COMMIT, which writes them only if the version is still the one read.
 *
 * Redis Cluster: a script's keys must share a hash slot. The tag `{<apiKey>:vs}` hashes like the
 * untagged `<apiKey>:vs` (API keys are [A-Za-z0-9], never braces), so every key above but users, API
 * keys and sessions lives in that key's slot; those three are read and written one key at a time.
 * Keys written before the tags existed (`P varorder:<apiKey>`, `P outbox:<apiKey>`,
 * `P outbox-order:<apiKey>`) are renamed once, at the first start on a plain Redis
 * (src/redis/migrate-keys.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { autoPipelining, createRedisClient, redactRedisUrl, type RedisClient } from '../redis/connect.js';
import { migrateUntaggedKeys } from '../redis/migrate-keys.js';
import { pino, type Logger } from 'pino';
import type { StoreConfig } from '../config.js';
import { ObserverioError } from '../errors.js';
import { z } from 'zod';
import type { BackendHealth, Session, User, Var } from '../model.js';
import { checkHistoryBounds, type HistoryBounds, type HistoryDraft, type HistoryEntry } from '../variables/history.js';
import type { Labels } from '../variables/labels.js';
import { positionOf, withOverrideOps } from '../variables/override-list.js';
import { overrideKey, type Override } from '../variables/overrides.js';
import type { Op } from '../variables/strategies.js';
import type { CommitExpect, CommitManyOptions, CommitManyResult, CommitResult, DeviceRecord, StrategyRecord, VariablesStore } from '../variables/store-contract.js';
import { EARLIER_STATES } from '../variables/store-contract.js';
import { LOGIN_MAX_KEPT_FAILURES_OVER, type LoginOutcome, type LoginRule } from './login-limiter.js';
import { emailKey, hashPassword, newApiKey, newToken, verifyAgainstDummy, verifyPassword } from './passwords.js';
import type { Store } from './store.js';
import {
  applyCommit,
  byLastSeen,
  checkExpect,
  checkLimit,
  checkTtl,
  compareHistoryIds,
  formatHistoryId,
  parseBefore,
  parseHistoryId,
  plainDraft,
  plainLabels,
  plainOp,
  plainVar,
  reportedChanges,
  toEntry,
  uniqueVars,
} from './variables-common.js';
import { entrySchema, labelsSchema, overrideSchema, strategyRecordSchema, varSchema } from './variables-schema.js';

export interface RedisStoreOptions {
  url: string;
  logger?: Logger;
  /** Prefix of every key except `<apiKey>:vs`; default `observerio:`. */
  keyPrefix?: string;
}

const HEALTH_TIMEOUT_MS = 1000;
const CONNECT_TIMEOUT_MS = 5000;

interface LuaScript {
  lua: string;
  sha: string;
}

function script(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * KEYS: user hash. ARGV: email, apiKey, passwordHash, createdAt. → 1 created, 0 email taken. One key:
 * the user (by email) and its API key record live in different slots on a cluster, so createUser
 * reserves the API key first, on its own, and releases it if the email turns out to be taken.
 */
const CREATE_USER = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'email', ARGV[1], 'apiKey', ARGV[2], 'passwordHash', ARGV[3], 'createdAt', ARGV[4])
return 1
`);

/**
 * KEYS: login hash. ARGV: op (begin|fail|succeed|abandon), maxFailures, windowMs, baseDelayMs,
 * maxDelayMs, attemptTimeoutMs, failures kept past the limit. → begin: ms to wait, or -1 to go ahead;
 * others -1. login-limiter.ts's LoginLimiter step for step, on Redis's clock so every node agrees.
 */
const LOGIN = script(`
local op = ARGV[1]
if op == 'succeed' then
  redis.call('DEL', KEYS[1])
  return -1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxF, win, base, maxD, att, keep = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local function since(s, horizon)
  local out = {}
  if s then
    for x in string.gmatch(s, '%d+') do
      local v = tonumber(x)
      if v > horizon then out[#out + 1] = v end
    end
  end
  return out
end
local rec = redis.call('HMGET', KEYS[1], 'f', 'l', 'i')
if op == 'abandon' and not rec[3] then return -1 end
local failures = since(rec[1], now - win)
local locked = tonumber(rec[2]) or 0
local inflight = since(rec[3], now - att)
local answer = -1
if op == 'begin' then
  if locked > now then
    answer = locked - now
  elseif #failures + #inflight >= maxF and #inflight > 0 then
    answer = math.min(base, win)
  else
    inflight[#inflight + 1] = now
  end
elseif op == 'fail' then
  table.remove(inflight, 1)
  failures[#failures + 1] = now
  if #failures > maxF + keep then table.remove(failures, 1) end
  local over = #failures - maxF
  if over >= 0 then locked = now + math.min(maxD, base * 2 ^ math.min(over, 30)) end
elseif op == 'abandon' then
  table.remove(inflight, 1)
else
  return redis.error_reply('unknown login op')
end
if #failures == 0 and #inflight == 0 and locked <= now then
  redis.call('DEL', KEYS[1])
  return answer
end
local function join(list)
  local parts = {}
  for k, v in ipairs(list) do parts[k] = string.format('%d', v) end
  return table.concat(parts, ' ')
end
redis.call('HSET', KEYS[1], 'f', join(failures), 'l', string.format('%d', locked), 'i', join(inflight))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(win, att, locked - now)))
return answer
`);

/** KEYS: <apiKey>:vs, varorder. ARGV: name, type, value, name, type, value, ... */
const SET_VARS = script(`
local n = redis.call('ZCARD', KEYS[2])
if n == 0 then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, -5) == ':type' then
      redis.call('ZADD', KEYS[2], 'NX', n, string.sub(field, 1, -6))
      n = n + 1
    end
  end
end
for i = 1, #ARGV, 3 do
  local name = ARGV[i]
  redis.call('HSET', KEYS[1], name .. ':type', ARGV[i + 1], name .. ':value', ARGV[i + 2])
  if redis.call('ZADD', KEYS[2], 'NX', n, name) == 1 then n = n + 1 end
end
return n
`);

/**
 * KEYS: <apiKey>:vs, varorder. ARGV: name → hash fields removed. The order is renumbered 0..n-1 after a
 * removal, because SET_VARS takes ZCARD as the next sequence: a gap would give two names one score.
 */
const DELETE_VAR = script(`
local removed = redis.call('HDEL', KEYS[1], ARGV[1] .. ':type', ARGV[1] .. ':value')
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  for i, name in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do redis.call('ZADD', KEYS[2], i - 1, name) end
end
return removed
`);

/** KEYS: outbox hash, outbox-order zset. ARGV: max, then name, json, name, json, ... → names waiting. */
const OUTBOX_PUSH = script(`
local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local seq = 0
if top[2] then seq = tonumber(top[2]) end
for i = 2, #ARGV, 2 do
  seq = seq + 1
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], seq, ARGV[i])
end
local len = redis.call('ZCARD', KEYS[2])
local over = len - tonumber(ARGV[1])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for j = 1, #popped, 2 do redis.call('HDEL', KEYS[1], popped[j]) end
  len = len - over
end
return len
`);

/** KEYS: outbox hash, outbox-order zset. → name, json, name, json, ... oldest first; both keys deleted. */
const OUTBOX_TAKE = script(`
local names = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for _, name in ipairs(names) do
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGET', KEYS[1], name) or ''
end
redis.call('DEL', KEYS[1], KEYS[2])
return out
`);

// DESIGN.md §8 scripts (store-contract.ts). Every key they touch carries the hash tag {<apiKey>:vs},
// so each runs in one slot, on Redis Cluster too.

/**
 * Lua: drops history entries older than `cutoff` (by their id's time), then the oldest past `maxn`,
 * with their delivered counts; returns how many. XRANGE before XTRIM only to learn the ids: normally
 * none or one per commit. `firstms` and `len` (the first entry's time and the length, or nil to ask
 * the stream) spare a commit that knows them from its XINFO the XRANGE that finds nothing old and
 * the XLEN: two of the few commands a commit runs per batch. The delivered counts of the entries
 * dropped go in one HDEL per 1,000 (a commit past maxEntries dropped one per change, each its own HDEL).
 */
const TRIM_LUA = `
local function forget(delivered, entries)
  local ids = {}
  for _, e in ipairs(entries) do ids[#ids + 1] = e[1] end
  for i = 1, #ids, 1000 do redis.call('HDEL', delivered, unpack(ids, i, math.min(i + 999, #ids))) end
end
local function trim(stream, delivered, cutoff, maxn, firstms, len)
  local n = 0
  if cutoff > 0 and (firstms == nil or firstms < cutoff) then
    local old = redis.call('XRANGE', stream, '-', string.format('%.0f', cutoff - 1))
    if #old > 0 then
      forget(delivered, old)
      redis.call('XTRIM', stream, 'MINID', string.format('%.0f', cutoff))
      n = #old
      if len ~= nil then len = len - #old end
    end
  end
  if len == nil then len = redis.call('XLEN', stream) end
  if len > maxn then
    local over = redis.call('XRANGE', stream, '-', '+', 'COUNT', len - maxn)
    forget(delivered, over)
    redis.call('XTRIM', stream, 'MAXLEN', maxn)
    n = n + #over
  end
  return n
end
`;

/**
 * KEYS: state, overrides, strategies. ARGV: the state version the caller holds parsed (-1: none).
 * → {version} when it is still that one, else {version, override JSONs, strategy JSONs}: one
 * round trip, one moment, and nothing to transfer or parse while the state is unchanged. Only COMMIT
 * writes the two hashes, and it INCRs the version in the same step, so an equal version is the same state.
 */
const READ_STATE = script(`
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v == tonumber(ARGV[1]) then return {v} end
return {v, redis.call('HVALS', KEYS[2]), redis.call('HVALS', KEYS[3])}
`);

/**
 * The one script that writes a key's variables state (commitMany; commit is one of it). KEYS: state,
 * overrides, strategies, history, delivered, chain. ARGV: expected state version, maxEntries,
 * maxAgeMs, N, then N (at, entry JSON) in order, then for overrides and for strategies a count and
 * that many (field, new JSON or '' to delete) pairs of the state after the last commit, computed in
 * TypeScript from the state read at the expected version (so applyOps stays the one definition of
 * what ops mean), then the token of the commit this one is chained on ('' for none) and its own.
 * Writes only if the version still matches and, when chained, the last commit written was that one
 * (a version alone cannot tell: another node's commits may have moved it to the same number). Each
 * entry's id is its `at` unless the last id ever given is later (variables-common.ts
 * nextHistoryId); the version moves by N. → {0, current version} or {1, new version, entries
 * pruned, id, id, ...}.
 */
const COMMIT = script(`${TRIM_LUA}
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v ~= tonumber(ARGV[1]) then return {0, v} end
local after = ARGV[#ARGV - 1]
if after ~= '' and redis.call('GET', KEYS[6]) ~= after then return {0, v} end
redis.call('SET', KEYS[6], ARGV[#ARGV])
local n = tonumber(ARGV[4])
local i = 5 + 2 * n
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local c = tonumber(ARGV[i])
  i = i + 1
  -- The writes of a hash in one HDEL and one HSET (per 1,000 fields), not a command per field: a
  -- field named twice first writes what came before it, so the last write of a field still wins.
  local sets, dels, named = {}, {}, {}
  local function flush()
    for j = 1, #dels, 1000 do redis.call('HDEL', key, unpack(dels, j, math.min(j + 999, #dels))) end
    for j = 1, #sets, 2000 do redis.call('HSET', key, unpack(sets, j, math.min(j + 1999, #sets))) end
    sets, dels, named = {}, {}, {}
  end
  for _ = 1, c do
    local f = ARGV[i]
    if named[f] then flush() end
    named[f] = true
    if ARGV[i + 1] == '' then
      dels[#dels + 1] = f
    else
      sets[#sets + 1] = f
      sets[#sets + 1] = ARGV[i + 1]
    end
    i = i + 2
  end
  flush()
end
local lm, ls = -1, -1
local len, firstms = 0, nil
if redis.call('EXISTS', KEYS[4]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[4])
  for j = 1, #info, 2 do
    local f = info[j]
    if f == 'last-generated-id' then
      local a, b = string.match(info[j + 1], '^(%d+)%-(%d+)$')
      lm, ls = tonumber(a), tonumber(b)
    elseif f == 'length' then
      len = tonumber(info[j + 1])
    elseif f == 'first-entry' and info[j + 1] then
      firstms = tonumber(string.match(info[j + 1][1], '^(%d+)%-'))
    end
  end
end
local ids = {}
for e = 0, n - 1 do
  local ms = tonumber(ARGV[5 + 2 * e])
  local seq = 0
  if lm >= ms then
    ms = lm
    seq = ls + 1
  end
  if ms == 0 and seq == 0 then seq = 1 end
  ids[#ids + 1] = redis.call('XADD', KEYS[4], string.format('%.0f-%.0f', ms, seq), 'e', ARGV[6 + 2 * e])
  if firstms == nil then firstms = ms end
  lm, ls = ms, seq
end
local dropped = trim(KEYS[4], KEYS[5], lm - tonumber(ARGV[3]), tonumber(ARGV[2]), firstms, len + n)
local nv = redis.call('INCRBY', KEYS[1], n)
local out = {1, nv, dropped}
for _, id in ipairs(ids) do out[#out + 1] = id end
return out
`);

/** KEYS: history, delivered. ARGV: cutoff (ms), maxEntries. → entries dropped. */
const PRUNE = script(`${TRIM_LUA}
return trim(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
`);

/** Last-sent texts whose parse is kept (sentVar): a few MB at most. */
const MAX_SENT_PARSED = 50_000;

/**
 * KEYS: history, delivered. ARGV: the lowest and highest id, then id, count, id, count, …: each count
 * set only for an entry still there, so pruned ids leave nothing behind. The ids of one call are a
 * batch's, next to each other in the stream: one XRANGE over their span (a page of 512 entries, a
 * second if the span is longer: changes of the batch with nothing delivered and another node's
 * commits may sit between) finds them all, where an XRANGE per id was a command per change; an id
 * those pages leave out is looked up alone, as before. The counts go in one HSET.
 */
const SET_DELIVERED_MANY = script(`
local wanted, left = {}, 0
for i = 3, #ARGV, 2 do
  if not wanted[ARGV[i]] then
    wanted[ARGV[i]] = false
    left = left + 1
  end
end
local from = ARGV[1]
for _ = 1, 2 do
  local page = redis.call('XRANGE', KEYS[1], from, ARGV[2], 'COUNT', 512)
  for _, e in ipairs(page) do
    if wanted[e[1]] == false then
      wanted[e[1]] = true
      left = left - 1
    end
  end
  if left == 0 or #page < 512 then break end
  from = '(' .. page[#page][1]
end
local sets = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if wanted[id] or #redis.call('XRANGE', KEYS[1], id, id) > 0 then
    sets[#sets + 1] = id
    sets[#sets + 1] = ARGV[i + 1]
  end
end
-- One HSET per 1,000 counts (an id named twice: its later count, as one HSET after the other left it).
for j = 1, #sets, 2000 do redis.call('HSET', KEYS[2], unpack(sets, j, math.min(j + 1999, #sets))) end
return 1
`);

/**
 * KEYS: seen, presence, labels. ARGV: the oldest last seen remembered, now. → id, labels JSON ('' for
 * none), id, labels, … of the devices listDevices lists (seen since then, or online at `now` and
 * seen at all), in one step: the two ZRANGEBYSCOREs, the ZSCOREs of online devices seen before then,
 * and the labels, HMGET in chunks of 1,000 (under Lua's stack limit for unpack).
 */
const DEVICE_VIEWS = script(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local have = {}
for _, id in ipairs(ids) do have[id] = true end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf')) do
  if not have[id] and redis.call('ZSCORE', KEYS[1], id) then
    have[id] = true
    ids[#ids + 1] = id
  end
end
local out = {}
for i = 1, #ids, 1000 do
  local last = math.min(i + 999, #ids)
  local labels = redis.call('HMGET', KEYS[3], unpack(ids, i, last))
  for j = i, last do
    out[#out + 1] = ids[j]
    out[#out + 1] = labels[j - i + 1] or ''
  end
end
return out
`);

/**
 * KEYS: seen, presence, devices, labels, then per device its reported and sent keys. ARGV: before,
 * now, device ids. Forgets each device still not seen since `before` and not online at `now`
 * (checked again here: it may have come back since the candidates were listed). → how many.
 */
const FORGET_DEVICES = script(`
local n = 0
local before = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
for i = 3, #ARGV do
  local id = ARGV[i]
  local s = redis.call('ZSCORE', KEYS[1], id)
  if s and tonumber(s) < before then
    local p = redis.call('ZSCORE', KEYS[2], id)
    if not p or tonumber(p) <= now then
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
      local k = 5 + (i - 3) * 2
      redis.call('DEL', KEYS[k], KEYS[k + 1])
      n = n + 1
    end
  end
end
return n
`);

/** Commands carry at most this many devices each (a heartbeat of a big node, a long list). */
const CHUNK = 1000;
/** API keys whose §8 key names are held made (RedisStore.vsKeys). */
const VS_KEYS_CACHED = 10_000;
type VsKeys = ReturnType<RedisStore['makeVsKeys']>;
/** Devices one FORGET_DEVICES script takes (it declares two keys per device). */
const FORGET_CHUNK = 200;

/**
 * The overrides hash field: fixed-size, whatever the target (a 10,000-device list would be a long field).
 * Hash fields of override keys hashed lately: a burst changes the same variables again and again,
 * and a sha256 per touched override per commit showed in the profile (1% of the daemon at 2,000
 * changes/s). Bounded in entries and in key length (a target of many device ids is hashed each
 * time); emptied when full (the next commits hash again).
 */
const overrideFields = new Map<string, string>();
const MAX_OVERRIDE_FIELDS = 20_000;
const MAX_CACHED_KEY_CHARS = 512;

function overrideField(key: string): string {
  let field = overrideFields.get(key);
  if (field === undefined) {
    field = createHash('sha256').update(key).digest('hex');
    if (key.length > MAX_CACHED_KEY_CHARS) return field;
    if (overrideFields.size >= MAX_OVERRIDE_FIELDS) overrideFields.clear();
    overrideFields.set(key, field);
  }
  return field;
}

const ok = <T>(r: { success: true; data: T } | { success: false }): T | null => (r.success ? r.data : null);
// Schemas built once: zod v4 compiles each on its first parse, so a schema built per call cost ~25 µs
// a record (issue 14's profiles: most of a dashboard change's CPU, and 8% of the daemon's while a
// list of 1,500 devices was read once a second per key).
const deviceSchema = z.object({ lastAddress: z.string().nullable(), generated: z.boolean() });
const varListSchema = z.array(varSchema);
const placedOverrideSchema = z.object({ n: z.number(), o: overrideSchema });
const placedStrategySchema = z.object({ n: z.number(), s: strategyRecordSchema });
const parseDevice = (v: unknown) => ok(deviceSchema.safeParse(v));
const parseLabels = (v: unknown) => ok(labelsSchema.safeParse(v));
const parseVar = (v: unknown) => ok(varSchema.safeParse(v));
const parseVarList = (v: unknown) => ok(varListSchema.safeParse(v));
const parsePlacedOverride = (v: unknown) => ok(placedOverrideSchema.safeParse(v));
const parsePlacedStrategy = (v: unknown) => ok(placedStrategySchema.safeParse(v));

/** The state with each override's and strategy's place (`n`), as COMMIT's places need it. */
interface RawState {
  /**
   * In place order (`n` ascending), each override deep-frozen, handed out as it is and never changed
   * (readonly by type; not frozen: V8 copies and scans a frozen array several times slower).
   */
  overrides: readonly Override[];
  /** Each override's place, index for index with `overrides`. */
  places: readonly number[];
  strategies: { n: number; s: StrategyRecord }[];
  stateVersion: number;
  /** Each record as parsed, by the JSON text it was read or written as: a read after a change parses only what changed. */
  parsed?: Map<string, { n: number; o: Override } | { n: number; s: StrategyRecord }>;
}

/** Reported lists RedisStore.reportedCache keeps: at most about this many characters of names, types and values in all. */
const REPORTED_CACHE_MAX_CHARS = 8 << 20;

/** The reported hash's version field (see the layout above). */
const REPORTED_VERSION = '\u0000v';

/**
 * KEYS: a device's reported hash. ARGV: the version the writer's list is of ('' to replace the list
 * whole), the new version, then name, field value pairs. → 1 written; 0 the hash is not at that
 * version (another writer came between, or it is still the earlier string), and nothing is written.
 */
const WRITE_REPORTED = script(`
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
elseif redis.call('TYPE', KEYS[1]).ok ~= 'hash' or redis.call('HGET', KEYS[1], '\\0v') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], '\\0v', ARGV[2])
for i = 3, #ARGV, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, #ARGV)))
end
return 1
`);

/**
 * KEYS: a device's reported hash. ARGV: the version of the caller's copy ('' for none). → {1}: that
 * copy is current; {2, HGETALL}; {3, the earlier layout's JSON string}; {0}: no reported values.
 */
const READ_REPORTED = script(`
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'hash' then
  if redis.call('HGET', KEYS[1], '\\0v') == ARGV[1] then return {1} end
  return {2, redis.call('HGETALL', KEYS[1])}
elseif t == 'string' then
  return {3, redis.call('GET', KEYS[1])}
end
return {0}
`);

/**
 * KEYS: devices hash, seen zset, presence zset. ARGV: seen score, presence score, then a device id
 * and its record per device. Records the devices, their last seen and presence at once, as the MULTI
 * of the three did (a reader never finds a device seen whose record or presence is still missing),
 * in one command: in a connect storm every conn_up turn of every key ran it, and ioredis spent more on
 * building and unwrapping a MULTI of five commands than Redis on running them. At most CHUNK devices
 * a call (2,000 values per unpack, under Lua's stack limit of 8,000).
 */
const TOUCH_DEVICES = script(`
local fields, seen, presence = {}, {}, {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  fields[#fields + 1] = id
  fields[#fields + 1] = ARGV[i + 1]
  seen[#seen + 1] = ARGV[1]
  seen[#seen + 1] = id
  presence[#presence + 1] = ARGV[2]
  presence[#presence + 1] = id
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], 'GT', unpack(seen))
redis.call('ZADD', KEYS[3], 'GT', unpack(presence))
return 1
`);

/**
 * A heartbeat of a key's devices here (KEYS seen, presence; ARGV at, until, device ids): each id once,
 * where a MULTI of two ZADDs carried it twice, each with its score, so the client encoded four
 * arguments per device per beat. The ZADDs go 1,000 devices at a time (Lua's unpack has a limit), all
 * in one script: atomic, as the MULTI was.
 */
const HEARTBEAT = script(`
local n, i = #ARGV, 3
while i <= n do
  local last = math.min(n, i + 999)
  local seen, presence = {}, {}
  for j = i, last do
    seen[#seen + 1] = ARGV[1]
    seen[#seen + 1] = ARGV[j]
    presence[#presence + 1] = ARGV[2]
    presence[#presence + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], 'GT', unpack(seen))
  redis.call('ZADD', KEYS[2], 'GT', unpack(presence))
  i = last + 1
end
return 1
`);

/**
 * A reported list as this store last read or wrote it, at `version`; `index` gives each name's place.
 * Its values are frozen and handed out as they are; the array itself never leaves (callers get copies).
 */
interface ReportedCopy {
  version: string;
  vars: readonly Var[];
  index: Map<string, number>;
  chars: number;
}

/** The hash field value of a variable at place `i` of a reported list. */
function reportedField(i: number, v: Var): string {
  return `${i}\u0000${v.type}\u0000${v.value}`;
}

/** What a variable counts for against REPORTED_CACHE_MAX_CHARS: its strings and a little for the object around them. */
const varChars = (v: Var): number => v.name.length + v.type.length + v.value.length + 16;

function reportedChars(vars: readonly Var[]): number {
  let n = 0;
  for (const v of vars) n += varChars(v);
  return n;
}

/**
 * The HSET pairs that turn the list `before` into `after` (reportedChanges: values changed, names
 * appended), with the list `after` made of `before`'s own objects where nothing changed; null
 * otherwise (the list is written whole). It costs a pass over the lists plus the change.
 */
function reportedDelta(before: ReportedCopy, after: readonly Var[]): { pairs: string[]; vars: Var[]; chars: number } | null {
  const places = reportedChanges(before.vars, after, (name) => before.index.has(name));
  if (!places) return null;
  const pairs: string[] = [];
  const vars: Var[] = before.vars.slice();
  let chars = before.chars;
  for (const i of places) {
    const b = before.vars[i];
    const v = Object.freeze(plainVar(after[i] as Var));
    chars += varChars(v) - (b === undefined ? 0 : varChars(b));
    vars[i] = v;
    pairs.push(v.name, reportedField(i, v));
  }
  return { pairs, vars, chars };
}

/** A reported hash's HGETALL (field, value, …) as its list in place order; null for a field that does not parse. */
function parseReportedHash(flat: readonly string[]): { version: string; vars: Var[] } | null {
  let version: string | null = null;
  const placed: Array<Var | undefined> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i] as string;
    const raw = flat[i + 1] as string;
    if (name === REPORTED_VERSION) {
      version = raw;
      continue;
    }
    const a = raw.indexOf('\u0000');
    const b = a < 0 ? -1 : raw.indexOf('\u0000', a + 1);
    const place = Number(raw.slice(0, a));
    if (b < 0 || !Number.isInteger(place) || place < 0 || place >= flat.length || placed[place] !== undefined) return null;
    placed[place] = Object.freeze({ name, type: raw.slice(a + 1, b), value: raw.slice(b + 1) });
  }
  if (version === null) return null;
  // Places are 0…n-1 as written; any hole (a field removed by hand) just closes up.
  return { version, vars: placed.filter((v): v is Var => v !== undefined) };
}

/** API keys whose parsed state one store keeps; past it the oldest is dropped (it is only a cache). */
const STATE_CACHE_KEYS = 1000;

/** Handed out to every caller as it is, so nobody may change it (the memory store's objects are frozen too). */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}
const parseEntry = (id: string, v: unknown) => ok(entrySchema.safeParse(isRecord(v) ? { ...v, id } : v));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Where COMMIT puts each strategy record after some operations, as applyOps' Map orders them: a kept
 * name keeps its place and a new (or deleted and put again) one goes last; then the fields to write
 * from the strategies after them ('' deletes). (Overrides are placed by commitMany itself, per key
 * touched: a key's few strategies are cheap to map, its thousand overrides are not.)
 */
class StrategyPlacement {
  private readonly sPlace: Map<string, number>;
  private sTop: number;
  private readonly sTouched = new Set<string>();

  constructor(raw: RawState) {
    this.sPlace = new Map(raw.strategies.map((x) => [x.s.name, x.n]));
    this.sTop = Math.max(0, ...this.sPlace.values());
  }

  place(ops: readonly Op[]): void {
    for (const op of ops) {
      if (op.kind !== 'strategy.put' && op.kind !== 'strategy.delete') continue;
      const name = op.kind === 'strategy.put' ? op.strategy.name : op.name;
      this.sTouched.add(name);
      if (op.kind === 'strategy.delete') this.sPlace.delete(name);
      else if (!this.sPlace.has(name)) this.sPlace.set(name, ++this.sTop);
    }
  }

  /** COMMIT's strategy arguments, and the texts it writes (for the state cache). */
  writes(next: readonly StrategyRecord[]): { args: (string | number)[]; sWrites: Map<string, string> } {
    const nextS = new Map(next.map((st) => [st.name, st]));
    const args: (string | number)[] = [this.sTouched.size];
    const sWrites = new Map<string, string>();
    for (const name of this.sTouched) {
      const st = nextS.get(name);
      const json = st ? JSON.stringify({ n: this.sPlace.get(name), s: st }) : '';
      sWrites.set(name, json);
      args.push(name, json);
    }
    return { args, sWrites };
  }
}

/** An override key a commit touches: its record after the commit (null: none) and its place then. */
interface Touched {
  /** Where it was in the state committed on, or -1. */
  readonly was: number;
  o: Override | null;
  n: number | undefined;
  /** The JSON COMMIT writes ('' deletes). */
  json: string;
}

export class RedisStore implements Store, VariablesStore {
  readonly kind = 'redis' as const;
  private redis: RedisClient;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly where: string;
  /** Until start() succeeds a failed connection is final, so start() can report it; afterwards ioredis reconnects. */
  private started = false;
  /** Set once a start() has succeeded: later starts (worker restarts) keep retrying in the background. */
  private everStarted = false;
  /** Set by stop(): the next start() opens a new connection. */
  private closed = false;
  private lastError: string | undefined;
  /**
   * Each API key's state as last read or committed here, by version. Exact across nodes: READ_STATE
   * sends it again whenever the version moved (another node committed), and a commit at a stale
   * version fails in COMMIT whatever this says.
   */
  private readonly stateCache = new Map<string, RawState>();
  /**
   * Per key in stateCache, the states it held before its current one, newest first (EARLIER_STATES),
   * without their parse maps: lastState(key, version) for a delivery pass whose batch the next
   * commit has already replaced here.
   */
  private readonly earlierStates = new Map<string, RawState[]>();
  private readonly vsKeyCache = new Map<string, VsKeys>();
  /**
   * Per key, the version our commit on its way will leave (while one is): a read sent meanwhile runs
   * after it in Redis (one connection, in order) and its answer comes after the commit's, which puts
   * that state in the cache; so the read asks for the records only if Redis holds another version.
   */
  private readonly committing = new Map<string, number>();
  /**
   * Per key, this store's last commitMany that was sent (until a later call or a refusal before
   * sending replaces it): the state it leaves if Redis takes it, and its token, so a commit computed
   * from that state can leave before its answer (`chained`); COMMIT refuses it unless that one was the
   * last written.
   */
  private readonly lastCommit = new Map<string, { leaves: RawState; token: string }>();
  private readonly commitTokenPrefix = `${randomBytes(6).toString('base64url')}.`;
  private commitTokens = 0;
  /** Last-sent texts parsed lately (sentVar). */
  private readonly sentParsed = new Map<string, Var>();
  /**
   * Each device's reported list as last read or written here, at its version: a game reports
   * hundreds of variables and every change and report reads the list again, mostly unchanged. Never
   * stale: READ_REPORTED sends the list again when the version moved, and a write against an older
   * version is refused by WRITE_REPORTED and done whole.
   */
  private readonly reportedCache = new Map<string, ReportedCopy>();
  private reportedChars = 0;
  private readonly reportedVersionPrefix = `${randomBytes(6).toString('base64url')}.`;
  private reportedVersions = 0;

  private readonly key = {
    vars: (apiKey: string) => `${apiKey}:vs`,
    varOrder: (apiKey: string) => `${this.prefix}varorder:{${apiKey}:vs}`,
    user: (email: string) => `${this.prefix}user:${emailKey(email)}`,
    apiKey: (apiKey: string) => `${this.prefix}apikey:${apiKey}`,
    session: (token: string) => `${this.prefix}session:${token}`,
    outbox: (apiKey: string) => `${this.prefix}outbox:{${apiKey}:vs}`,
    outboxOrder: (apiKey: string) => `${this.prefix}outbox-order:{${apiKey}:vs}`,
    login: (key: string) => `${this.prefix}login:${createHash('sha256').update(key).digest('hex')}`,
  };

  constructor(
    private readonly cfg: StoreConfig,
    private readonly opts: RedisStoreOptions,
  ) {
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.prefix = opts.keyPrefix ?? 'observerio:';
    this.where = redactRedisUrl(opts.url);
    this.redis = this.connection();
  }

  /** A fresh, not yet connected client: one per incarnation of the store's worker. */
  private connection(): RedisClient {
    // A Redis or, for a redis-cluster:// URL, a Cluster with the same options on every node connection.
    const redis = createRedisClient(this.opts.url, {
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Named so an operator (and the supervision tests) can tell this connection in CLIENT LIST.
      connectionName: 'observerio:store',
      // Fail a command after a couple of reconnects instead of queueing it for a minute: callers
      // (a TCP line, an HTTP request) would rather get an error they can report.
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => (this.started ? Math.min(times * 200, 2000) : null),
      // Every command and MULTI issued in one tick leaves in one write: a write to a socket costs
      // more than most of these commands do in Redis, and a busy tick issues many (one setVars per
      // key, an outbox check per verified socket, several MULTIs per verify). Order is kept. On a
      // plain Redis coalesceWrites does it alone; ioredis's auto-pipelining only on a cluster
      // (AUTO_PIPELINING: its Pipelines outlived the scavenges, one per device line).
      enableAutoPipelining: autoPipelining(this.opts.url),
      coalesceWrites: true,
    });
    // Without a listener ioredis's 'error' would be an unhandled EventEmitter error and kill the process.
    redis.on('error', (err: Error) => {
      if (err.message === this.lastError) return;
      this.lastError = err.message;
      this.log.warn({ err, redis: this.where }, 'redis connection error');
    });
    redis.on('ready', () => {
      if (this.lastError !== undefined) this.log.info({ redis: this.where }, 'redis connection restored');
      this.lastError = undefined;
    });
    return redis;
  }

  /**
   * Connects. After a stop() (the store's worker restarting) it opens a new connection. The first
   * start fails fast when Redis is unreachable, so a wrong URL is reported at boot; a later one
   * still rejects, but leaves ioredis reconnecting in the background, so a restart during an outage
   * recovers by itself once Redis is back.
   */
  async start(): Promise<void> {
    if (this.closed) {
      this.redis = this.connection();
      this.closed = false;
    }
    if (this.redis.status === 'ready') return;
    this.started = this.everStarted;
    try {
      await this.redis.connect();
    } catch (err) {
      if (!this.everStarted) this.redis.disconnect();
      throw new Error(`cannot connect to Redis at ${this.where}: ${this.lastError ?? (err as Error).message}`);
    }
    if (!this.everStarted) {
      try {
        await migrateUntaggedKeys(this.redis, this.prefix, this.log);
      } catch (err) {
        this.redis.disconnect();
        throw new Error(`cannot rename the untagged keys at ${this.where}: ${(err as Error).message}`, { cause: err });
      }
    }
    this.started = true;
    this.everStarted = true;
  }

  /** Closes this incarnation's connection (commands in flight get their replies first). */
  async stop(): Promise<void> {
    this.started = false;
    this.closed = true;
    const redis = this.redis;
    if (redis.status === 'end') return;
    if (redis.status !== 'ready') {
      redis.disconnect();
      return;
    }
    await withTimeout(redis.quit(), CONNECT_TIMEOUT_MS, 'redis QUIT').catch(() => redis.disconnect());
  }

  async health(): Promise<BackendHealth> {
    if (this.redis.status !== 'ready') {
      return { ok: false, kind: 'redis', detail: `${this.where}: connection ${this.redis.status}${this.lastError ? ` (${this.lastError})` : ''}` };
    }
    const t0 = performance.now();
    try {
      await withTimeout(this.redis.ping(), HEALTH_TIMEOUT_MS, 'PING');
      return { ok: true, kind: 'redis', detail: `${this.where}: PING ${(performance.now() - t0).toFixed(1)} ms` };
    } catch (err) {
      return { ok: false, kind: 'redis', detail: `${this.where}: ${(err as Error).message}` };
    }
  }

  /** EVALSHA with a fallback to EVAL the first time a server has not seen the script. */
  private async run(s: LuaScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(s.lua, keys.length, ...keys, ...args);
    }
  }

  async createUser(email: string, password: string): Promise<User> {
    const userKey = this.key.user(email);
    // Saves the hashing work for a taken email; the script below is what makes it race-free.
    if ((await this.redis.exists(userKey)) === 1) throw new ObserverioError('email_taken');
    const passwordHash = await hashPassword(password);
    const createdAt = Date.now();
    for (let attempt = 0; attempt < 5; attempt++) {
      const apiKey = newApiKey();
      // Reserved before the user exists, so a user never points at an API key that does not verify; a
      // crash between the two leaves only a reservation nobody knows the key of.
      if ((await this.redis.set(this.key.apiKey(apiKey), emailKey(email), 'NX')) === null) continue; // a 71-bit key collided; draw again
      const res = await this.run(CREATE_USER, [userKey], [email, apiKey, passwordHash, createdAt]);
      if (res === 1) return { email, apiKey, createdAt };
      await this.redis.del(this.key.apiKey(apiKey));
      throw new ObserverioError('email_taken');
    }
    throw new ObserverioError('internal', 'could not allocate a unique API key');
  }

  async authenticate(email: string, password: string): Promise<User | null> {
    const h = await this.redis.hgetall(this.key.user(email));
    const { apiKey, passwordHash, createdAt } = h;
    if (apiKey === undefined || passwordHash === undefined) return verifyAgainstDummy(password).then(() => null);
    if (!(await verifyPassword(password, passwordHash))) return null;
    return { email: h.email ?? email, apiKey, createdAt: Number(createdAt ?? 0) };
  }

  async verifyApiKey(apiKey: string): Promise<boolean> {
    return (await this.redis.exists(this.key.apiKey(apiKey))) === 1;
  }

  async createSession(user: User, ttlMs: number): Promise<Session> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError(`session ttl must be a positive number of ms, got ${ttlMs}`);
    const ttl = Math.ceil(ttlMs);
    const session: Session = { token: newToken(), apiKey: user.apiKey, email: user.email, expiresAt: Date.now() + ttl };
    const { token: _token, ...stored } = session;
    await this.redis.set(this.key.session(session.token), JSON.stringify(stored), 'PX', ttl);
    return session;
  }

  async getSession(token: string): Promise<Session | null> {
    const raw = await this.redis.get(this.key.session(token));
    if (raw === null) return null;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      v = undefined;
    }
    if (!isRecord(v) || typeof v.apiKey !== 'string' || typeof v.email !== 'string' || typeof v.expiresAt !== 'number') {
      this.log.warn({ key: this.key.session('<token>') }, 'malformed session record ignored');
      return null;
    }
    // Redis expires the key itself; this guards the last milliseconds and clock skew between nodes.
    if (v.expiresAt <= Date.now()) return null;
    return { token, apiKey: v.apiKey, email: v.email, expiresAt: v.expiresAt };
  }

  async deleteSession(token: string): Promise<void> {
    await this.redis.del(this.key.session(token));
  }

  async loginBegin(key: string, rule: LoginRule): Promise<number | null> {
    const wait = await this.login(key, 'begin', rule);
    return wait < 0 ? null : wait;
  }

  async loginEnd(key: string, outcome: LoginOutcome, rule: LoginRule): Promise<void> {
    await this.login(key, outcome, rule);
  }

  private async login(key: string, op: 'begin' | LoginOutcome, rule: LoginRule): Promise<number> {
    const args = [op, rule.maxFailures, rule.windowMs, rule.baseDelayMs, rule.maxDelayMs, rule.attemptTimeoutMs, LOGIN_MAX_KEPT_FAILURES_OVER];
    return Number(await this.run(LOGIN, [this.key.login(key)], args));
  }

  async setVars(apiKey: string, vars: readonly Var[]): Promise<void> {
    if (vars.length === 0) return;
    const args: string[] = [];
    for (const v of vars) args.push(v.name, v.type, v.value);
    await this.run(SET_VARS, [this.key.vars(apiKey), this.key.varOrder(apiKey)], args);
  }

  async getVars(apiKey: string): Promise<Var[]> {
    const res = await this.redis.multi().hgetall(this.key.vars(apiKey)).zrange(this.key.varOrder(apiKey), 0, -1).exec();
    const [hash, order] = (res ?? []).map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    // Every field ends in ':type' or ':value', so none looks like an array index and the object ioredis
    // builds keeps Redis's field order.
    const fields = isRecord(hash) ? (hash as Record<string, string>) : {};
    const byName = new Map<string, { type: string; value: string }>();
    for (const [field, value] of Object.entries(fields)) {
      let name: string;
      let part: 'type' | 'value';
      if (field.endsWith(':type')) [name, part] = [field.slice(0, -5), 'type'];
      else if (field.endsWith(':value')) [name, part] = [field.slice(0, -6), 'value'];
      else continue;
      let v = byName.get(name);
      if (!v) byName.set(name, (v = { type: '', value: '' }));
      v[part] = value;
    }
    const ordered = new Set(Array.isArray(order) ? (order as string[]) : []);
    const out: Var[] = [];
    // Names without an order entry come from a hash only the original daemon has written to so far.
    for (const [name, v] of byName) if (!ordered.has(name)) out.push({ name, ...v });
    for (const name of ordered) {
      const v = byName.get(name);
      if (v) out.push({ name, ...v });
    }
    return out;
  }

  async getVarTypes(apiKey: string, names: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (names.length === 0) return out;
    const fields = await this.redis.hmget(this.key.vars(apiKey), ...names.flatMap((n) => [`${n}:type`, `${n}:value`]));
    names.forEach((name, i) => {
      const type = fields[2 * i];
      // getVars lists a variable with either field (type '' without one).
      if (type !== null && type !== undefined) out.set(name, type);
      else if (fields[2 * i + 1] !== null && fields[2 * i + 1] !== undefined) out.set(name, '');
    });
    return out;
  }

  async deleteVar(apiKey: string, name: string): Promise<boolean> {
    return Number(await this.run(DELETE_VAR, [this.key.vars(apiKey), this.key.varOrder(apiKey)], [name])) > 0;
  }

  async outboxPush(apiKey: string, vars: readonly Var[]): Promise<number> {
    const args: (string | number)[] = [this.cfg.outboxMaxPerKey];
    for (const v of vars) args.push(v.name, JSON.stringify({ type: v.type, value: v.value }));
    return Number(await this.run(OUTBOX_PUSH, [this.key.outbox(apiKey), this.key.outboxOrder(apiKey)], args));
  }

  async outboxTake(apiKey: string): Promise<Var[]> {
    const flat = await this.run(OUTBOX_TAKE, [this.key.outbox(apiKey), this.key.outboxOrder(apiKey)], []);
    if (!Array.isArray(flat)) return [];
    const out: Var[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = String(flat[i]);
      try {
        const v: unknown = JSON.parse(String(flat[i + 1]));
        if (isRecord(v) && typeof v.type === 'string' && typeof v.value === 'string') {
          out.push({ name, type: v.type, value: v.value });
          continue;
        }
      } catch {
        // reported below
      }
      this.log.warn({ apiKey, name }, 'malformed outbox entry dropped');
    }
    return out;
  }

  async outboxLength(apiKey: string): Promise<number> {
    return this.redis.zcard(this.key.outboxOrder(apiKey));
  }

  // DESIGN.md §8 (store-contract.ts) ------------------------------------------------------------------

  /** Every §8 key of one API key: all share the slot of `<apiKey>:vs` through the hash tag. */
  /**
   * A key's §8 key names, made once per API key (every socket's verify and heartbeat asks for them:
   * nine strings and two closures per call); a bounded map, dropped whole when full.
   */
  private vsKeys(apiKey: string): VsKeys {
    let k = this.vsKeyCache.get(apiKey);
    if (k) return k;
    if (this.vsKeyCache.size >= VS_KEYS_CACHED) this.vsKeyCache.clear();
    k = this.makeVsKeys(apiKey);
    this.vsKeyCache.set(apiKey, k);
    return k;
  }

  private makeVsKeys(apiKey: string) {
    const tag = `{${apiKey}:vs}`;
    const p = this.prefix;
    return {
      devices: `${p}devices:${tag}`,
      labels: `${p}labels:${tag}`,
      seen: `${p}seen:${tag}`,
      presence: `${p}presence:${tag}`,
      reported: (deviceId: string) => `${p}reported:${tag}:${deviceId}`,
      sent: (deviceId: string) => `${p}sent:${tag}:${deviceId}`,
      overrides: `${p}overrides:${tag}`,
      strategies: `${p}strategies:${tag}`,
      state: `${p}state:${tag}`,
      history: `${p}history:${tag}`,
      delivered: `${p}delivered:${tag}`,
      /** The token of the last COMMIT (commitMany's chain check). */
      chain: `${p}chain:${tag}`,
    };
  }

  /** Runs a MULTI and gives its replies, throwing the first error. */
  private async exec(m: ReturnType<RedisClient['multi']>): Promise<unknown[]> {
    const res = (await m.exec()) ?? [];
    return res.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }

  /**
   * A last-sent field parsed, from the texts parsed lately when it is one of them: every delivery pass
   * reads each device's whole last-sent (a thousand fields for a thousand overrides), nearly all of
   * them unchanged since the pass before, and parsing them again was a tenth of a change's cost.
   * Frozen, as they are shared; the cache starts over when full.
   */
  private sentVar(raw: string, apiKey: string): Var | null {
    const known = this.sentParsed.get(raw);
    if (known) return known;
    const v = this.parseJson(raw, parseVar, 'last-sent', apiKey);
    if (!v) return null;
    if (this.sentParsed.size >= MAX_SENT_PARSED) this.sentParsed.clear();
    const frozen = Object.freeze(v);
    this.sentParsed.set(raw, frozen);
    return frozen;
  }

  private parseJson<T>(raw: string | null | undefined, parse: (v: unknown) => T | null, what: string, apiKey: string): T | null {
    if (raw === null || raw === undefined) return null;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      v = undefined;
    }
    const out = v === undefined ? null : parse(v);
    if (out === null) this.log.warn({ apiKey, what }, 'malformed §8 record ignored');
    return out;
  }

  async touchDevice(apiKey: string, device: { deviceId: string; address: string | null; generated: boolean }, at: number, ttlMs: number): Promise<void> {
    await this.touchDevices(apiKey, [device], at, ttlMs);
  }

  async touchDevices(apiKey: string, devices: ReadonlyArray<{ deviceId: string; address: string | null; generated: boolean }>, at: number, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    if (devices.length === 0) return;
    // Each device once, its later entry winning, as that many touchDevice calls would leave it.
    const latest = new Map(devices.map((d) => [d.deviceId, d]));
    const ids = [...latest.keys()];
    const k = this.vsKeys(apiKey);
    // Every socket of a connect storm passes here: each score made a string once, the arguments
    // pushed into one array per call rather than a small array per device flattened.
    const seenAt = String(at);
    const until = String(at + ttl);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const end = Math.min(ids.length, i + CHUNK);
      const args: string[] = [seenAt, until];
      for (let j = i; j < end; j++) {
        const id = ids[j] as string;
        const d = latest.get(id) as { address: string | null; generated: boolean };
        args.push(id, JSON.stringify({ lastAddress: d.address, generated: d.generated }));
      }
      calls.push(this.run(TOUCH_DEVICES, [k.devices, k.seen, k.presence], args));
    }
    await Promise.all(calls);
  }

  async heartbeat(apiKey: string, deviceIds: readonly string[], at: number, ttlMs: number): Promise<void> {
    const ttl = checkTtl(ttlMs);
    if (deviceIds.length === 0) return;
    const k = this.vsKeys(apiKey);
    // Every idle device's every heartbeat: the scores made strings once, each id passed once (HEARTBEAT).
    await this.run(HEARTBEAT, [k.seen, k.presence], [String(at), String(at + ttl)].concat(deviceIds));
  }

  async setLabels(apiKey: string, deviceId: string, labels: Labels): Promise<void> {
    await this.redis.hset(this.vsKeys(apiKey).labels, deviceId, JSON.stringify(plainLabels(labels)));
  }

  async markOffline(apiKey: string, deviceId: string, at: number): Promise<void> {
    const k = this.vsKeys(apiKey);
    const m = this.redis.multi();
    m.zrem(k.presence, deviceId);
    m.zadd(k.seen, 'XX', 'GT', at, deviceId);
    await this.exec(m);
  }

  /** The records of these devices (with their last seen), in the order given. */
  private async deviceRecords(apiKey: string, seen: ReadonlyArray<readonly [string, number]>, now: number): Promise<DeviceRecord[]> {
    const k = this.vsKeys(apiKey);
    const out: DeviceRecord[] = [];
    for (let i = 0; i < seen.length; i += CHUNK) {
      const part = seen.slice(i, i + CHUNK);
      const ids = part.map(([id]) => id);
      const [devices, labels, presence] = (await this.exec(this.redis.multi().hmget(k.devices, ...ids).hmget(k.labels, ...ids).zmscore(k.presence, ...ids))) as (string | null)[][];
      part.forEach(([deviceId, lastSeen], j) => {
        const d = this.parseJson(devices?.[j], parseDevice, 'device', apiKey);
        const l = this.parseJson(labels?.[j], parseLabels, 'labels', apiKey);
        const p = presence?.[j];
        out.push({ deviceId, labels: l ?? {}, online: p !== null && p !== undefined && Number(p) > now, lastSeen, lastAddress: d?.lastAddress ?? null, generated: d?.generated ?? false });
      });
    }
    return out;
  }

  async listDevices(apiKey: string, rememberMs: number, now: number): Promise<DeviceRecord[]> {
    const k = this.vsKeys(apiKey);
    const [recent, online] = (await this.exec(
      this.redis
        .multi()
        .zrangebyscore(k.seen, now - rememberMs, '+inf', 'WITHSCORES')
        .zrangebyscore(k.presence, `(${now}`, '+inf'),
    )) as string[][];
    const seen = new Map<string, number>();
    for (let i = 0; i + 1 < (recent?.length ?? 0); i += 2) seen.set(recent?.[i] as string, Number(recent?.[i + 1]));
    const older = (online ?? []).filter((id) => !seen.has(id));
    for (let i = 0; i < older.length; i += CHUNK) {
      const ids = older.slice(i, i + CHUNK);
      const scores = await this.redis.zmscore(k.seen, ...ids);
      ids.forEach((id, j) => {
        const s = scores[j];
        if (s !== null && s !== undefined) seen.set(id, Number(s));
      });
    }
    return (await this.deviceRecords(apiKey, [...seen], now)).sort(byLastSeen);
  }

  async listOfflineDevices(apiKey: string, rememberMs: number, now: number): Promise<Array<{ deviceId: string; labels: Labels }>> {
    const k = this.vsKeys(apiKey);
    // Ids only (no scores, no records): the online ones are dropped before anything is parsed.
    const [recent, online] = (await this.exec(this.redis.multi().zrangebyscore(k.seen, now - rememberMs, '+inf').zrangebyscore(k.presence, `(${now}`, '+inf'))) as string[][];
    const live = new Set(online ?? []);
    const offline = (recent ?? []).filter((id) => !live.has(id));
    const out: Array<{ deviceId: string; labels: Labels }> = [];
    for (let i = 0; i < offline.length; i += CHUNK) {
      const ids = offline.slice(i, i + CHUNK);
      const labels = await this.redis.hmget(k.labels, ...ids);
      ids.forEach((deviceId, j) => out.push({ deviceId, labels: this.parseJson(labels[j], parseLabels, 'labels', apiKey) ?? {} }));
    }
    return out;
  }

  async listDeviceViews(apiKey: string, rememberMs: number, now: number): Promise<Array<{ deviceId: string; labels: Labels }>> {
    const k = this.vsKeys(apiKey);
    const flat = (await this.run(DEVICE_VIEWS, [k.seen, k.presence, k.labels], [now - rememberMs, now])) as string[];
    const out: Array<{ deviceId: string; labels: Labels }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const raw = flat[i + 1] as string;
      out.push({ deviceId: flat[i] as string, labels: raw === '' ? {} : (this.parseJson(raw, parseLabels, 'labels', apiKey) ?? {}) });
    }
    return out;
  }

  async getDevice(apiKey: string, deviceId: string, now: number): Promise<DeviceRecord | null> {
    const s = await this.redis.zscore(this.vsKeys(apiKey).seen, deviceId);
    if (s === null) return null;
    return (await this.deviceRecords(apiKey, [[deviceId, Number(s)]], now))[0] ?? null;
  }

  async forgetDevices(apiKey: string, before: number): Promise<number> {
    const k = this.vsKeys(apiKey);
    const candidates = await this.redis.zrangebyscore(k.seen, '-inf', `(${before}`);
    const now = Date.now();
    let n = 0;
    for (let i = 0; i < candidates.length; i += FORGET_CHUNK) {
      const ids = candidates.slice(i, i + FORGET_CHUNK);
      const keys = [k.seen, k.presence, k.devices, k.labels, ...ids.flatMap((id) => [k.reported(id), k.sent(id)])];
      n += Number(await this.run(FORGET_DEVICES, keys, [before, now, ...ids]));
    }
    return n;
  }

  async setReported(apiKey: string, deviceId: string, vars: readonly Var[]): Promise<void> {
    const key = this.vsKeys(apiKey).reported(deviceId);
    const id = `${apiKey}\u0000${deviceId}`;
    const copy = this.reportedCache.get(id);
    if (vars.length === 0) {
      this.rememberReported(id, null);
      return void (await this.redis.del(key));
    }
    const version = this.nextReportedVersion();
    // The list this store holds with values changed and names appended (a report turn's fold): only
    // those go, if Redis still holds that list (WRITE_REPORTED checks its version).
    const delta = copy ? reportedDelta(copy, vars) : null;
    if (copy && delta) {
      if (Number(await this.run(WRITE_REPORTED, [key], [copy.version, version, ...delta.pairs])) === 1) {
        // The old copy's index grows into the new one's: only a write against that copy's version
        // uses it, and no other can succeed now that the version moved.
        const index = copy.index;
        for (let i = copy.vars.length; i < delta.vars.length; i++) index.set((delta.vars[i] as Var).name, i);
        return this.rememberReported(id, { version, vars: delta.vars, index, chars: delta.chars });
      }
    }
    // Replaced whole: a list of another shape, none known here, or another writer came between.
    const list = uniqueVars(vars).map((v) => Object.freeze(v));
    const pairs: string[] = [];
    list.forEach((v, i) => pairs.push(v.name, reportedField(i, v)));
    await this.run(WRITE_REPORTED, [key], ['', version, ...pairs]);
    this.rememberReported(id, { version, vars: list, index: new Map(list.map((v, i) => [v.name, i])), chars: reportedChars(list) });
  }

  async getReported(apiKey: string, deviceId: string): Promise<Var[]> {
    const id = `${apiKey}\u0000${deviceId}`;
    const copy = this.reportedCache.get(id);
    return this.reportedOf(apiKey, id, copy, await this.run(READ_REPORTED, [this.vsKeys(apiKey).reported(deviceId)], [copy?.version ?? '']));
  }

  /** A fresh version for a reported list: never one this or another node gave before (a random prefix per store). */
  private nextReportedVersion(): string {
    this.reportedVersions += 1;
    return `${this.reportedVersionPrefix}${this.reportedVersions.toString(36)}`;
  }

  /** READ_REPORTED's answer as the list; `copy` is what the read was asked against. */
  private reportedOf(apiKey: string, id: string, copy: ReportedCopy | undefined, res: unknown): Var[] {
    const [kind, body] = Array.isArray(res) ? (res as [number, unknown]) : [0, null];
    if (kind === 1 && copy) {
      // Used again: the last to be dropped when the cache is full.
      if (this.reportedCache.get(id) === copy) this.rememberReported(id, copy);
      return [...copy.vars];
    }
    if (kind === 2 && Array.isArray(body)) {
      const parsed = parseReportedHash(body as string[]);
      if (!parsed) {
        this.log.warn({ apiKey, what: 'reported' }, 'stored reported values do not parse; read as none');
        this.rememberReported(id, null);
        return [];
      }
      this.rememberReported(id, { version: parsed.version, vars: parsed.vars, index: new Map(parsed.vars.map((v, i) => [v.name, i])), chars: reportedChars(parsed.vars) });
      return [...parsed.vars];
    }
    this.rememberReported(id, null);
    // The earlier layout: read as it is, replaced whole by the next write.
    if (kind === 3 && typeof body === 'string') return this.parseJson(body, parseVarList, 'reported', apiKey) ?? [];
    return [];
  }

  /** Keeps `copy` as the device's reported list (null: forgets it), the most recent last; the oldest go past the bound. */
  private rememberReported(id: string, copy: ReportedCopy | null): void {
    const hit = this.reportedCache.get(id);
    if (hit) {
      this.reportedCache.delete(id);
      this.reportedChars -= hit.chars;
    }
    if (copy === null) return;
    this.reportedCache.set(id, copy);
    this.reportedChars += copy.chars;
    while (this.reportedChars > REPORTED_CACHE_MAX_CHARS) {
      const oldest = this.reportedCache.entries().next();
      if (oldest.done) break;
      this.reportedCache.delete(oldest.value[0]);
      this.reportedChars -= oldest.value[1].chars;
    }
  }

  async setLastSent(apiKey: string, deviceId: string, vars: readonly Var[], replace: boolean): Promise<void> {
    await (replace ? this.replaceLastSent(apiKey, [{ deviceId, vars }]) : this.addLastSent(apiKey, [{ deviceId, vars }]));
  }

  async forgetLastSent(apiKey: string, deviceId: string, names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    await this.redis.hdel(this.vsKeys(apiKey).sent(deviceId), ...names);
  }

  async getLastSent(apiKey: string, deviceId: string): Promise<Map<string, Var>> {
    // HVALS, not HGETALL: the values carry their names, and no field name ever becomes an object key.
    const out = new Map<string, Var>();
    for (const raw of await this.redis.hvals(this.vsKeys(apiKey).sent(deviceId))) {
      const v = this.parseJson(raw, parseVar, 'last-sent', apiKey);
      if (v) out.set(v.name, v);
    }
    return out;
  }

  async getSentAndReported(apiKey: string, deviceIds: readonly string[], names?: readonly string[]): Promise<Array<{ lastSent: Map<string, Var>; reported: Var[] }>> {
    const k = this.vsKeys(apiKey);
    const out: Array<{ lastSent: Map<string, Var>; reported: Var[] }> = [];
    // Only these variables' fields (a field is the variable's name): a delivery pass that knows what
    // can have changed reads a few, not a thousand, per device.
    const wanted = names ? new Set(names) : null;
    const fields = wanted ? [...wanted] : null;
    for (let i = 0; i < deviceIds.length; i += CHUNK) {
      const ids = deviceIds.slice(i, i + CHUNK);
      const m = this.redis.multi();
      for (const id of ids) {
        if (!fields) m.hvals(k.sent(id));
        else if (fields.length > 0) m.hmget(k.sent(id), ...fields);
        else m.echo('');
      }
      // Beside the MULTI, in the same round trip (auto-pipelined): a script in a MULTI cannot fall back
      // from NOSCRIPT. A device's list known here at its version costs a few bytes.
      const copies = ids.map((id) => this.reportedCache.get(`${apiKey}\u0000${id}`));
      const [res, reads] = await Promise.all([this.exec(m), Promise.all(ids.map((id, j) => this.run(READ_REPORTED, [k.reported(id)], [copies[j]?.version ?? ''])))]);
      for (let j = 0; j < ids.length; j++) {
        const lastSent = new Map<string, Var>();
        const raws = res[j];
        for (const raw of Array.isArray(raws) ? (raws as Array<string | null>) : []) {
          if (raw === null) continue;
          const v = this.sentVar(raw, apiKey);
          // A field holds its variable's record: one under another name is not this variable's.
          if (v && (!wanted || wanted.has(v.name))) lastSent.set(v.name, v);
        }
        out.push({ lastSent, reported: this.reportedOf(apiKey, `${apiKey}\u0000${ids[j] as string}`, copies[j], reads[j]) });
      }
    }
    return out;
  }

  async addLastSent(apiKey: string, sends: ReadonlyArray<{ deviceId: string; vars: readonly Var[] }>): Promise<void> {
    const k = this.vsKeys(apiKey);
    const todo = sends.filter((x) => x.vars.length > 0);
    for (let i = 0; i < todo.length; i += CHUNK) {
      const m = this.redis.multi();
      for (const x of todo.slice(i, i + CHUNK)) m.hset(k.sent(x.deviceId), ...uniqueVars(x.vars).flatMap((v) => [v.name, JSON.stringify(v)]));
      await this.exec(m);
    }
  }

  async replaceLastSent(apiKey: string, sends: ReadonlyArray<{ deviceId: string; vars: readonly Var[] }>): Promise<void> {
    const k = this.vsKeys(apiKey);
    // Each device once, its last entry winning, as that many replacements one after the other would
    // leave it; so one DEL of every key of a chunk can go first (a connect storm replaced each socket's
    // device with a DEL of its own: one command of the store per connection, the most called).
    const latest = new Map<string, readonly Var[]>();
    for (const x of sends) latest.set(x.deviceId, x.vars);
    const ids = [...latest.keys()];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const part = ids.slice(i, i + CHUNK);
      const keys = part.map((id) => k.sent(id));
      const fills: Array<[string, string[]]> = [];
      part.forEach((id, j) => {
        const list = uniqueVars(latest.get(id) as readonly Var[]);
        if (list.length === 0) return;
        const args: string[] = [];
        for (const v of list) args.push(v.name, JSON.stringify(v));
        fills.push([keys[j] as string, args]);
      });
      // Nothing to fill (a key with no override in effect, the common case): the DEL alone is atomic
      // and needs no MULTI around it. The keys share the key's hash tag: one slot on a cluster.
      if (fills.length === 0) {
        await this.redis.del(...keys);
        continue;
      }
      const m = this.redis.multi();
      m.del(...keys);
      for (const [key, args] of fills) m.hset(key, ...args);
      await this.exec(m);
    }
  }

  /** The state with each override's and strategy's place (`n`), one moment of it (READ_STATE), from the cache while unchanged. */
  private async readRaw(apiKey: string, whole = false): Promise<RawState> {
    const k = this.vsKeys(apiKey);
    const cached = this.stateCache.get(apiKey);
    // While a commit of ours is on its way, its version is the one this node will hold by the answer:
    // a read during a burst of changes then costs a version check, not every record (a thousand
    // overrides sent and parsed by the client per read was most of the reads' cost in the profile).
    const askFor = whole ? -1 : (this.committing.get(apiKey) ?? cached?.stateVersion ?? -1);
    const res = (await this.run(READ_STATE, [k.state, k.overrides, k.strategies], [askFor])) as [number, string[]?, string[]?];
    const stateVersion = Number(res[0]);
    if (res.length === 1) {
      const held = this.stateCache.get(apiKey);
      if (held && held.stateVersion === stateVersion) return held;
      // Our commit was refused after all (another node's moved the version to the one it would have
      // left) or the state it left was dropped from the cache: the records, then.
      return this.readRaw(apiKey, true);
    }
    // A read sent while a commit of ours was on its way finds that commit's version; its answer has come
    // first (one connection, in order) and is in the cache: the same version is the same state, so the
    // thousand records need no second look (the client actor reads overrides while batches commit).
    const now = this.stateCache.get(apiKey);
    if (now && now.stateVersion === stateVersion) return now;
    // Records whose text is unchanged since the last read here are the objects parsed then.
    const known = cached?.parsed;
    const parsed = new Map<string, { n: number; o: Override } | { n: number; s: StrategyRecord }>();
    const overrides: { n: number; o: Override }[] = [];
    for (const text of res[1] ?? []) {
      const x = (known?.get(text) as { n: number; o: Override } | undefined) ?? this.parseJson(text, parsePlacedOverride, 'override', apiKey);
      if (!x) continue;
      parsed.set(text, x);
      overrides.push(x);
    }
    const strategies: { n: number; s: StrategyRecord }[] = [];
    for (const text of res[2] ?? []) {
      const x = (known?.get(text) as { n: number; s: StrategyRecord } | undefined) ?? this.parseJson(text, parsePlacedStrategy, 'strategy', apiKey);
      if (!x) continue;
      parsed.set(text, x);
      strategies.push(x);
    }
    overrides.sort((a, b) => a.n - b.n);
    const raw: RawState = {
      overrides: overrides.map((x) => deepFreeze(x).o),
      places: overrides.map((x) => x.n),
      strategies: strategies.sort((a, b) => a.n - b.n),
      stateVersion,
      parsed,
    };
    // A read answered before a commit of ours whose answer came first must not replace the newer state.
    if (!cached || cached.stateVersion <= stateVersion) this.remember(apiKey, raw);
    return raw;
  }

  private remember(apiKey: string, raw: RawState): void {
    for (const x of raw.strategies) deepFreeze(x);
    const prev = this.stateCache.get(apiKey);
    if (prev && prev.stateVersion < raw.stateVersion) {
      const list = this.earlierStates.get(apiKey) ?? [];
      list.unshift({ overrides: prev.overrides, places: prev.places, strategies: prev.strategies, stateVersion: prev.stateVersion });
      if (list.length > EARLIER_STATES) list.length = EARLIER_STATES;
      this.earlierStates.set(apiKey, list);
    }
    this.stateCache.delete(apiKey);
    this.stateCache.set(apiKey, raw);
    if (this.stateCache.size > STATE_CACHE_KEYS) {
      const oldest = this.stateCache.keys().next();
      if (!oldest.done) {
        this.stateCache.delete(oldest.value);
        this.earlierStates.delete(oldest.value);
      }
    }
  }

  async readState(apiKey: string): Promise<{ overrides: readonly Override[]; strategies: StrategyRecord[]; stateVersion: number }> {
    const raw = await this.readRaw(apiKey);
    // The cached list itself (frozen): a copy per read was a pass over every override per change.
    return { overrides: raw.overrides, strategies: raw.strategies.map((x) => x.s), stateVersion: raw.stateVersion };
  }

  async lastState(apiKey: string, version?: number): Promise<{ overrides: readonly Override[]; strategies: StrategyRecord[]; stateVersion: number }> {
    const held = this.stateCache.get(apiKey);
    const earlier = held && version !== undefined && held.stateVersion > version ? this.earlierStates.get(apiKey)?.find((s) => s.stateVersion === version) : undefined;
    const raw = earlier ?? held ?? (await this.readRaw(apiKey));
    return { overrides: raw.overrides, strategies: raw.strategies.map((x) => x.s), stateVersion: raw.stateVersion };
  }

  async listOverrides(apiKey: string): Promise<Override[]> {
    return [...(await this.readRaw(apiKey)).overrides];
  }

  async listStrategies(apiKey: string): Promise<StrategyRecord[]> {
    return (await this.readState(apiKey)).strategies;
  }

  async getStrategy(apiKey: string, name: string): Promise<StrategyRecord | null> {
    return this.parseJson(await this.redis.hget(this.vsKeys(apiKey).strategies, name), parsePlacedStrategy, 'strategy', apiKey)?.s ?? null;
  }

  /** One commit, with its strategy check: commitMany of one (the one script that writes the state). */
  async commit(apiKey: string, ops: readonly Op[], draft: HistoryDraft, expect: CommitExpect, bounds: HistoryBounds, by: string): Promise<CommitResult> {
    checkHistoryBounds(bounds);
    // The caller computed the ops from the state at expect.stateVersion: held here, it needs no read
    // (COMMIT checks the version anyway); else read it, so a stale version fails as before.
    const cached = this.stateCache.get(apiKey);
    const raw = cached?.stateVersion === expect.stateVersion ? cached : await this.readRaw(apiKey);
    const failed = checkExpect(raw.stateVersion, raw.strategies.map((x) => x.s), expect);
    if (failed) return failed;
    const r = await this.commitMany(apiKey, [{ ops, draft, by }], raw.stateVersion, bounds);
    if (r.ok) return { ok: true, entry: r.entries[0] as HistoryEntry, stateVersion: r.stateVersion };
    // Another node committed between the read and the script: the caller re-reads and recomputes.
    if (!expect.strategy) return { ok: false, stateVersion: r.stateVersion };
    return { ok: false, stateVersion: r.stateVersion, strategyVersion: (await this.getStrategy(apiKey, expect.strategy.name))?.version ?? null };
  }

  async commitMany(apiKey: string, commits: ReadonlyArray<{ ops: readonly Op[]; draft: HistoryDraft; by: string }>, stateVersion: number, bounds: HistoryBounds, options: CommitManyOptions = {}): Promise<CommitManyResult> {
    checkHistoryBounds(bounds);
    let raw: RawState;
    let after = '';
    // This call is the key's last from here on: a chained one behind it follows it, not an earlier one.
    const last = this.lastCommit.get(apiKey);
    this.lastCommit.delete(apiKey);
    if (options.chained) {
      // Computed from the state our last commit leaves: from that state as computed when it was sent
      // (no read, nothing awaited: this one leaves right behind it), refused in COMMIT unless it was written.
      if (!last || last.leaves.stateVersion !== stateVersion) return { ok: false, stateVersion: this.stateCache.get(apiKey)?.stateVersion ?? 0 };
      raw = last.leaves;
      after = last.token;
    } else {
      const cached = this.stateCache.get(apiKey);
      raw = cached?.stateVersion === stateVersion ? cached : await this.readRaw(apiKey);
      if (raw.stateVersion !== stateVersion) return { ok: false, stateVersion: raw.stateVersion };
    }
    if (commits.length === 0) return { ok: true, entries: [], stateVersion };
    const plains = commits.map((c) => c.ops.map(plainOp));
    // Overrides: per key the commits touch, its record after the last of them and its place, as
    // applyOps orders them (a kept key keeps its place, a new or cleared-and-set-again one goes last),
    // looked up in the list's index: work in proportion to the operations, not to the key's overrides.
    const touched = new Map<string, Touched>();
    let top = Math.max(0, raw.places.at(-1) ?? 0);
    for (const ops of plains)
      for (const op of ops) {
        if (op.kind !== 'override.set' && op.kind !== 'override.clear') continue;
        const name = op.kind === 'override.set' ? op.override.name : op.name;
        const key = overrideKey(name, op.kind === 'override.set' ? op.override.target : op.target);
        let t = touched.get(key);
        if (!t) {
          const was = positionOf(raw.overrides, name, key);
          t = { was, o: was < 0 ? null : (raw.overrides[was] as Override), n: was < 0 ? undefined : raw.places[was], json: '' };
          touched.set(key, t);
        }
        if (op.kind === 'override.clear') {
          t.o = null;
          t.n = undefined;
        } else {
          t.o = op.override;
          t.n ??= ++top;
        }
      }
    // Strategies (a key has few): each commit's strategy records in turn, versions as applyCommit gives them.
    const placement = new StrategyPlacement(raw);
    let strategies = raw.strategies.map((x) => x.s);
    const entryArgs: (string | number)[] = [];
    const bodies: HistoryDraft[] = [];
    for (const [ci, c] of commits.entries()) {
      const plain = plains[ci] as Op[];
      const at = Math.max(0, Math.floor(c.draft.at));
      const sOps = plain.filter((op) => op.kind === 'strategy.put' || op.kind === 'strategy.delete');
      if (sOps.length > 0) {
        strategies = applyCommit({ overrides: [], strategies }, sOps, at, c.by).strategies;
        placement.place(sOps);
      }
      // The entry as stored: one text, and the plain copy a read of it would give.
      const text = JSON.stringify(c.draft);
      bodies.push(JSON.parse(text) as HistoryDraft);
      entryArgs.push(at, text);
    }
    const oArgs: (string | number)[] = [touched.size];
    for (const [key, t] of touched) {
      t.json = t.o ? JSON.stringify({ n: t.n, o: t.o }) : '';
      oArgs.push(overrideField(key), t.json);
    }
    const { args: sArgs, sWrites } = placement.writes(strategies);
    const k = this.vsKeys(apiKey);
    const leaves = stateVersion + commits.length;
    // The state it leaves, computed now (it does not depend on the answer): what a commit chained on
    // this one is computed from, and the cache once Redis has taken it.
    const left = this.committedRaw(apiKey, raw, touched, sWrites, leaves);
    const token = `${this.commitTokenPrefix}${(this.commitTokens += 1)}`;
    const mine = { leaves: left, token };
    this.lastCommit.set(apiKey, mine);
    if (this.lastCommit.size > STATE_CACHE_KEYS) {
      const oldest = this.lastCommit.keys().next();
      if (!oldest.done) this.lastCommit.delete(oldest.value);
    }
    this.committing.set(apiKey, leaves);
    let res: unknown[];
    try {
      res = (await this.run(COMMIT, [k.state, k.overrides, k.strategies, k.history, k.delivered, k.chain], [stateVersion, bounds.maxEntries, bounds.maxAgeMs, commits.length, ...entryArgs, ...oArgs, ...sArgs, after, token])) as unknown[];
    } catch (err) {
      if (this.lastCommit.get(apiKey) === mine) this.lastCommit.delete(apiKey);
      throw err;
    } finally {
      if (this.committing.get(apiKey) === leaves) this.committing.delete(apiKey);
    }
    if (Number(res[0]) !== 1) {
      if (this.lastCommit.get(apiKey) === mine) this.lastCommit.delete(apiKey);
      return { ok: false, stateVersion: Number(res[1]) };
    }
    const nv = Number(res[1]);
    if (nv === leaves) {
      const cached = this.stateCache.get(apiKey);
      if (!cached || cached.stateVersion <= nv) this.remember(apiKey, left);
    }
    return { ok: true, entries: bodies.map((b, i) => toEntry(String(res[3 + i]), b)), stateVersion: nv };
  }

  /**
   * The state after a commit: the records COMMIT writes ('' deleted), parsed as a read would parse
   * them, over the state before. The list is the one before with the written overrides replaced in
   * place, removed, or appended in place order (override-list.ts), its index made from the old one's.
   */
  private committedRaw(apiKey: string, raw: RawState, touched: ReadonlyMap<string, Touched>, sFields: ReadonlyMap<string, string>, stateVersion: number): RawState {
    // Shared with the state before (only this cache reads it): texts of replaced records stay until
    // the next read keeps only what it finds, or until there are too many of them.
    let parsed = raw.parsed;
    const clears: Op[] = [];
    const sets: Op[] = [];
    const appends: { n: number; op: Op }[] = [];
    const gone = new Set<number>();
    for (const t of touched.values()) {
      const p = t.json === '' ? null : this.parseJson(t.json, parsePlacedOverride, 'override', apiKey);
      // Frozen whether or not the parse cache is kept: `parsed?.set(…, deepFreeze(p))` skipped the
      // freeze once the cache had been dropped, and an unfrozen override in the list made every
      // client actor's WinnersCache compute the key's winners afresh on every call (issue 14).
      if (p) {
        deepFreeze(p);
        parsed?.set(t.json, p);
      }
      const was = t.was < 0 ? null : (raw.overrides[t.was] as Override);
      // Kept in its place: replaced there. Otherwise gone from its place, and (if written) last.
      if (p && was && raw.places[t.was] === p.n) sets.push({ kind: 'override.set', override: p.o });
      else {
        if (was) {
          clears.push({ kind: 'override.clear', name: was.name, target: was.target });
          gone.add(t.was);
        }
        if (p) appends.push({ n: p.n, op: { kind: 'override.set', override: p.o } });
      }
    }
    appends.sort((a, b) => a.n - b.n);
    const overrides = withOverrideOps(raw.overrides, [...clears, ...sets, ...appends.map((x) => x.op)]);
    let places = raw.places;
    if (gone.size > 0) places = places.filter((_, i) => !gone.has(i));
    if (appends.length > 0) places = [...places, ...appends.map((x) => x.n)];
    const strategies = raw.strategies.filter((x) => !sFields.has(x.s.name));
    for (const json of sFields.values()) {
      if (json === '') continue;
      const p = this.parseJson(json, parsePlacedStrategy, 'strategy', apiKey);
      if (p) {
        strategies.push(p);
        parsed?.set(json, p);
      }
    }
    if (parsed && parsed.size > 2 * (overrides.length + strategies.length) + 64) parsed = undefined;
    return { overrides, places, strategies: strategies.sort((a, b) => a.n - b.n), stateVersion, parsed };
  }

  async setDelivered(apiKey: string, entryId: string, delivered: number): Promise<void> {
    await this.setDeliveredMany(apiKey, [{ id: entryId, delivered }]);
  }

  async setDeliveredMany(apiKey: string, counts: ReadonlyArray<{ id: string; delivered: number }>): Promise<void> {
    const args: Array<string | number> = [];
    let low: { ms: number; seq: number } | null = null;
    let high: { ms: number; seq: number } | null = null;
    for (const c of counts) {
      const id = parseHistoryId(c.id);
      if (!id) continue;
      if (!low || compareHistoryIds(id, low) < 0) low = id;
      if (!high || compareHistoryIds(id, high) > 0) high = id;
      args.push(c.id, c.delivered);
    }
    if (!low || !high) return;
    const k = this.vsKeys(apiKey);
    await this.run(SET_DELIVERED_MANY, [k.history, k.delivered], [formatHistoryId(low), formatHistoryId(high), ...args]);
  }

  /** Stream entries as history entries, with their delivered counts. */
  private async entries(apiKey: string, raw: unknown): Promise<HistoryEntry[]> {
    const list = Array.isArray(raw) ? (raw as [string, string[]][]) : [];
    const parsed: HistoryEntry[] = [];
    for (const [id, fields] of list) {
      const at = fields.indexOf('e');
      const e = this.parseJson(at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined, (v) => parseEntry(id, v), 'history entry', apiKey);
      if (e) parsed.push(e);
    }
    if (parsed.length === 0) return parsed;
    const counts = await this.redis.hmget(this.vsKeys(apiKey).delivered, ...parsed.map((e) => e.id));
    return parsed.map((e, i) => (counts[i] === null || counts[i] === undefined ? e : { ...e, delivered: Number(counts[i]) }));
  }

  async listHistory(apiKey: string, options: { limit: number; before?: string }): Promise<HistoryEntry[]> {
    const limit = checkLimit(options.limit);
    const before = parseBefore(options.before);
    const raw = await this.redis.xrevrange(this.vsKeys(apiKey).history, before ? `(${formatHistoryId(before)}` : '+', '-', 'COUNT', limit);
    return this.entries(apiKey, raw);
  }

  async getHistoryEntry(apiKey: string, id: string): Promise<HistoryEntry | null> {
    if (!parseHistoryId(id)) return null;
    const raw = await this.redis.xrange(this.vsKeys(apiKey).history, id, id);
    return (await this.entries(apiKey, raw)).find((e) => e.id === id) ?? null;
  }

  async historySince(apiKey: string, id: string): Promise<HistoryEntry[] | null> {
    const parsed = parseHistoryId(id);
    if (!parsed) return null;
    const list = await this.entries(apiKey, await this.redis.xrevrange(this.vsKeys(apiKey).history, '+', formatHistoryId(parsed)));
    return list.at(-1)?.id === formatHistoryId(parsed) ? list : null;
  }

  async pruneHistory(apiKey: string, bounds: HistoryBounds, now: number): Promise<number> {
    checkHistoryBounds(bounds);
    const k = this.vsKeys(apiKey);
    return Number(await this.run(PRUNE, [k.history, k.delivered], [now - bounds.maxAgeMs, bounds.maxEntries]));
  }
}
