import { ClientClosedError, ClientOfflineError, createClient, ErrorReply } from 'redis'
import type { ServerLogger } from '../logger'
import { ACQUIRE, PUT, READ, RELEASE, RENEW, TICKET, type LuaScript } from './redisScripts'
import type { LeaseOutcome, PutOutcome, SharedStore, StoreNotice, StoreResult } from './sharedStore'
import { parseNotice, serializeNotice } from './notice'
import { createRedisConnection, NoAnswerError, withTimeout } from './redisConnection'
import { describe, escapeGlob, readDocument } from './redisReplies'
import { createRedisStatus } from './redisStatus'

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Required. */
  url: string
  /**
   * Names this store's keys: `holdfast:<namespace>:…`. Relays share documents only when their
   * namespaces match; use {@link storeNamespace} (a hash of the source and its credentials) so
   * fleets on one Redis never mix flags. Required.
   */
  namespace: string
  /**
   * The namespace as `status().namespace` shows it; default `namespace`. A relay that sends
   * credentials shows its hash hidden (see `createRelayStore`).
   */
  shownNamespace?: string
  /** How long any one command may take before it counts as failed. Default 500 ms. */
  commandTimeoutMs?: number
  /**
   * TTL of every stored document, renewed on every successful poll, changed or not, so a quiet
   * upstream never lets the backup expire. Default 7 days.
   */
  backupTtlMs?: number
  /**
   * Longest wait between reconnection attempts after a connection fails or is refused (they back
   * off from 100 ms, with jitter). Default 2000 ms. A connection Redis does not answer (its TCP
   * connect timed out, its handshake or PING unanswered) is replaced after a wait that grows
   * further, to 30 s (or this, when longer).
   */
  reconnectMaxMs?: number
  /**
   * When no command has succeeded for this long, a PING checks the connection, so the status
   * recovers (or notices an outage) even while the relay has nothing to ask; the subscription is
   * PINGed this often too. A connection whose PING is not answered within the command timeout is
   * connected again (a half-open one would otherwise be written to for ever, and a subscription
   * would miss every notice without failing). Default 2000 ms.
   */
  heartbeatMs?: number
  /** Where connection changes are reported. Default: none. */
  log?: ServerLogger
}

const DEFAULT_TIMEOUT_MS = 500
const DEFAULT_BACKUP_TTL_MS = 7 * 24 * 3600 * 1000
const DEFAULT_RECONNECT_MAX_MS = 2000
/**
 * The longest wait before a connection let go (its TCP connect, handshake or PING unanswered) is replaced. From
 * 100 ms, doubling, with jitter, while the replacements go unanswered; from 100 ms again once one
 * is ready. Capped at `reconnectMaxMs` (2 s) instead, a fleet opened a connection per relay every
 * 1.2-3 s into a Redis stuck for good, filling a SIGSTOPped Redis' listen queue.
 */
const REPLACE_MAX_MS = 30_000

/**
 * A {@link SharedStore} on Redis, with node-redis. Two connections: one for commands (each with a
 * timeout, and failing at once while disconnected rather than queueing, so nothing piles up behind
 * an outage) and one subscribed to the namespace's notice channel. Both reconnect on their own with
 * capped exponential backoff and jitter, also from a Redis that accepts the connection and never
 * answers (the TCP connect and the handshake are bounded, four command timeouts and at least 1 s;
 * an unanswered PING connects again, ever less often while none answers: 30 s at most); the status
 * follows the latest event or command, and says down while Redis refuses a command it needs
 * (redisStatus.ts).
 */
