// The Lua scripts behind the Redis store. Each runs atomically inside Redis, so two relays racing
// on one key cannot interleave a read and a write (the job WATCH/MULTI would do, in one round trip).
import { createHash } from 'node:crypto'

/** A script and its SHA1, for EVALSHA with an EVAL fallback when Redis has not seen it (after a restart). */
export interface LuaScript {
  source: string
  sha: string
  keys: number
}

function script(source: string, keys: number): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex'), keys }
}

// Shared by the scripts that read versions. `now_us()` is Redis' own clock in microseconds.
// `last_ticket(key, now)` is the last version handed out, or 0 when what the clock key holds was not
// written by TICKET (another type, not a whole number, more than a day ahead of Redis' clock).
// `readable(text, bound)` is a stored version, or nil when no ticket can have handed it out: not a
// whole number, or later than `bound` (the store's clock) by more than a minute (a little ahead only
// delays the next version that long). Such a document (inf, 1e300, a day ahead) was written by
// something else, and would otherwise win against every real version for good.
const VERSIONS = `local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function last_ticket(key, now)
  if redis.call('TYPE', key).ok ~= 'string' then return 0 end
  local last = tonumber(redis.call('GET', key))
  if not last or last ~= math.floor(last) or last < 0 or last > now + 86400000000 then return 0 end
  return last
end
local function readable(text, bound)
  local n = text and tonumber(text)
  if not n or n ~= math.floor(n) or n > bound + 60000000 then return nil end
  return n
end
`

/**
 * KEYS[1] = the clock key; ARGV[1] = its TTL (ms). Returns a version newer than any before: Redis'
 * own clock in microseconds, or the previous version + 1 when that clock has not moved on (or went
 * back). One clock for every relay, so a relay whose clock is hours off cannot win or lose by it;
 * and a Redis flushed empty still hands out versions that follow the ones relays already hold.
 * Junk under the clock key is written over.
 */
export const TICKET = script(
  `${VERSIONS}local now = now_us()
local last = last_ticket(KEYS[1], now)
if now <= last then now = last + 1 end
redis.call('SET', KEYS[1], string.format('%.0f', now), 'PX', ARGV[1])
return string.format('%.0f', now)`,
  1,
)

/**
 * KEYS[1] = the document hash, KEYS[2] = the clock key, KEYS[3] = the lease; ARGV = version,
 * fetchedAt, body, etag, ttlMs, channel, notice, owner, lineage (kept only when not empty: a
 * relay older than lineages sends none, and its write leaves none behind). With an owner that
 * does not hold the lease (it was stalled past it and another relay leads now): nothing → `fenced`. Newer (or nothing
 * stored): replace, set the TTL, publish the notice → `written`. The same version: renew the TTL only → `refreshed` (a quiet upstream must not let the
 * backup expire). Older: nothing → `older` and the stored version. Anything a relay cannot have
 * written (another type than a hash, a version no ticket handed out) counts as nothing stored and
 * is replaced: `written` with a third element, `replaced`. A notice Redis refuses to publish (an ACL
 * that denies PUBLISH, `-publish`) does not undo the write (a script is not rolled back, and the
 * document is good): `written` with a fourth element, the refusal. Before, the refusal was the
 * script's error: the document stood in Redis while its writer counted it unwritten, and no other
 * relay was told of it.
 */
export const PUT = script(
  `${VERSIONS}if ARGV[8] ~= '' and (redis.call('TYPE', KEYS[3]).ok ~= 'string' or redis.call('GET', KEYS[3]) ~= ARGV[8]) then return {'fenced', ''} end
local kind = redis.call('TYPE', KEYS[1]).ok
local current = kind == 'hash' and redis.call('HGET', KEYS[1], 'version') or false
local version = tonumber(ARGV[1])
local now = now_us()
local held = current and readable(current, math.max(now, last_ticket(KEYS[2], now)))
if held then
  if held > version then return {'older', current} end
  if held == version then
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return {'refreshed', current}
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'fetchedAt', ARGV[2], 'body', ARGV[3], 'etag', ARGV[4])
if ARGV[9] and ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'lineage', ARGV[9]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local told = redis.pcall('PUBLISH', ARGV[6], ARGV[7])
local unannounced = type(told) == 'table' and told.err or ''
local replaced = (kind ~= 'none' and not held) and 'replaced' or ''
if unannounced ~= '' or replaced ~= '' then return {'written', ARGV[1], replaced, unannounced} end
return {'written', ARGV[1]}`,
  3,
)

/**
 * KEYS[1] = the document hash, KEYS[2] = the clock key; ARGV[1] = `peek` (the version only) or
 * `get` (every field). What a relay wrote, or nothing: another type than a hash, or a version no
 * ticket handed out, reads as nothing stored (never served; the next write replaces it).
 */
export const READ = script(
  `${VERSIONS}if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return {} end
local current = redis.call('HGET', KEYS[1], 'version')
local now = now_us()
if not readable(current, math.max(now, last_ticket(KEYS[2], now))) then return {} end
if ARGV[1] == 'peek' then return {'version', current} end
return redis.call('HGETALL', KEYS[1])`,
  2,
)

/**
 * KEYS[1] = the lease; ARGV = owner, ttlMs. Free → ours (SET NX PX). Already ours → renewed.
 * Someone else's → how long it still has (PTTL), so the caller can try again right when it ends.
 * A relay's lease is a string with a TTL: anything else under the key (another type, a value that
 * never expires) was put there by something else and counts as free — else no relay would ever
 * lead, nobody would poll, and every relay would ask again every few milliseconds.
 */
export const ACQUIRE = script(
  `local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'none' and (kind ~= 'string' or redis.call('PTTL', KEYS[1]) < 0) then redis.call('DEL', KEYS[1]) end
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, 0}
end
if holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}`,
  1,
)

/**
 * KEYS[1] = the lease; ARGV = owner, ttlMs. Extends it only while it is still `owner`'s. With SET,
 * not PEXPIRE (here and in ACQUIRE): a Redis that refuses writes (maxmemory with noeviction: OOM)
 * refuses SET but not PEXPIRE, and a leader that cannot publish must not keep the lease, or the
 * followers would serve what the store last held for as long as it lasts; this way every relay
 * ends up polling on its own (`solo`), as when Redis is down.
 */
export const RENEW = script(
  `if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`,
  1,
)

/**
 * KEYS[1] = the lease; ARGV = owner, channel, notice. Deletes it only while it is `owner`'s, and
 * says so: `{1, refusal}`, or `{0, ''}`. A notice Redis refuses to publish (as in PUT) does not undo
 * the release: the refusal comes back beside it. Before, it was the script's error: the lease was
 * gone while its holder counted the release failed (and logged a refused command as it closed).
 */
export const RELEASE = script(
  `if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  local told = redis.pcall('PUBLISH', ARGV[2], ARGV[3])
  return {1, type(told) == 'table' and told.err or ''}
end
return {0, ''}`,
  1,
)
