// `npm run bench:server`: what the reference server costs next to the cheapest possible server.
// For 6, 100 and 1,000 flags and 10 and 100 connections, autocannon drives (a) @holdfast/server
// from dist and (b) a trivial node:http server answering the same precomputed body (the ceiling),
// each in its own process, in the same run:
//   repeated  the same context again and again (what a page's polling and reloads look like): 200s
//   304       the same, with If-None-Match: the client already holds this answer
//   unique    a new targetingKey per request: every answer evaluated (no cache can help)
// Prints a markdown table: req/s, p50, p99 (ms), the ratio to the ceiling, and each server's CPU
// time per request (from /proc on Linux). 304s are also compared with (c) the floor: a node:http
// server that reads and decodes the request body and finds the answer by it, and does nothing
// else — what any server answering per context must at least do, which the ceiling skips.
//
// How it keeps a shared machine's noise out: the server and the ceiling are measured in turns,
// HOLDFAST_BENCH_ROUNDS (5) pairs of HOLDFAST_BENCH_SECONDS (2) s rounds after a warm-up, and each
// pair gives a ratio measured a few seconds apart. The table shows each figure's median round and
// the median of the pairs' ratios: a burst of someone else's work lands on one pair, not on the
// figure. About seven minutes. Run `npm run build` first.
//
// `--pin` (Linux, two or more cores, `taskset`): the servers run on the last core and the load
// generator on the others, so neither takes the other's core. That steadies the CPU per request
// but gives the server one core for everything (V8's GC and compiler threads included), which
// hurts evaluation-heavy rows: 1,000 flags `unique` p99 160 ms pinned, 60-70 ms not.
//
//   node scripts/bench-server.mjs [--flags 6,100,1000] [--connections 10,100] [--modes repeated,304,unique] [--pin] [--json]
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (!existsSync(join(root, 'packages/server/dist/index.js'))) {
  console.error('packages/server/dist is missing: run `npm run build` first')
  process.exit(1)
}
const arg = (name, fallback, parse = Number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1].split(',').map(parse)
}
const FLAG_COUNTS = arg('flags', [6, 100, 1000])
const CONNECTIONS = arg('connections', [10, 100])
const MODES = arg('modes', ['repeated', '304', 'unique'], String)
const SECONDS = Number(process.env.HOLDFAST_BENCH_SECONDS ?? 2)
const ROUNDS = Number(process.env.HOLDFAST_BENCH_ROUNDS ?? 5)
const PATH = '/ofrep/v1/evaluate/flags'
const CONTEXT = { targetingKey: 'user-42', plan: 'pro', email: 'dana@example.com', country: 'NZ' }
const work = mkdtempSync(join(tmpdir(), 'holdfast-bench-'))
const children = new Set()

// Cores: the servers get the last one, this process (the load generator) the rest.
const CORES = cpus().length
const PINNED = process.argv.includes('--pin') && process.platform === 'linux' && CORES >= 2 && spawnSync('taskset', ['-a', '-cp', `0-${CORES - 2}`, String(process.pid)], { stdio: 'ignore' }).status === 0

function start(args) {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, join(root, 'bench/server/serve.mjs'), ...args]
    const child = PINNED
      ? spawn('taskset', ['-c', String(CORES - 1), ...command], { stdio: ['ignore', 'pipe', 'inherit'] })
      : spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
    children.add(child)
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      const url = out.match(/http:\/\/\S+/)?.[0]
      if (url) resolve({ url, cpu: () => cpuSeconds(child.pid), stop: () => (child.kill(), children.delete(child)) })
    })
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)))
  })
}

function load(url, connections, mode, etag) {
  let n = 0
  const headers = { 'content-type': 'application/json', ...(mode === '304' ? { 'if-none-match': etag } : {}) }
  const request = mode === 'unique'
    ? { method: 'POST', path: PATH, headers, setupRequest: (req) => ({ ...req, body: JSON.stringify({ context: { ...CONTEXT, targetingKey: `user-${n++}` } }) }) }
    : { method: 'POST', path: PATH, headers, body: JSON.stringify({ context: CONTEXT }) }
  return new Promise((resolve, reject) => {
    autocannon({ url, connections, duration: SECONDS, requests: [request] }, (error, result) => (error ? reject(error) : resolve(result)))
  })
}

// User + system CPU seconds of a process (taskset execs node in place, so the pid is the
// server's); undefined where /proc is not there.
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

const summary = (r) => ({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, statuses: Object.keys(r.statusCodeStats ?? {}).join('/') })

// One measured round: the load, and the server's CPU time per answered request during it.
async function measure(server, connections, mode, etag) {
  const before = server.cpu()
  const result = await load(server.url, connections, mode, etag)
  const after = server.cpu()
  const answered = result.requests.total
  return { ...summary(result), cpuUs: before === undefined || after === undefined || answered === 0 ? undefined : ((after - before) / answered) * 1e6 }
}

