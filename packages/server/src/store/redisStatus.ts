// The Redis store's status: `up` needs both halves, commands answered and notices flowing (a relay
// whose subscription is broken would silently miss new versions), and nothing it needs refused.
// Every error goes in with its time; a refused command is kept as a refusal until it is answered,
// or for REFUSAL_HOLD_MS after it was last refused.
import type { ServerLogger } from '../logger'
import { refusalOf } from './redisReplies'
import type { StoreStatus } from './sharedStore'

/**
 * How long a refusal (an error reply: NOPERM, BUSY, OOM, READONLY, scripting disabled) keeps the
 * store `down` when the refused command is not asked again. A command asked again and answered
 * ends it at once; one refused again keeps it.
 */
const REFUSAL_HOLD_MS = 30_000
/** The key under which a refused notice (PUBLISH: a change, a lease released) is kept among the refused commands. */
const PUBLISH_REFUSED = 'PUBLISH'

/** What {@link createRedisStatus} needs from the store. */
export interface RedisStatusOptions {
  /** The namespace as the status shows it. */
  namespace: string
  /** The namespace's notice channel (named in what a refused notice says). */
  channel: string
  /** Whether `connected` went out for the current connections (both ready, subscribed), and ever. */
  announced: () => boolean
  everAnnounced: () => boolean
  closed: () => boolean
  log?: ServerLogger
}

/** The status of one Redis store. */
export interface RedisStatus {
  /** The status as `SharedStore.status()` says it, with the age of the last answer. */
  read(): StoreStatus
  /** The state now, the latest error, and when (performance.now()) a command last succeeded. */
  state(): StoreStatus['state']
  lastError(): string | undefined
  lastOkTick(): number | undefined
  /** Whether the latest command was answered (a refusal is an answer). */
  answering(): boolean
  /** Works the state out again (after a change of the connections). */
  update(): void
  /** A command succeeded. */
  up(): void
  /** The command connection failed with `error` (ignored once closed). */
  down(error: string): void
  /** Notes `message` as the latest error, with its time. */
  error(message: string): void
  /** Counts a failed command whose reason the status says already. */
  failed(): void
  /** Redis refused `command` (an error reply, `message`): counted, said once per reason, kept as a refusal. */
  refused(command: string, message: string): void
  /** `command` was answered: its refusal ends. Returns whether that was the last refusal kept. */
  answered(command: string): boolean
  /**
   * A notice Redis refused (`refusal`: its error reply) or sent (undefined): a document written, or
   * a lease let go (`notice`), that no relay is told of.
   */
  noticeRefused(refusal: string | undefined, notice?: 'changed' | 'released'): void
}

/** Creates the status of a Redis store: `connecting` until a command is answered. */
export function createRedisStatus(options: RedisStatusOptions): RedisStatus {
  const { channel, announced, everAnnounced, closed, log } = options
  const status: StoreStatus = { kind: 'redis', state: 'connecting', failures: 0, namespace: options.namespace }
  // When a command last succeeded, for the heartbeat's "nothing answered for a while" and the
  // status's `lastOkAgeMs`, on a monotonic clock: on the wall clock (`lastOkAt`, the status's epoch time), NTP setting it back
  // an hour made the last answer look an hour ahead, and no PING went out for the hour; a command
  // connection gone half-open while the relay asked nothing was said up all that time.
  let lastOkTick: number | undefined
  // Commands (a script by its SHA, others by name) Redis refused with an error reply, and when
  // last: an ACL without `+@scripting`, a managed Redis with scripting disabled, `-BUSY`, OOM.
  // PING and SUBSCRIBE still answer then, so the connection alone said `up` while no lease could
  // be taken nor anything shared. A refused command answered later ends its refusal; one not asked
  // again ends it after REFUSAL_HOLD_MS (a write a follower no longer makes).
  const refused = new Map<string, number>()
  const refusing = () => {
    const now = performance.now()
    for (const [command, at] of refused) if (now - at > REFUSAL_HOLD_MS) refused.delete(command)
    return refused.size > 0
  }
  // `up` needs both halves: commands answered and notices flowing (a relay whose subscription is
  // broken would silently miss new versions), and nothing it needs refused.
  let commandsOk: boolean | undefined
  const update = () => {
    if (closed()) return
    let next: StoreStatus['state']
    if (commandsOk === undefined) next = status.lastError === undefined ? 'connecting' : 'down'
    else if (commandsOk && announced() && !refusing()) next = 'up'
    // At start the subscription may trail the first answered command by a moment: still connecting.
    else if (commandsOk && !everAnnounced() && status.lastError === undefined) next = 'connecting'
    else next = 'down'
    if (next === status.state) return
    if (next === 'up' && status.lastError !== undefined) log?.info('redis is reachable again')
    if (next === 'down' && commandsOk && refused.size > 0) log?.warn(`redis refuses what this relay needs (${status.lastError}); it cannot lead or share, serving what it holds`)
    else if (next === 'down') log?.warn(`redis is unreachable (${status.lastError ?? 'no notices'}); serving what this relay holds`)
    status.state = next
  }
  // Every error goes in with its time: `lastError` is kept once Redis is up again (what happened
  // last), and without `lastErrorAt` an operator could not tell an error of a minute ago from one
  // of last week, nor read it against `lastOkAt`.
  const noteError = (message: string) => {
    status.lastError = message
    status.lastErrorAt = Date.now()
  }
  return {
    read: () => ({ ...status, ...(lastOkTick === undefined ? {} : { lastOkAgeMs: Math.round(performance.now() - lastOkTick) }) }),
    state: () => status.state,
    lastError: () => status.lastError,
    lastOkTick: () => lastOkTick,
    answering: () => commandsOk === true,
    update,
    up() {
      commandsOk = true
      status.lastOkAt = Date.now()
      lastOkTick = performance.now()
      update()
    },
    down(error) {
      if (closed()) return
      noteError(error)
      if (commandsOk !== undefined) commandsOk = false
      update()
    },
    error: noteError,
    failed: () => void status.failures++,
    refused(command, message) {
      status.failures++
      // Logged once per reason: a refusal inside a script names the script and line, which
      // differ from one command to the next while the reason (OOM, READONLY) stays the same.
      const reason = refusalOf(message)
      if (status.lastError === undefined || refusalOf(status.lastError) !== reason) log?.warn(`redis refused a command: ${reason}`)
      noteError(message)
      refused.set(command, performance.now())
      update()
    },
    answered: (command) => refused.delete(command) && refused.size === 0,
    // A document written whose notice Redis refused (PUBLISH denied by the ACL): stored, but no
    // relay is told. Kept as a refusal (the state says down, the reason names the notice) until a
    // notice goes out again, or 30 s after the last refused one, as any refused command.
    // The same for the notice of a lease let go: released, but the followers take it at their own next try.
    noticeRefused(refusal, notice = 'changed') {
      if (refusal === undefined) {
        if (refused.delete(PUBLISH_REFUSED)) update()
        return
      }
      status.failures++
      const message =
        notice === 'changed'
          ? `the change notice on ${channel} was refused (${refusal}): the document is stored, but no relay is told of it; they take it on their own reads only (a follower every poll interval; in proxy mode, a relay once its upstream fails for that context)`
          : `the lease-release notice on ${channel} was refused (${refusal}): the lease is released, but no relay is told of it; a follower takes it at its own next try (within the lease's TTL)`
      if (!refused.has(PUBLISH_REFUSED)) log?.warn(message)
      noteError(message)
      refused.set(PUBLISH_REFUSED, performance.now())
      update()
    },
  }
}
