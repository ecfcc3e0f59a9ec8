// npm run bench:events — the events path of @holdfast/server under load (built package, real
// processes on 127.0.0.1, autocannon):
//   1. the sink: events/s and latency with fsync before every 202 (group commit) against the same
//      server keeping events in memory only — the price of durability — and the fsync figures;
//   2. the relay: events/s accepted through the durable spool and delivered to an upstream sink;
//   3. RSS of a sink over a long run (default 60 s; BENCH_RSS_SECONDS to change).
// Figures are noisy on a shared machine; the table says what was measured and how.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const root = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(root, 'packages/server/dist/bin.js')
const CELL_SECONDS = Number(process.env.BENCH_CELL_SECONDS ?? 5)
const RSS_SECONDS = Number(process.env.BENCH_RSS_SECONDS ?? 60)
const CONNECTIONS = 10
const children = new Set()

function startServer(args) {
  const child = spawn(process.execPath, [BIN, '--flags', join(root, 'examples/flags.json'), '--port', '0', '--max-event-loop-delay', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOLDFAST_API_KEY: undefined },
  })
  children.add(child)
  let output = ''
  child.stdout.on('data', (c) => (output += c))
  child.stderr.on('data', (c) => (output += c))
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const match = output.match(/at (http:\/\/\S+)/)
      if (match) {
        clearInterval(timer)
        resolve({ url: match[1], child, stop: () => stop(child) })
      } else if (child.exitCode !== null) {
        clearInterval(timer)
        reject(new Error(output))
      }
    }, 20)
  })
}

function stop(child) {
  children.delete(child)
  if (child.exitCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', resolve)
    child.kill('SIGTERM')
  })
}

const rssMiB = (pid) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))
  return Number(line.split(/\s+/)[1]) / 1024
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line ? Number(line.split(' ')[1]) : 0
}