const median = (values) => {
  const sorted = values.filter((v) => v !== undefined).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
// A cell's median round: each figure's own median (not always from the same round).
const middle = (rounds) => ({
  rps: median(rounds.map((r) => r.rps)),
  p50: median(rounds.map((r) => r.p50)),
  p99: median(rounds.map((r) => r.p99)),
  cpuUs: median(rounds.map((r) => r.cpuUs)),
  errors: rounds.reduce((sum, r) => sum + r.errors, 0),
  statuses: [...new Set(rounds.flatMap((r) => r.statuses.split('/')))].join('/'),
})

const LOAD = loadavg()[0].toFixed(2)
const rows = []
try {
  for (const flags of FLAG_COUNTS) {
    const holdfast = await start(['holdfast', String(flags)])
    const first = await fetch(`${holdfast.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ context: CONTEXT }) })
    const body = await first.text()
    const etag = first.headers.get('etag')
    const file = join(work, `body-${flags}.json`)
    writeFileSync(file, JSON.stringify({ body, etag, request: JSON.stringify({ context: CONTEXT }) }))
    const ceiling = await start(['ceiling', file])
    const floor = await start(['floor', file])
    for (const connections of CONNECTIONS) {
      for (const mode of MODES) {
        // Warm both up (JIT, answer cache), then measure them in turns: each pair of rounds is a
        // few seconds apart, so its ratio compares the two under the same conditions.
        await load(holdfast.url, connections, mode, etag).catch(() => {})
        if (mode !== 'unique') await load(ceiling.url, connections, mode, etag).catch(() => {})
        // 304s are also measured against the floor: a server that reads and decodes the body and
        // looks it up, and nothing else (the ceiling never looks at the body).
        const withFloor = mode === '304'
        if (withFloor) await load(floor.url, connections, mode, etag).catch(() => {})
        const ours = []
        const theirs = []
        const ratios = []
        const floorRatios = []
        const floors = []
        for (let round = 0; round < ROUNDS; round++) {
          const s = await measure(holdfast, connections, mode, etag)
          ours.push(s)
          if (mode === 'unique') continue
          const c = await measure(ceiling, connections, mode, etag)
          theirs.push(c)
          ratios.push(s.rps / c.rps)
          if (!withFloor) continue
          const f = await measure(floor, connections, mode, etag)
          floors.push(f)
          floorRatios.push(s.rps / f.rps)
        }
        // `unique` is compared with the ceiling of `repeated` (the same bytes, precomputed).
        const top = mode === 'unique' ? rows.find((r) => r.flags === flags && r.connections === connections && r.mode === 'repeated')?.ceiling : middle(theirs)
        const server = middle(ours)
        const ratio = mode === 'unique' ? (top ? server.rps / top.rps : undefined) : median(ratios)
        const bottom = withFloor ? { ...middle(floors), ratio: median(floorRatios) } : undefined
        rows.push({ flags, connections, mode, bytes: mode === '304' ? 0 : Buffer.byteLength(body), server, ceiling: top, ratio, ratios: mode === 'unique' ? undefined : ratios, floor: bottom })
        const cpu = (x) => (x === undefined ? '?' : x.toFixed(0))
        process.stderr.write(`  ${flags} flags, ${connections} connections, ${mode}: ${Math.round(server.rps)} req/s (ceiling ${Math.round(top?.rps ?? 0)}), ratio ${ratio?.toFixed(2)} [${ratios.map((r) => r.toFixed(2)).join(' ')}], CPU ${cpu(server.cpuUs)} µs/req (ceiling ${cpu(top?.cpuUs)})${bottom ? `; floor ${Math.round(bottom.rps)} req/s, ratio ${bottom.ratio.toFixed(2)}, CPU ${cpu(bottom.cpuUs)} µs/req` : ''}\n`)
      }
    }
    holdfast.stop()
    ceiling.stop()
    floor.stop()
  }
} finally {
  for (const child of children) child.kill()
  rmSync(work, { recursive: true, force: true })
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify(rows, null, 2))
} else {
  const n = (x, d = 0) => (x === undefined ? '–' : x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }))
  const us = (x) => (x === undefined ? '–' : n(x))
  console.log('| flags | conns | requests | body | req/s | p50 ms | p99 ms | ceiling req/s | ratio | CPU µs/req (ceiling) | ratio to the floor | statuses |')
  console.log('| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  for (const r of rows) {
    const size = r.bytes === 0 ? '0' : r.bytes >= 1024 ? `${n(r.bytes / 1024, 1)} KiB` : `${r.bytes} B`
    const cpu = `${us(r.server.cpuUs)} (${us(r.ceiling?.cpuUs)})`
    console.log(`| ${n(r.flags)} | ${r.connections} | ${r.mode} | ${size} | ${n(r.server.rps)} | ${n(r.server.p50, 1)} | ${n(r.server.p99, 1)} | ${n(r.ceiling?.rps)} | ${n(r.ratio, 2)} | ${cpu} | ${r.floor ? `${n(r.floor.ratio, 2)} (${us(r.floor.cpuUs)} µs)` : ''} | ${r.server.statuses}${r.server.errors ? `, ${r.server.errors} errors` : ''} |`)
  }
  for (const flags of FLAG_COUNTS) {
    const at = (mode) => rows.find((r) => r.flags === flags && r.connections === CONNECTIONS[0] && r.mode === mode)?.server.rps
    if (at('304') && at('repeated') && at('unique')) {
      console.log(`\n${n(flags)} flags, ${CONNECTIONS[0]} connections: a 304 costs ${n(at('repeated') / at('304'), 2)}× a repeated 200 and ${n(at('unique') / at('304'), 2)}× an evaluated 200`)
    }
  }
  const cpu = cpus()
  console.log(`\nnode ${process.version}, ${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}, load average at start ${LOAD}; ${PINNED ? `servers on core ${CORES - 1}, load generator on the others` : 'not pinned to cores'}; median of ${ROUNDS} rounds of ${SECONDS} s, server and ceiling in turns after a warm-up, ratio the median of the pairs'; autocannon ${JSON.parse((await import('node:fs')).readFileSync(join(root, 'node_modules/autocannon/package.json'), 'utf8')).version}`)
}
process.exit(0)
