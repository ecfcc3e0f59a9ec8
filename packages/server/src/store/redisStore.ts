import { createClient } from 'redis'
import type { SharedStore, StoreNotice } from './sharedStore'
import { parseNotice } from './notice'
import { createRedisCommands } from './redisCommands'
import { createRedisConnection, NoAnswerError, withTimeout } from './redisConnection'
import { createRedisDocuments } from './redisDocuments'
import { describe } from './redisReplies'
import { createRedisStatus } from './redisStatus'
import { DEFAULT_BACKUP_TTL_MS, DEFAULT_RECONNECT_MAX_MS, DEFAULT_TIMEOUT_MS, REPLACE_MAX_MS, type RedisStoreOptions } from './redisStoreOptions'

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

  const { run, evaluate } = createRedisCommands({ commands, status, timeout, opened: () => opened, closed: () => closed })

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

  const documents = createRedisDocuments({ commands: { run, evaluate }, prefix, channel, ttl, status, log: options.log })

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
    ...documents,
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
