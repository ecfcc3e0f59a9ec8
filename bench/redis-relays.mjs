// Two relays sharing one Redis (--redis): how long a change takes from the polling relay to the
// other one (the Redis path: publish, notice, read, apply), what a bulk request costs on the
// follower with Redis up and with Redis stuck (SIGSTOP: serving must not notice), and how long the
// lease takes to move when the leader closes. Starts its own redis-server on a free port and a
// local flags URL; uses the built package (`npm run build` first).
// Usage: node bench/redis-relays.mjs [--changes 40] [--requests 2000]
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { createFlagServer, silentLogger } from '../packages/server/dist/index.js'

const { values } = parseArgs({ options: { changes: { type: 'string', default: '40' }, requests: { type: 'string', default: '2000' } } })
const CHANGES = Number(values.changes)
const REQUESTS = Number(values.requests)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const quantile = (xs, q) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]
const ms = (x) => `${x.toFixed(1)} ms`

async function listen(server) {
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return server.address().port
}

// The flags URL: 100 flags, the first one flipped by the benchmark.
let variant = 'off'
const document = () => {
  const flags = {}
  for (let i = 0; i < 100; i++) flags[`flag-${i}`] = { state: 'ENABLED', variants: { on: true, off: false }, defaultVariant: i === 0 ? variant : 'off' }
  return JSON.stringify({ flags })
}
const upstream = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' })
  res.end(document())
})
const flagsUrl = `http://127.0.0.1:${await listen(upstream)}/flags.json`

const probe = createServer()
const redisPort = await listen(probe)
await new Promise((r) => probe.close(r))
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
process.on('exit', () => redis.kill('SIGKILL'))
await sleep(300)

const relay = () => createFlagServer({ flagsUrl, pollIntervalSeconds: 0.05, redis: { url: `redis://127.0.0.1:${redisPort}`, leaseTtlMs: 2000 }, port: 0, logger: silentLogger })
const status = async (s) => (await (await fetch(`${s.url}/holdfast/v1/status`)).json()).redis
const value = async (s) => {
  const res = await fetch(`${s.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u"}}' })
  return (await res.json()).flags.find((f) => f.key === 'flag-0').value
}

const relays = [await relay(), await relay()]
for (;;) {
  const roles = await Promise.all(relays.map(async (r) => (await status(r)).role))
  if (roles.includes('leader') && roles.includes('follower')) break
  await sleep(20)
}
const leader = (await status(relays[0])).role === 'leader' ? relays[0] : relays[1]
const follower = relays.find((r) => r !== leader)

const gaps = []
for (let i = 0; i < CHANGES; i++) {
  const want = i % 2 === 0
  variant = want ? 'on' : 'off'
  let leaderAt
  for (;;) {
    const [l, f] = await Promise.all([value(leader), value(follower)])
    const at = performance.now()
    if (l === want) leaderAt ??= at
    if (f === want) {
      gaps.push(at - (leaderAt ?? at))
      break
    }
    await sleep(1)
  }
}

async function latency() {
  const times = []
  for (let i = 0; i < REQUESTS; i++) {
    const start = performance.now()
    await value(follower)
    times.push(performance.now() - start)
  }
  return `p50 ${ms(quantile(times, 0.5))}, p99 ${ms(quantile(times, 0.99))}`
}
const up = await latency()
redis.kill('SIGSTOP')
const stuck = await latency()
redis.kill('SIGCONT')

while ((await status(follower)).state !== 'up') await sleep(20)
const closing = performance.now()
await leader.close()
while ((await status(follower)).role !== 'leader') await sleep(5)
const handover = performance.now() - closing

console.log(`Two relays on one Redis (poll every 50 ms, ${CHANGES} changes, ${REQUESTS} requests per row)`)
console.log(`  change: leader serving -> follower serving   median ${ms(quantile(gaps, 0.5))}, p90 ${ms(quantile(gaps, 0.9))}, max ${ms(Math.max(...gaps))}`)
console.log(`  follower bulk request, Redis up              ${up}`)
console.log(`  follower bulk request, Redis stuck (SIGSTOP) ${stuck}`)
console.log(`  lease hand-over after the leader closes      ${ms(handover)} (TTL 2000 ms)`)
await follower.close()
upstream.close()
redis.kill('SIGTERM')
