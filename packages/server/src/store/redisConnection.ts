import { ConnectionTimeoutError } from 'redis'

/** What {@link createRedisConnection} needs of a node-redis client. */
export interface RedisClientLike {
  readonly isReady: boolean
  readonly isOpen: boolean
  connect(): Promise<unknown>
  close(): Promise<void>
  destroy(): void
  on(event: string, listener: (...args: any[]) => void): unknown
  off(event: string, listener: (...args: any[]) => void): unknown
}

/** Options of {@link createRedisConnection}. */
export interface RedisConnectionOptions<C extends RedisClientLike> {
  /**
   * A fresh client, not connected. Called at once (a URL node-redis refuses throws there) and again
   * for each replacement. `signal` is aborted when the client is let go or closed: give it to the
   * client's sockets (`socket: { signal }`), so a socket still connecting then is destroyed too.
   */
  make: (signal: AbortSignal) => C
  /**
   * How long the handshake (AUTH, SELECT, CLIENT SETINFO, the subscriptions again) may take once
   * the TCP connection is up; past it the client is replaced. node-redis' `connectTimeout` bounds
   * the TCP connect only.
   */
  handshakeMs: number
  /** The wait before a replacement connects, by how many were replaced since the last ready one. */
  backoff: (replacedInARow: number) => number
  /**
   * The wait before a replacement connects after the client's connection failed or was refused
   * (its `terminated`), by how many failed so far since the last ready one. Default: `backoff`.
   * A TCP connect that timed out waits `backoff` instead (Redis did not answer it).
   * Make the clients with `reconnectStrategy: false`: node-redis' own reconnect waits on a timer
   * nothing can cancel, which kept a closed relay's process alive up to that wait.
   */
  reconnectBackoff?: (failedInARow: number) => number
  /** The current client's events. A replaced client's are never passed on. */
  on: {
    ready?: () => void
    reconnecting?: () => void
    end?: () => void
    error?: (error: Error) => void
    /** The client was let go ({@link RedisConnection.replace}, or its handshake went unanswered); the next one connects after the backoff. */
    replaced?: () => void
  }
}

/** One connection to Redis that does not stay stuck: see {@link createRedisConnection}. */
export interface RedisConnection<C extends RedisClientLike> {
  /** The client now. Read it again for every command: it changes at each replacement. */
  current(): C
  /** Connects (a client whose connection fails is replaced after `reconnectBackoff`). Idempotent. */
  open(): void
  /**
   * Lets the current client go (destroyed: its pending commands fail at once) and connects a fresh
   * one after the backoff. For a connection that is open and answers nothing: node-redis only
   * notices a socket that errors or closes, and would write to a silent one for ever.
   */
  replace(): void
  /** Closes the client: its pending replies are waited for `waitMs` at most, then it is destroyed. Never rejects. */
  close(waitMs: number): Promise<void>
}

/**
 * A node-redis client that is replaced by a fresh one when its handshake goes unanswered (a Redis,
 * or a proxy in front of one, that accepts the connection and never answers: node-redis would wait
 * for ever and never connect again) or when the owner finds it silent ({@link RedisConnection.replace}).
 * node-redis cannot be told to drop a socket and connect again: `destroy()` then `connect()` on
 * the same client races its own teardown (a connect loop still running from before reopens, and
 * two sockets live), so the client is replaced instead, with a fresh one that shares nothing with
 * it. The one let go is destroyed, its events are no longer heard, and a socket it was still
 * connecting when destroyed (node-redis does not own it yet, so leaves it open and starts its
 * handshake on it) is destroyed the moment it connects: never two live clients, no socket left.
 */
