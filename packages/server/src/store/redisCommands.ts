// How one command goes to Redis through the command connection: bounded by the command timeout,
// failing at once while not connected, and what its answer or failure does to the status (a refusal
// counted, a READONLY reply connecting again to the primary). createRedisStore wires it.
import { ClientClosedError, ClientOfflineError, ErrorReply } from 'redis'
import type { LuaScript } from './redisScripts'
import type { StoreResult } from './sharedStore'
import { NoAnswerError, withTimeout, type RedisClientLike, type RedisConnection } from './redisConnection'
import { describe } from './redisReplies'
import type { RedisStatus } from './redisStatus'
import { REPLACE_MAX_MS } from './redisStoreOptions'

/** What {@link createRedisCommands} needs of a node-redis client. */
export interface CommandClient extends RedisClientLike {
  sendCommand<T>(args: string[], options: { timeout: number }): Promise<T>
}

/** Options of {@link createRedisCommands}: the store's command connection, status and state. */
export interface RedisCommandsOptions<C extends CommandClient> {
  /** The command connection (its client read again for every command). */
  commands: RedisConnection<C>
  /** The store's status: told of every answer, refusal and failure. */
  status: RedisStatus
  /** How long any one command may take before it counts as failed (ms). */
  timeout: number
  /** Whether the store was opened, and closed. */
  opened: () => boolean
  closed: () => boolean
}

/** The commands of one Redis store. */
export interface RedisCommands<C extends CommandClient> {
  /**
   * Sends `args`. `stuck`: told of the client when the command went unanswered (the heartbeat's PING
   * replaces it). `command`: what its refusal is kept under (the script's SHA for EVAL and EVALSHA).
   * Default: its name.
   */
  run<T>(args: string[], stuck?: (client: C) => void, command?: string): Promise<StoreResult<T>>
  /** Runs `script` by its SHA, sent whole when Redis has forgotten it (NOSCRIPT). */
  evaluate<T>(script: LuaScript, keys: string[], args: string[]): Promise<StoreResult<T>>
}

/** Creates the commands of one Redis store; see the file comment. */
export function createRedisCommands<C extends CommandClient>({ commands, status, timeout, opened, closed }: RedisCommandsOptions<C>): RedisCommands<C> {
  // READONLY: the connection is on a replica, most often an old primary after a failover behind
  // one name (DNS, a Service, a cloud endpoint), which keeps the connections made to it; node-redis
  // never connects again by itself, and before, no write succeeded again until a restart. The
  // connection is replaced (a fresh one goes through the name to the new primary): at once, then
  // at most every 1 s doubling to 30 s while writes stay refused (a URL that names a replica).
  let readonlyAt = -Infinity
  let readonlyWait = 1000
  const onReadonly = () => {
    const now = performance.now()
    if (now - readonlyAt < readonlyWait) return
    if (readonlyAt !== -Infinity) readonlyWait = Math.min(readonlyWait * 2, REPLACE_MAX_MS)
    readonlyAt = now
    commands.replace()
  }
  const run = async <T>(args: string[], stuck?: (client: C) => void, command = args[0]!): Promise<StoreResult<T>> => {
    if (closed()) return { ok: false, error: 'store closed' }
    if (!opened()) return { ok: false, error: 'store not opened' }
    const client = commands.current()
    try {
      // node-redis' own `timeout` only covers the wait to be written; a Redis that accepted the
      // command and never answers (stuck, SIGSTOP, a network black hole) needs this race too.
      const value = await withTimeout(client.sendCommand<T>(args, { timeout }), timeout)
      if (status.answered(command)) [readonlyAt, readonlyWait] = [-Infinity, 1000]
      status.up()
      return { ok: true, value }
    } catch (error) {
      const message = describe(error)
      // Sent on a connection let go since (it did not answer): the status says why already.
      if (client !== commands.current()) {
        status.failed()
        return { ok: false, error: message }
      }
      if (error instanceof NoAnswerError) stuck?.(client)
      // An error reply means Redis answered: the connection is fine. NOSCRIPT (after a restart) is
      // no failure; anything else (OOM under maxmemory, a read-only replica) refused the command,
      // and the status must say why nothing is written.
      if (error instanceof ErrorReply) {
        if (!message.includes('NOSCRIPT')) {
          // Counted, and logged once per reason (see redisStatus.ts).
          status.refused(command, message)
          // As sent, or from inside a script (Redis 6: '… @user_script:1: -READONLY You can't write …').
          if (/(^|-)READONLY\b/.test(message)) onReadonly()
        }
        return { ok: false, error: message }
      }
      status.failed()
      // A command refused at once because the client is not connected says nothing new: the
      // reason it is not (WRONGPASS, ECONNREFUSED, from the connection's own error) stays in the
      // status. Before, every heartbeat and poll wrote "The client is offline" over it.
      // The same while a client let go is replaced ("The client is closed" until the next connects).
      const notConnected = error instanceof ClientOfflineError || error instanceof ClientClosedError
      const lastError = status.lastError()
      status.down(notConnected && lastError !== undefined ? lastError : message)
      return { ok: false, error: message }
    }
  }

  const evaluate = async <T>(script: LuaScript, keys: string[], args: string[]): Promise<StoreResult<T>> => {
    const result = await run<T>(['EVALSHA', script.sha, String(keys.length), ...keys, ...args], undefined, script.sha)
    // A Redis that restarted (or was flushed with SCRIPT FLUSH) has forgotten the script.
    if (!result.ok && result.error.includes('NOSCRIPT')) return run<T>(['EVAL', script.source, String(keys.length), ...keys, ...args], undefined, script.sha)
    return result
  }

  return { run, evaluate }
}
