// Cold start of the relay from its data dir, with the upstream down: the time from spawning
// `holdfast-server --flags-url … --data-dir …` to the first 200 on a bulk evaluation, compared with
// the same binary on the same 1,000 flags from a local `--flags` file (most of either is Node and
// module start-up), and the same start in process (`createFlagServer`). Uses the built package
// (`npm run build` first). Usage: node bench/relay-coldstart.mjs [--flags 1000] [--runs 7]
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(root, 'packages/server/dist/bin.js')
const { values } = parseArgs({ options: { flags: { type: 'string', default: '1000' }, runs: { type: 'string', default: '7' } } })
const FLAGS = Number(values.flags)
const RUNS = Number(values.runs)

function definitions() {
  const flags = {}
  for (let i = 0; i < FLAGS; i++) {
    flags[`flag-${i}`] = {
      state: 'ENABLED',
      variants: { on: true, off: false },
      defaultVariant: 'off',
      targeting: { if: [{ in: [{ var: 'plan' }, ['pro', 'team']] }, 'on', 'off'] },
    }
  }
  return { flags }
}

/** Spawns the CLI and resolves with ms from spawn to the first 200 bulk answer. */
async function timeToFirstAnswer(args) {
  const started = process.hrtime.bigint()
  const child = spawn(process.execPath, [BIN, ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (c) => (output += c))
  child.stderr.on('data', (c) => (output += c))
  try {
    let url
    while (!url) {
      const match = output.match(/serving .* at (http:\/\/\S+)/)
      if (match) url = match[1]
      else if (child.exitCode !== null) throw new Error(`exited:\n${output}`)
      else await new Promise((r) => setTimeout(r, 2))
    }
    for (;;) {
      const response = await fetch(`${url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u","plan":"pro"}}' })
      const body = await response.json()
      if (response.status === 200 && body.flags.length === FLAGS) return { ms: Number(process.hrtime.bigint() - started) / 1e6, holdfast: body.metadata.holdfast }
      await new Promise((r) => setTimeout(r, 2))
    }
  } finally {
    child.kill('SIGKILL')
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

const dir = await mkdtemp(join(tmpdir(), 'holdfast-coldstart-'))
try {
  const document = JSON.stringify(definitions())
  const file = join(dir, 'flags.json')
  await writeFile(file, document)
  // An upstream that serves the document once, so the relay writes its data dir…
  const upstream = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(document))
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r))
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}/flags.json`
  const dataDir = join(dir, 'data')
  const seed = spawn(process.execPath, [BIN, '--flags-url', upstreamUrl, '--data-dir', dataDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let seedOutput = ''
  seed.stdout.on('data', (c) => (seedOutput += c))
  while (!/serving .* at http/.test(seedOutput)) await new Promise((r) => setTimeout(r, 10))
  const seedUrl = seedOutput.match(/serving .* at (http:\/\/\S+)/)[1]
  for (;;) {
    const status = await (await fetch(`${seedUrl}/holdfast/v1/status`)).json()
    if (status.dataDir?.lastGeneration) break
    await new Promise((r) => setTimeout(r, 10))
  }
  seed.kill('SIGKILL')
  // …and then goes away: every measured start has only the data dir.
  await new Promise((r) => upstream.close(r))

  const fromDataDir = []
  const fromFile = []
  let holdfast
  for (let i = 0; i < RUNS; i++) {
    const relay = await timeToFirstAnswer(['--flags-url', upstreamUrl, '--data-dir', dataDir, '--upstream-timeout', '1'])
    fromDataDir.push(relay.ms)
    holdfast = relay.holdfast
    fromFile.push((await timeToFirstAnswer(['--flags', file])).ms)
  }
  // In process: what the relay itself adds once Node and its modules are loaded (opening the data
  // dir, verifying the checksum, compiling the flags, listening) to the first 200.
  const { createFlagServer, silentLogger } = await import(join(root, 'packages/server/dist/index.js'))
  const inProcess = []
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now()
    const server = await createFlagServer({ flagsUrl: upstreamUrl, dataDir, port: 0, upstreamTimeoutMs: 1000, logger: silentLogger })
    const response = await fetch(`${server.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"context":{"targetingKey":"u","plan":"pro"}}' })
    if (response.status !== 200 || (await response.json()).flags.length !== FLAGS) throw new Error(`in-process start answered ${response.status}`)
    inProcess.push(performance.now() - started)
    await server.close()
  }
  const row = (name, xs) => `| ${name} | ${median(xs).toFixed(0)} ms | ${Math.min(...xs).toFixed(0)} ms | ${Math.max(...xs).toFixed(0)} ms |`
  console.log(`Cold start to the first 200 bulk answer, ${FLAGS} flags, ${RUNS} runs each (node ${process.version}):\n`)
  console.log('| start | median | min | max |\n| --- | --- | --- | --- |')
  console.log(row('relay, data dir, upstream down', fromDataDir))
  console.log(row('--flags FILE (baseline)', fromFile))
  console.log(row('relay, data dir, in process (no Node/module start-up)', inProcess))
  console.log(`\nserved from the data dir as: ${JSON.stringify(holdfast)}`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
