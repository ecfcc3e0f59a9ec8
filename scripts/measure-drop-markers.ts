// What a burst of drop markers (--on-upstream-unauthorized clear, proxy mode, --redis) costs, against
// a real redis-server: N drops at once (a revoked key's users), shared through createSharedContexts
// as the relay does (one ticket for the burst). Redis up: time until all are written, Redis commands
// sent, the event loop's longest delay. Redis cut off (a partition): the owed drops' heap after GC,
// `unshared`, and whether anything grows over the outage; then the time to write them once it heals.
// Redis counts the commands a script runs too (TYPE, TIME, HSET, PEXPIRE, PUBLISH… inside EVALSHA).
// This is what a re-ask round does when the upstream refuses an SDK key every browser sends: it
// drops every held context of that key at once (reaskRounds.ts), one ticket for them all, and each
// context's marker is one write, all queued in one tick. Not a test: read the numbers.   npx tsx --expose-gc scripts/measure-drop-markers.ts [drops] [outageSeconds]
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createRedisStore, createSharedContexts } from '../packages/server/src/index'
import { startRedisServer } from '../test/support/redisServer'
import { startTcpProxy } from '../test/support/tcpProxy'

const drops = Number(process.argv[2] ?? 10_000)
const outageSeconds = Number(process.argv[3] ?? 20)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
const heapMb = () => (gc(), gc(), process.memoryUsage().heapUsed / 1024 / 1024)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const until = async (done: () => boolean | Promise<boolean>, ms = 120_000) => {
  const start = Date.now()
  while (!(await done())) {
    if (Date.now() - start > ms) throw new Error('timed out')
    await sleep(5)
  }
}
const commands = async (redis: { command: (...args: string[]) => Promise<string> }) => {
  const info = await redis.command('INFO', 'commandstats')
  return [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0)
}

const redis = await startRedisServer()
const link = await startTcpProxy(redis.port)
const marker = (key: string, at: number) => ({ body: JSON.stringify({ kind: 'dropped', key, at }), fetchedAt: at })
const keys = Array.from({ length: drops }, (_, i) => `${'k'.repeat(40)}${i.toString().padStart(6, '0')}`)
try {
  const shared = createSharedContexts({ store: createRedisStore({ url: link.url, namespace: 'measure', commandTimeoutMs: 500, reconnectMaxMs: 200 }), take: () => true, held: () => [] })
  await shared.start()

  // Redis up.
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  let before = await commands(redis)
  let start = performance.now()
  const ticket = shared.ticket()
  for (const key of keys) shared.dropped!(key, marker(key, Date.now()), ticket)
  const queued = performance.now() - start
  await until(async () => Number((await redis.command('DBSIZE')).trim().slice(1)) >= drops)
  const written = performance.now() - start
  loop.disable()
  console.log(`up: ${drops} drops queued in ${queued.toFixed(0)} ms, in the store after ${written.toFixed(0)} ms; ${(await commands(redis)) - before} Redis commands; event loop longest delay ${(loop.max / 1e6).toFixed(0)} ms; store failures ${shared.status().failures}, lastError ${shared.status().lastError ?? 'none'}`)

  // Redis cut off.
  await redis.command('FLUSHALL')
  link.cut()
  await until(() => shared.status().state === 'down')
  const heap0 = heapMb()
  start = performance.now()
  const down = shared.ticket()
  for (const key of keys) shared.dropped!(key, marker(key, Date.now()), down)
  await until(() => shared.status().unshared >= drops)
  console.log(`down: unshared ${shared.status().unshared} after ${(performance.now() - start).toFixed(0)} ms; heap +${(heapMb() - heap0).toFixed(1)} MB`)
  for (let s = 0; s < outageSeconds; s += 5) {
    await sleep(5000)
    console.log(`  +${s + 5} s: unshared ${shared.status().unshared}, heap +${(heapMb() - heap0).toFixed(1)} MB, active handles ${(process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length}`)
  }
  before = await commands(redis)
  link.restore()
  start = performance.now()
  await until(() => shared.status().unshared === 0, 300_000)
  console.log(`healed: written in ${(performance.now() - start).toFixed(0)} ms (after the backoff's wait), ${(await commands(redis)) - before} Redis commands, ${(await redis.command('DBSIZE')).trim()} keys`)
  await shared.stop()
} finally {
  await link.close()
  await redis.stop()
}