const run = (label) => `${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
function load(url, batchSize, seconds) {
  const prefix = run('b')
  let n = 0
  const body = () => {
    const events = []
    for (let i = 0; i < batchSize; i++) events.push({ id: `${prefix}-${n++}`, type: 'custom', name: 'clicked', time: Date.now(), targetingKey: 'user-1', metadata: { plan: 'pro' } })
    return JSON.stringify({ events })
  }
  return autocannon({
    url: `${url}/holdfast/v1/events`,
    connections: CONNECTIONS,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: body() }) }],
  })
}

const fmt = (n, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const dir = await mkdtemp(join(tmpdir(), 'holdfast-bench-events-'))
try {
  // 1. The sink: memory only vs the events file with fsync before each 202.
  const rows = []
  for (const batch of [1, 10, 100]) {
    for (const mode of ['memory', 'file+fsync']) {
      const server = await startServer(mode === 'memory' ? [] : ['--events-file', join(dir, `events-${batch}.jsonl`)])
      const result = await load(server.url, batch, CELL_SECONDS)
      const syncs = await metric(server.url, 'holdfast_events_fsync_seconds_count')
      const syncSeconds = await metric(server.url, 'holdfast_events_fsync_seconds_sum')
      const ok = result['2xx']
      rows.push({ batch, mode, reqs: ok / result.duration, events: (ok * batch) / result.duration, p50: result.latency.p50, p99: result.latency.p99, errors: result.non2xx + result.errors, syncs, syncMs: syncs ? (syncSeconds / syncs) * 1000 : 0, perSync: syncs ? ok / syncs : 0 })
      await server.stop()
    }
  }
  console.log(`\n### Events sink (${CONNECTIONS} connections, ${CELL_SECONDS} s per row)\n`)
  console.log('| batch | storage | requests/s | events/s | p50 ms | p99 ms | non-2xx | fsyncs | mean fsync ms | batches per fsync | events/s vs memory |')
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const row of rows) {
    const memory = rows.find((r) => r.batch === row.batch && r.mode === 'memory')
    console.log(`| ${row.batch} | ${row.mode} | ${fmt(row.reqs)} | ${fmt(row.events)} | ${row.p50} | ${row.p99} | ${row.errors} | ${fmt(row.syncs)} | ${row.syncs ? fmt(row.syncMs, 2) : '–'} | ${row.syncs ? fmt(row.perSync, 1) : '–'} | ${fmt(row.events / memory.events, 2)} |`)
  }

  // 2. Through the relay's spool to an upstream sink.
  const sink = await startServer(['--events-file', join(dir, 'upstream.jsonl')])
  const relay = await startServer(['--events-upstream', `${sink.url}/holdfast/v1/events`, '--events-spool', join(dir, 'spool')])
  const spoolRows = []
  for (const batch of [10, 100]) {
    const before = await metric(relay.url, 'holdfast_events_forwarded_total{outcome="delivered"}')
    const acceptedBefore = await metric(relay.url, 'holdfast_events_accepted_total')
    const started = Date.now()
    const result = await load(relay.url, batch, CELL_SECONDS)
    // Counted by the relay once the last requests in flight are answered (autocannon leaves them out).
    let accepted = -1
    for (let now = 0; now !== accepted; await new Promise((r) => setTimeout(r, 200))) {
      accepted = now
      now = (await metric(relay.url, 'holdfast_events_accepted_total')) - acceptedBefore
    }
    let delivered = 0
    while ((delivered = (await metric(relay.url, 'holdfast_events_forwarded_total{outcome="delivered"}')) - before) < accepted && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 100))
    const drainedSeconds = (Date.now() - started) / 1000
    spoolRows.push({ batch, accepted: accepted / result.duration, p50: result.latency.p50, p99: result.latency.p99, delivered: delivered / drainedSeconds, errors: result.non2xx + result.errors, lost: accepted - delivered })
  }
  const relaySyncs = await metric(relay.url, 'holdfast_events_fsync_seconds_count')
  const relaySyncMs = relaySyncs ? ((await metric(relay.url, 'holdfast_events_fsync_seconds_sum')) / relaySyncs) * 1000 : 0
  await relay.stop()
  await sink.stop()
  console.log(`\n### Events through the relay's spool (${CONNECTIONS} connections, ${CELL_SECONDS} s of load per row; relay and sink both fsync)\n`)
  console.log('| batch | accepted events/s (202 after spool fsync) | p50 ms | p99 ms | delivered events/s (load start → all delivered) | non-2xx | not delivered |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const row of spoolRows) console.log(`| ${row.batch} | ${fmt(row.accepted)} | ${row.p50} | ${row.p99} | ${fmt(row.delivered)} | ${row.errors} | ${row.lost} |`)
  console.log(`\nRelay spool fsyncs: ${fmt(relaySyncs)}, mean ${fmt(relaySyncMs, 2)} ms.`)

  // 3. RSS of a sink over a long run.
  const long = await startServer(['--events-file', join(dir, 'long.jsonl')])
  const samples = []
  const sampler = setInterval(() => samples.push(rssMiB(long.child.pid)), 1000)
  const startRss = rssMiB(long.child.pid)
  const result = await load(long.url, 10, RSS_SECONDS)
  clearInterval(sampler)
  const events = result['2xx'] * 10
  const remembered = await metric(long.url, 'holdfast_events_dedupe_ids')
  await long.stop()
  const warm = samples.slice(Math.min(10, Math.floor(samples.length / 3)))
  console.log(`\n### Sink RSS over a ${RSS_SECONDS} s run (batches of 10, ${CONNECTIONS} connections)\n`)
  console.log('| events accepted | ids remembered | RSS at start MiB | RSS after warm-up (10 s) MiB | RSS max MiB | RSS at end MiB | spread after warm-up MiB |')
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  console.log(`| ${fmt(events)} | ${fmt(remembered)} | ${fmt(startRss, 1)} | ${fmt(warm[0], 1)} | ${fmt(Math.max(...samples), 1)} | ${fmt(samples.at(-1), 1)} | ${fmt(Math.max(...warm) - Math.min(...warm), 1)} |`)
  console.log('\nThe dedupe window (100,000 ids by default) fills during the warm-up; after that memory is flat.')
} finally {
  await Promise.all([...children].map(stop))
  await rm(dir, { recursive: true, force: true })
}