export function createRedisStore(options: RedisStoreOptions): SharedStore {
  const timeout = options.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS
  const ttl = options.backupTtlMs ?? DEFAULT_BACKUP_TTL_MS
  const maxBackoff = options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS
  const prefix = `holdfast:${options.namespace}:`
  const channel = `${prefix}notices`
  const leaseKey = `${prefix}lease`
  const clockKey = `${prefix}clock`
  const docKey = (key: string) => `${prefix}doc:${key}`
  const flagKey = (name: string) => `${prefix}flag:${name}`
  const listeners = new Set<(notice: StoreNotice) => void>()
  let opened = false
  let closed = false
  let heartbeat: ReturnType<typeof setInterval> | undefined
  let subscribed = false
  let announced = false
  let everAnnounced = false
  const status = createRedisStatus({ namespace: options.shownNamespace ?? options.namespace, channel, announced: () => announced, everAnnounced: () => everAnnounced, closed: () => closed, log: options.log })

  const jittered = (retries: number, max: number) => Math.round(Math.min(100 * 2 ** Math.min(retries, 16), max) * (0.5 + Math.random() / 2))
  const reconnectStrategy = (retries: number) => jittered(retries, maxBackoff)
  const replaceBackoff = (replacedInARow: number) => jittered(replacedInARow, Math.max(maxBackoff, REPLACE_MAX_MS))
  const connectBound = Math.max(timeout * 4, 1000)
  // No reconnect of node-redis' own: its wait is a timer close() cannot clear. Each connection
  // replaces a client whose connection failed instead, after reconnectStrategy's wait.
  const socket = { connectTimeout: connectBound, reconnectStrategy: false as const }
  // Both connections' clients are made with the same options: node-redis keeps one client class,
  // for the options it last saw (compared as JSON), and builds a new one (every command a method:
  // 20-35 ms of this process's event loop) when they differ. Made alternately with options of
  // their own, the commands client and the subscriber rebuilt it at every reconnection attempt,
  // every few seconds of a Redis outage, while the relay was serving. The subscriber never sends
  // while not ready, so the offline queue turned off and the queue bound are nothing to it.
  const clientOptions = (signal: AbortSignal) => ({ url: options.url, disableOfflineQueue: true, commandsQueueMaxLength: 1000, socket: { ...socket, signal } })
  // Each connection's events are wired below; they only ever come from its current client.
  const commands = createRedisConnection({
    make: (signal) => createClient(clientOptions(signal)),
    handshakeMs: connectBound,
    backoff: replaceBackoff,
    reconnectBackoff: reconnectStrategy,
    on: {
      error: (error) => status.down(describe(error)),
      ready: () => {
        status.up()
        announce()
      },
      reconnecting: () => {
        broken()
        status.down(status.lastError() ?? 'reconnecting')
      },
      end: () => broken(),
      replaced: () => broken(),
    },
  })
  const subscription = createRedisConnection({
    make: (signal) => createClient(clientOptions(signal)),
    handshakeMs: connectBound,
    backoff: replaceBackoff,
    reconnectBackoff: reconnectStrategy,
    on: {
      // Its reason shows only when commands work (they say their own otherwise).
      error: (error) => {
        if (error instanceof NoAnswerError) deaf(`the subscription to ${channel}: ${error.message}`)
      },
      ready: () => {
        if (closed) return
        if (subscribed) void Promise.resolve().then(announce)
        else subscribeFirst()
      },
      reconnecting: () => broken(),
      end: () => broken(),
      // A fresh client holds no subscription: subscribed again (and `connected` said) once it is ready.
      replaced: () => {
        subscribed = false
        broken()
      },
    },
  })

  const emit = (notice: StoreNotice) => {
    for (const listener of [...listeners]) {
      try {
        listener(notice)
      } catch (error) {
        options.log?.error(`a store listener threw: ${(error as Error).message}`)
      }
    }
  }

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
  // `connected` goes out when both connections are ready again (the subscription restored), so
  // whoever re-reads on it finds the command connection working.
  const announce = () => {
    if (closed || announced || !subscribed || !commands.current().isReady || !subscription.current().isReady) return
    announced = true
    everAnnounced = true
    status.update()
    emit({ type: 'connected' })
  }
  const isConnected = () => announced && commands.current().isReady
  const broken = () => {
    announced = false
    status.update()
  }
  // The subscription does not answer: the status says down (announced is false) and why.
  const deaf = (message: string) => {
    if (closed) return
    status.error(message)
    broken()
  }
  // node-redis subscribes again by itself after a reconnect; the first time is ours to do, and
  // ours to do again while it is refused (an ACL that grants the keys but not the channel: Redis 7
  // grants no channel by default). Until then the status says down and why: before, it said
  // `connecting` with no error for as long as the relay ran, and a subscription refused once was
  // never asked for again, so granting the channel changed nothing until a restart.
  let subscribing = false
  let refusedSubscription: string | undefined
  const subscribeFirst = () => {
    const subscriber = subscription.current()
    if (closed || subscribed || subscribing || !subscriber.isReady) return
    subscribing = true
    const subscribing$ = subscriber.subscribe(channel, (message) => {
      const notice = parseNotice(message)
      if (notice) emit(notice)
    })
    withTimeout(subscribing$, timeout)
      .then(
        () => {
          if (subscriber !== subscription.current()) return
          subscribed = true
          refusedSubscription = undefined
          announce()
        },
        (error: unknown) => {
          // Asked of a client let go since: the next one subscribes for itself.
          if (closed || subscriber !== subscription.current()) return
          // Not answered at all: the connection is silent, not refused.
          if (error instanceof NoAnswerError) return replaceDeaf(subscriber, error)
          const message = `cannot subscribe to ${channel}: ${describe(error)}`
          if (message !== refusedSubscription) options.log?.warn(message)
          refusedSubscription = message
          // Commands still work: only the status's reason (and so its state) changes.
          status.error(message)
          status.update()
        },
      )
      .finally(() => (subscribing = false))
  }
  // `stuck`: told of the client when the command went unanswered (the heartbeat's PING replaces it).
  // `command`: what its refusal is kept under (the script's SHA for EVAL and EVALSHA). Default: its name.
  const run = async <T>(args: string[], stuck?: (client: ReturnType<typeof commands.current>) => void, command = args[0]!): Promise<StoreResult<T>> => {
    if (closed) return { ok: false, error: 'store closed' }
    if (!opened) return { ok: false, error: 'store not opened' }
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

  // A subscription can go deaf without failing: a half-open connection (a proxy or NAT that lost
  // it without a reset) delivers nothing and reports nothing, and every notice is missed while
  // the status says up. A PING on it (answered in subscribed mode too) within the command timeout
  // proves it alive; one unanswered makes it reconnect, which subscribes again and announces
  // `connected`, so whoever listens re-reads what it missed.
  let checkingSubscriber = false
  const checkSubscriber = () => {
    const subscriber = subscription.current()
    if (checkingSubscriber || closed || !subscribed || !subscriber.isReady) return
    checkingSubscriber = true
    withTimeout(subscriber.sendCommand(['PING']), timeout)
      .catch((error: unknown) => {
        if (closed || subscriber !== subscription.current() || !subscriber.isReady) return
        replaceDeaf(subscriber, error)
      })
      .finally(() => (checkingSubscriber = false))
  }
  const replaceDeaf = (subscriber: ReturnType<typeof subscription.current>, error: unknown) => {
    // Said once per break, not at every heartbeat of a Redis that stays stuck.
    if (announced) options.log?.warn(`redis: the subscription to ${channel} did not answer within ${timeout} ms; connecting it again`)
    if (error instanceof NoAnswerError) deaf(`the subscription to ${channel}: ${error.message}`)
    if (subscriber === subscription.current()) subscription.replace()
  }

  // The command connection: the heartbeat's PING unanswered while node-redis calls it ready (open,
  // silent: a proxy whose backend is gone, a firewall that lost its state) connects it again.
  // node-redis would write every later command to it for ever, and never reconnect.
  let checkingClient = false
  const checkClient = (every: number) => {
    const client = commands.current()
    if (checkingClient || closed || !client.isReady) return
    const lastOk = status.lastOkTick()
    if (lastOk !== undefined && performance.now() - lastOk < every && status.state() === 'up') return
    checkingClient = true
    void run(['PING'], (silent) => {
      if (silent !== commands.current() || !silent.isReady || closed) return
      options.log?.warn(`redis: the command connection did not answer a PING within ${timeout} ms; connecting it again`)
      commands.replace()
    }).finally(() => (checkingClient = false))
  }

  const map = <A, B>(result: StoreResult<A>, f: (value: A) => B): StoreResult<B> => (result.ok ? { ok: true, value: f(result.value) } : result)

  return {
    kind: 'redis',
    open() {
      if (opened || closed) return
      opened = true
      commands.open()
      subscription.open()
      const every = options.heartbeatMs ?? 2000
      heartbeat = setInterval(() => {
        checkClient(every)
        subscribeFirst()
        checkSubscriber()
      }, every)
      heartbeat.unref?.()
    },
    connected(timeoutMs) {
      if (isConnected()) return Promise.resolve(true)
      if (closed) return Promise.resolve(false)
      return new Promise<boolean>((resolve) => {
        const done = (value: boolean) => {
          clearTimeout(timer)
          listeners.delete(listener)
          resolve(value)
        }
        const listener = (notice: StoreNotice) => {
          if (notice.type === 'connected') done(true)
        }
        const timer = setTimeout(() => done(isConnected()), timeoutMs)
        listeners.add(listener)
      })
    },
    async ticket() {
      return map(await evaluate<string>(TICKET, [clockKey], [String(ttl)]), Number)
    },
    async peek(key) {
      const result = await evaluate<string[]>(READ, [docKey(key), clockKey], ['peek'])
      return map(result, (reply) => {
        const n = Number(reply[1])
        return reply.length < 2 || !Number.isFinite(n) ? undefined : n
      })
    },
    async get(key) {
      const result = await evaluate<string[] | Record<string, string>>(READ, [docKey(key), clockKey], ['get'])
      return map(result, (reply) => readDocument(reply))
    },
    async put(key, doc, lease) {
      const notice = serializeNotice({ type: 'changed', key, version: doc.version })
      const result = await evaluate<[string, string, string?, string?]>(PUT, [docKey(key), clockKey, leaseKey], [
        String(doc.version),
        String(doc.fetchedAt),
        doc.body,
        doc.etag ?? '',
        String(ttl),
        channel,
        notice,
        lease ?? '',
        doc.lineage ?? '',
      ])
      return map(result, ([outcome, current, replaced, unannounced]): PutOutcome => {
        if (replaced) options.log?.warn(`redis held something no relay wrote under ${docKey(key)} (another type, or a version no ticket gave); written over`)
        if (outcome === 'written') status.noticeRefused(unannounced || undefined)
        return outcome === 'older' ? { outcome: 'older', current: Number(current) } : { outcome: outcome as 'written' | 'refreshed' | 'fenced' }
      })
    },
    async keys(keyPrefix, limit) {
      const found: string[] = []
      let cursor = '0'
      const pattern = `${escapeGlob(docKey(keyPrefix))}*`
      do {
        const result = await run<[string, string[]]>(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '200'])
        if (!result.ok) return result
        cursor = String(result.value[0])
        for (const key of result.value[1]) if (found.length < limit) found.push(key.slice(docKey('').length))
      } while (cursor !== '0' && found.length < limit)
      return { ok: true, value: found }
    },
    async acquireLease(owner, ttlMs) {
      const result = await evaluate<[number, number]>(ACQUIRE, [leaseKey], [owner, String(ttlMs)])
      return map(result, ([held, pttl]): LeaseOutcome => (held === 1 ? { held: true } : { held: false, retryInMs: Math.max(0, Number(pttl)) }))
    },
    async renewLease(owner, ttlMs) {
      return map(await evaluate<number>(RENEW, [leaseKey], [owner, String(ttlMs)]), (renewed) => renewed === 1)
    },
    async releaseLease(owner) {
      return map(await evaluate<[number, string]>(RELEASE, [leaseKey], [owner, channel, serializeNotice({ type: 'released' })]), ([released, unannounced]) => {
        if (released === 1) status.noticeRefused(unannounced || undefined, 'released')
        return released === 1
      })
    },
    async raise(name, ttlMs) {
      return map(await run<string>(['SET', flagKey(name), '1', 'PX', String(Math.max(1, Math.round(ttlMs)))]), () => undefined)
    },
    async raised(name) {
      return map(await run<number>(['EXISTS', flagKey(name)]), (count) => Number(count) > 0)
    },
    async lower(name) {
      return map(await run<number>(['DEL', flagKey(name)]), (count) => Number(count) > 0)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    status: () => status.read(),
    // Commands answered (a refusal is an answer) on a connection that is ready.
    answering: () => !closed && status.answering() && commands.current().isReady,
    async close() {
      if (closed) return
      closed = true
      clearInterval(heartbeat)
      listeners.clear()
      await Promise.all([commands.close(timeout), subscription.close(timeout)])
    },
  }
}
