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

/**
 * KEYS[1] = the clock key; ARGV[1] = its TTL (ms). Returns a version newer than any before: Redis'
 * own clock in microseconds, or the previous version + 1 when that clock has not moved on (or went
 * back). One clock for every relay, so a relay whose clock is hours off cannot win or lose by it;
 * and a Redis flushed empty still hands out versions that follow the ones relays already hold.
 */
export const TICKET = script(
  `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if now <= last then now = last + 1 end
redis.call('SET', KEYS[1], string.format('%.0f', now), 'PX', ARGV[1])
return string.format('%.0f', now)`,
  1,
)

/**
 * KEYS[1] = the document hash; ARGV = version, fetchedAt, body, etag, ttlMs, channel, notice.
 * Newer (or nothing stored): replace, set the TTL, publish the notice → `written`. The same
 * version: renew the TTL only → `refreshed` (a quiet upstream must not let the backup expire).
 * Older: nothing → `older` and the stored version. A hash with no readable version (written by
 * something else) counts as nothing stored.
 */
export const PUT = script(
  `local current = redis.call('HGET', KEYS[1], 'version')
local version = tonumber(ARGV[1])
-- A version that is not a number was not written by a relay: overwrite it.
local held = current and tonumber(current)
if held then
  if held > version then return {'older', current} end
  if held == version then
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return {'refreshed', current}
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'fetchedAt', ARGV[2], 'body', ARGV[3], 'etag', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return {'written', ARGV[1]}`,
  1,
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
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, 0}
end
return {0, redis.call('PTTL', KEYS[1])}`,
  1,
)

/** KEYS[1] = the lease; ARGV = owner, ttlMs. Extends it only while it is still `owner`'s. */
export const RENEW = script(
  `if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`,
  1,
)

/** KEYS[1] = the lease; ARGV = owner, channel, notice. Deletes it only while it is `owner`'s, and says so. */
export const RELEASE = script(
  `if redis.call('TYPE', KEYS[1]).ok == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`,
  1,
)
