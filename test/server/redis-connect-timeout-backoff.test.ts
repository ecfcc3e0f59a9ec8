// A Redis whose listen queue is full (SIGSTOPped, or swamped) never answers the TCP connect: each
// attempt ends on the connect timeout. That is the same Redis that does not answer as one that
// takes the connection and never answers the handshake, and is waited for the same way: ever
// longer (to 30 s in the store), not on the short wait of a connection that was refused or reset
// (2 s at most), which kept a fleet knocking every 1-3 s on a Redis stuck for good. A client double
// stands in for node-redis (it says 'terminated' with the cause its socket was destroyed with);
// the timers are fake.
import { EventEmitter } from 'node:events'
import { ConnectionTimeoutError } from 'redis'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createRedisConnection, type RedisClientLike } from '../../packages/server/src/store/redisConnection'

afterEach(() => vi.useRealTimers())

class FailingClient extends EventEmitter implements RedisClientLike {
  isReady = false
  isOpen = false
  constructor(private readonly cause: () => Error) {
    super()
  }
  async connect() {
    // node-redis (reconnectStrategy: false): 'terminated' with the cause, then the rejection.
    this.emit('terminated', this.cause())
    throw this.cause()
  }
  async close() {}
  destroy() {}
}

/** When each client was made (fake ms), over `ms` of a Redis that fails every connect with `cause`. */
async function attempts(cause: () => Error, ms: number): Promise<number[]> {
  vi.useFakeTimers()
  const made: number[] = []
  const connection = createRedisConnection({
    make: () => {
      made.push(Date.now())
      const client = new FailingClient(cause)
      client.on('error', () => {})
      return client
    },
    handshakeMs: 1000,
    // As the store's: the growing wait for a Redis that does not answer, the short one for one that refuses.
    backoff: (n) => Math.min(100 * 2 ** n, 30_000),
    reconnectBackoff: (n) => Math.min(100 * 2 ** n, 2000),
    on: { error: () => {} },
  })
  connection.open()
  await vi.advanceTimersByTimeAsync(ms)
  await connection.close(10)
  const start = made[0]!
  return made.map((at) => at - start)
}

describe('a Redis that does not answer the TCP connect (listen queue full)', () => {
  it('is asked ever less often: the wait grows past 2 s, to the 30 s of a silent connection', async () => {
    const made = await attempts(() => new ConnectionTimeoutError(), 120_000)
    // On the 2 s cap: ~60 attempts in two minutes. Growing to 30 s: about a dozen.
    expect(made.length).toBeLessThan(15)
    const gaps = made.slice(1).map((at, i) => at - made[i]!)
    expect(Math.max(...gaps)).toBeGreaterThan(2000)
  })

  it('a connection refused (ECONNREFUSED: Redis restarting) is still tried again on the short wait', async () => {
    const made = await attempts(() => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }), 120_000)
    expect(made.length).toBeGreaterThan(50)
  })
})