export function createRedisConnection<C extends RedisClientLike>(options: RedisConnectionOptions<C>): RedisConnection<C> {
  let client!: C
  // node-redis' destroy() cannot reach a socket still connecting (it holds it only once connected):
  // one whose SYN goes unanswered (a SIGSTOPped Redis with a full listen queue) lived on to its
  // connect timeout, 2 s, keeping the process of a host that had closed the relay alive that long.
  // Aborting the signal its sockets were made with destroys it at once.
  const aborts = new WeakMap<C, AbortController>()
  const make = () => {
    const controller = new AbortController()
    const c = options.make(controller.signal)
    aborts.set(c, controller)
    return c
  }
  const abortSockets = (c: C) => aborts.get(c)?.abort()
  let heard: Array<[string, (...args: any[]) => void]> = []
  let stopWatching: (() => void) | undefined
  let pending: ReturnType<typeof setTimeout> | undefined
  let replacedInARow = 0
  let failedInARow = 0
  let opened = false
  let closed = false

  // The TCP connection is up; node-redis now sends its handshake and waits for every reply.
  const watchHandshake = (c: C) => {
    stopWatching?.()
    let settle!: () => void
    const over = new Promise<void>((resolve) => (settle = resolve))
    const ends = ['ready', 'reconnecting', 'end', 'error']
    for (const event of ends) c.on(event, settle)
    stopWatching = settle
    withTimeout(over, options.handshakeMs, `no answer from redis to the connection's handshake within ${options.handshakeMs} ms`)
      .then(undefined, (error: Error) => {
        if (c !== client || closed || c.isReady) return
        options.on.error?.(error)
        replace()
      })
      .finally(() => {
        for (const event of ends) c.off(event, settle)
        if (stopWatching === settle) stopWatching = undefined
      })
  }

  const adopt = (c: C) => {
    const hear = (event: string, listener: (...args: any[]) => void) => {
      const current = (...args: any[]) => {
        if (c === client && !closed) listener(...args)
      }
      c.on(event, current)
      heard.push([event, current])
    }
    hear('error', (error: Error) => options.on.error?.(error))
    hear('connect', () => watchHandshake(c))
    hear('ready', () => {
      replacedInARow = 0
      failedInARow = 0
      options.on.ready?.()
    })
    hear('reconnecting', () => options.on.reconnecting?.())
    hear('end', () => options.on.end?.())
    // Its connection failed and it will not reconnect by itself (reconnectStrategy: false): a
    // fresh one connects after the backoff, on a timer that close() clears.
    // node-redis says 'terminated' before the 'error' with the same cause, which a client let go
    // no longer passes on: the cause is told here, so the status names it.
    // A TCP connect that timed out (a listen queue full: a SIGSTOPped or swamped Redis drops the
    // SYN) is a Redis that does not answer, as a silent handshake is: it waits `backoff`, which
    // grows further. On `reconnectBackoff` (2 s at most), a fleet knocked every 1-3 s for as long
    // as Redis stayed stuck.
    hear('terminated', (cause: unknown) => {
      if (cause instanceof Error) options.on.error?.(cause)
      replace(!(cause instanceof ConnectionTimeoutError))
    })
    client = c
  }

  const letGo = (c: C) => {
    // What it says from here on is nobody's concern, but an 'error' with no listener would throw.
    // Added before ours are removed: createClient() returns Object.create(client), and an emitter
    // whose last listener is removed gets a fresh listener table of its own, which the client
    // underneath (the one that emits) never sees: an uncaught ECONNRESET, seen here, from a client
    // let go while Redis was frozen once Redis went away.
    c.on('error', () => {})
    c.on('connect', () => c.destroy())
    for (const [event, listener] of heard) c.off(event, listener)
    heard = []
    stopWatching?.()
  }

  function replace(failed = false) {
    if (closed || !opened) return
    const old = client
    letGo(old)
    try {
      old.destroy()
    } catch {
      // Gone already.
    }
    abortSockets(old)
    const fresh = make()
    adopt(fresh)
    clearTimeout(pending)
    pending = setTimeout(() => {
      pending = undefined
      if (client === fresh && !closed) fresh.connect().catch(() => {})
    }, failed ? (options.reconnectBackoff ?? options.backoff)(failedInARow++) : options.backoff(replacedInARow++))
    pending.unref?.()
    options.on.replaced?.()
  }

  adopt(make())

  return {
    current: () => client,
    open() {
      if (opened || closed) return
      opened = true
      // A rejection means it failed (its 'terminated' replaces it) or was let go.
      client.connect().catch(() => {})
    },
    replace: () => replace(),
    async close(waitMs) {
      if (closed) return
      closed = true
      clearTimeout(pending)
      const c = client
      letGo(c)
      // close() waits for pending replies, which a stuck Redis never sends: bounded, then destroy.
      // (close() clears isOpen at once: destroyed whatever it says, or its socket stays open.)
      try {
        if (c.isOpen) await withTimeout(c.close(), waitMs)
        else c.destroy()
      } catch {
        c.destroy()
      }
      abortSockets(c)
    },
  }
}

/** A command, or a handshake, that Redis did not answer within its bound. */
export class NoAnswerError extends Error {}

// A timer that fires late (this process's event loop stalled: a long GC, a big JSON parse) says
// nothing of Redis: the answer may be in the socket, unread. Then the wait starts again (an answer
// read meanwhile settles the race first), for at most three stalls in a row, so a Redis that is
// really stuck costs a call at most four timeouts plus the stalls (each wait started again is a
// whole timeout: 200 ms with a loop stalled 260 ms in every 265 failed after 2.1 s). Without this,
// one stall longer than half the timeout marked Redis down and reconnected the subscription.
const STALLS_FORGIVEN = 3
/** `promise`, or a {@link NoAnswerError} after `ms` (forgiving this process's own stalls, see above). */
export function withTimeout<T>(promise: Promise<T>, ms: number, message = `no answer from redis within ${ms} ms`): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    const arm = (forgiven: number) => {
      const due = performance.now() + ms
      timer = setTimeout(() => {
        if (forgiven < STALLS_FORGIVEN && performance.now() - due > ms / 2) arm(forgiven + 1)
        else reject(new NoAnswerError(message))
      }, ms)
    }
    arm(0)
  })
  // The command may still settle later; its outcome is no longer anyone's concern.
  promise.catch(() => {})
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}
