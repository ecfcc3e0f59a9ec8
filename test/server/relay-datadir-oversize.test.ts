// A data dir holding a file far larger than any generation the relay writes (a disk error, a stray
// copy, a half-restored backup): the relay, a real holdfast-server process, must not read it whole.
// It skips it, says so, and serves the next older good generation, at once and in little memory.
// Files over 2 GiB, and the sparse ones below, cost no disk (truncate), only the read of them did.
// Likewise the file `holdfast-server snapshot --out` finds in place (read to weigh the new one),
// and a dead-letter file too large for `events replay-dead-letters` to read.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { appendFile, mkdir, open, readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { deadLetterPath } from '@holdfast/server'
import { createGenerationStore, encodeGeneration, MAX_GENERATION_BYTES } from '../../packages/server/src/flags/generations'
import { seeded, startEventsReceiver } from '../support/eventsReceiver'
import { serverProcess } from './events-process'
import { post, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

const generation = (number: number) => `gen-${String(number).padStart(12, '0')}.json`

// A generation of three flags, all `variant`, as a relay on --flags-url writes one; `padding`
// spaces after the record (JSON.parse takes them) make the file as large as a test wants.
function definitionsGeneration(variant: 'on' | 'off', padding = 0): string {
  const record = JSON.stringify({ kind: 'definitions', text: JSON.stringify(booleanFlags(3, variant)), version: `v-${variant}`, fetchedAt: Date.now() - 60_000 })
  return encodeGeneration(record + ' '.repeat(padding))
}

// Starts the relay on `dataDir` with its upstream down; what it serves, its log, how long the
// start took (spawn to first answer) and its peak resident memory (VmHWM) once it answered.
async function startOn(dataDir: string) {
  const upstream = await startUpstream({ status: 503, text: 'down' })
  const started = performance.now()
  const server = serverProcess(['--flags-url', `${upstream.url}/flags.json`, '--data-dir', dataDir, '--port', '0', '--max-event-loop-delay', '0'])
  const url = await server.url(60_000)
  const response = await post(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })
  const body = (await response.json()) as { flags: Array<{ key: string; value: unknown }>; metadata?: { holdfast?: { source?: string } } }
  const startMs = Math.round(performance.now() - started)
  const status = await readFile(`/proc/${server.child.pid}/status`, 'utf8')
  const peakMb = Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024)
  return { server, url, response, body, startMs, peakMb }
}

describe('a data-dir generation over the bound (64 MiB)', () => {
  it('a valid generation slightly over the bound is skipped, named in the log, and the older good one served', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, generation(1)), definitionsGeneration('off'))
    // Checksum and record hold: before, it was loaded and served.
    const over = definitionsGeneration('on', MAX_GENERATION_BYTES)
    await writeFile(join(dir, generation(2)), over)
    expect(Buffer.byteLength(over) - MAX_GENERATION_BYTES).toBeLessThan(1024)
    const { server, response, body, startMs, peakMb } = await startOn(dir)
    console.info(`valid generation over the bound: start ${startMs} ms, peak RSS ${peakMb} MB`)
    expect(response.status).toBe(200)
    expect(body.metadata?.holdfast?.source).toBe('data-dir')
    expect(body.flags.find((flag) => flag.key === 'f0')?.value).toBe(false)
    await waitFor(() => server.output().includes(generation(2)), 5000)
    expect(server.output()).toMatch(new RegExp(`skipped data-dir generation \\S*${generation(2)}: unreadable \\(larger than 64 MiB: ${Buffer.byteLength(over)} bytes\\)`))
  })

  it('sparse files of 1.9 GB and 6 GB are skipped without being read: the start stays quick and small', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, generation(1)), definitionsGeneration('off'))
    for (const [number, bytes] of [[2, 1.9e9], [3, 6e9]] as const) {
      await writeFile(join(dir, generation(number)), '')
      await truncate(join(dir, generation(number)), bytes)
    }
    const { body, server, startMs, peakMb } = await startOn(dir)
    console.info(`sparse generations of 1.9 GB and 6 GB: start ${startMs} ms, peak RSS ${peakMb} MB`)
    expect(body.metadata?.holdfast?.source).toBe('data-dir')
    expect(body.flags.find((flag) => flag.key === 'f0')?.value).toBe(false)
    expect(server.output()).toContain(`${generation(2)}: unreadable (larger than 64 MiB: 1900000000 bytes)`)
    expect(server.output()).toContain(`${generation(3)}: unreadable (larger than 64 MiB: 6000000000 bytes)`)
    // Before: the 1.9 GB file was read whole (then refused as a string too long), ~2 GB of memory.
    expect(peakMb).toBeLessThan(400)
  })

  it('the generations skipped are named in the status and counted in the metrics, not in the log only', async () => {
    // Yesterday's generation 1 served because the three newer ones are torn, corrupt and too large:
    // before, /status and /metrics said nothing of it, only a warning at start in the log.
    const dir = await tempDir()
    await writeFile(join(dir, generation(1)), definitionsGeneration('off'))
    const good = definitionsGeneration('on')
    await writeFile(join(dir, generation(2)), good.slice(0, good.length - 20))
    await writeFile(join(dir, generation(3)), good.replace('v-on', 'v-ox'))
    await writeFile(join(dir, generation(4)), '')
    await truncate(join(dir, generation(4)), MAX_GENERATION_BYTES + 1)
    const { url, body } = await startOn(dir)
    expect(body.flags.find((flag) => flag.key === 'f0')?.value).toBe(false)
    const status = (await (await fetch(`${url}/holdfast/v1/status`)).json()) as { dataDir: Record<string, unknown> }
    expect(status.dataDir).toMatchObject({
      loadedGeneration: 1,
      skipped: [
        { generation: 4, path: join(dir, generation(4)), reason: 'too-large', detail: expect.stringContaining('larger than 64 MiB') },
        { generation: 3, reason: 'corrupt', detail: 'checksum mismatch' },
        { generation: 2, reason: 'torn', detail: expect.stringContaining('torn write') },
      ],
      skippedBy: { 'too-large': 1, corrupt: 1, torn: 1 },
    })
    const metrics = await (await fetch(`${url}/metrics`)).text()
    for (const reason of ['torn', 'corrupt', 'too-large']) expect(metrics).toContain(`holdfast_relay_data_dir_skipped_total{reason="${reason}"} 1`)
  })

  it('a data dir whose newest generation is good has no skipped part and no skipped sample', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, generation(1)), definitionsGeneration('on'))
    const { url } = await startOn(dir)
    const status = (await (await fetch(`${url}/holdfast/v1/status`)).json()) as { dataDir: Record<string, unknown> }
    expect(status.dataDir.loadedGeneration).toBe(1)
    expect(status.dataDir).not.toHaveProperty('skipped')
    expect(await (await fetch(`${url}/metrics`)).text()).not.toMatch(/^holdfast_relay_data_dir_skipped_total\{/m)
  })

  it('a payload the relay would not read back is not written either: the older generations stay', async () => {
    const dir = await tempDir()
    const store = createGenerationStore({ dir, keep: 2, maxBytes: 4096 })
    await store.save('{"n":1}')
    await store.save('{"n":2}')
    // Written, it would have pruned generation 1, and a restart would refuse it: none left to load.
    await expect(store.save(`{"n":3,"pad":"${'x'.repeat(5000)}"}`)).rejects.toThrow(/larger than/)
    const { loaded, skipped } = await createGenerationStore({ dir, maxBytes: 4096 }).loadNewest()
    expect([loaded?.payload, skipped]).toEqual(['{"n":2}', []])
  })
})

// `holdfast-server ARGS` (snapshot or events) in a process of its own: its exit code, what it
// printed, its peak memory (maxRSS) and how long it took.
// `node`: options for that process (a heap bound: `--max-old-space-size=64`).
async function commandInProcess(args: string[], node: string[] = []): Promise<{ code: number; lines: string[]; peakMb: number; ms: number }> {
  const script = `import { runSnapshotCli } from './packages/server/src/snapshotCli.ts'
import { runEventsCli } from './packages/server/src/events/replayCli.ts'
const [command, ...rest] = process.argv.slice(1)
const lines = []
const io = { out: (l) => lines.push(l), err: (l) => lines.push(l) }
const code = command === 'snapshot' ? await runSnapshotCli(rest, io) : await runEventsCli(rest, io)
console.log(JSON.stringify({ code, lines, peakMb: Math.round(process.resourceUsage().maxRSS / 1024) }))`
  const started = performance.now()
  const { stdout } = await promisify(execFile)(process.execPath, [...node, '--import', 'tsx', '--input-type=module', '-e', script, ...args], { cwd: new URL('../..', import.meta.url).pathname })
  return { ...(JSON.parse(stdout) as { code: number; lines: string[]; peakMb: number }), ms: Math.round(performance.now() - started) }
}

describe('holdfast-server events replay-dead-letters on a large dead-letter file', () => {
  it('a sparse 1 GB dead-letter file (one run of bytes with no newline): streamed, kept as one unreadable line, untouched, in little memory', async () => {
    const spool = join(await tempDir(), 'spool')
    const letters = deadLetterPath(spool)
    await mkdir(dirname(letters), { recursive: true })
    await writeFile(letters, '')
    await truncate(letters, 2 ** 30)
    const { code, lines, peakMb, ms } = await commandInProcess(['events', 'replay-dead-letters', '--events-spool', spool, '--events-upstream', 'http://127.0.0.1:9/events'])
    console.info(`replay-dead-letters on a sparse 1 GB file: ${ms} ms, peak RSS ${peakMb} MB`)
    expect(code).toBe(1)
    // Before the streaming read: refused unread as more than one string can hold (and before that,
    // "Invalid string length" after reading the whole GB, ~650 MB of memory).
    expect(lines.join('\n')).toContain('0 taken by the sink and removed, 0 refused again and kept, 1 unreadable line(s) kept')
    expect((await stat(letters)).size).toBe(2 ** 30)
    expect(peakMb).toBeLessThan(200)
  })

  it('a sparse 256 MB junk line beside a letter the sink takes: the letter leaves, the junk line is kept as it was, a hole, not 256 MB of zeros written', async () => {
    const spool = join(await tempDir(), 'spool')
    const letters = deadLetterPath(spool)
    await mkdir(dirname(letters), { recursive: true })
    const letter = `${JSON.stringify({ deadLetteredAt: 1, status: 413, event: { id: 'dl-sparse', type: 'custom', name: 'clicked', time: 1_700_000_000_000 } })}\n`
    await writeFile(letters, letter)
    // A junk line: a hole of 256 MiB (a disk fault, a `truncate`), then its newline.
    await truncate(letters, letter.length + 2 ** 28)
    await appendFile(letters, '\n')
    const before = await stat(letters)
    expect(before.blocks * 512).toBeLessThan(2 ** 20)
    const receiver = await startEventsReceiver()
    try {
      const { code, lines } = await commandInProcess(['events', 'replay-dead-letters', '--events-spool', spool, '--events-upstream', receiver.url])
      expect(code).toBe(1)
      expect(lines.join('\n')).toContain('1 taken by the sink and removed, 0 refused again and kept, 1 unreadable line(s) kept')
      const after = await stat(letters)
      expect(after.size).toBe(2 ** 28 + 1)
      // Before: the copy wrote the hole out, 256 MiB on the disk the relay's spool shares.
      expect(after.blocks * 512).toBeLessThan(2 ** 20)
      const head = Buffer.alloc(16)
      const handle = await open(letters, 'r')
      await handle.read(head, 0, 16, 2 ** 28 - 16)
      await handle.close()
      expect(head.equals(Buffer.alloc(16))).toBe(true)
    } finally {
      await receiver.close()
    }
  })

  it('a file of 1,000,000 short unreadable lines (junk a disk fault or a hand edit left) is kept as it is, within a 64 MB heap', { timeout: 60_000 }, async () => {
    const spool = join(await tempDir(), 'spool')
    const letters = deadLetterPath(spool)
    await mkdir(dirname(letters), { recursive: true })
    await writeFile(letters, '-\n'.repeat(1_000_000))
    // Before: every unreadable line waited in the batch being gathered until it held --batch
    // events, which never came: the command died out of memory (5,000,000 such lines: ~900 MB).
    const { code, lines, peakMb, ms } = await commandInProcess(['events', 'replay-dead-letters', '--events-spool', spool, '--events-upstream', 'http://127.0.0.1:9/events'], ['--max-old-space-size=64'])
    console.info(`replay-dead-letters on 1,000,000 unreadable lines: ${ms} ms, peak RSS ${peakMb} MB`)
    expect(code).toBe(1)
    expect(lines.join('\n')).toContain('0 taken by the sink and removed, 0 refused again and kept, 1000000 unreadable line(s) kept')
    expect((await stat(letters)).size).toBe(2_000_000)
  })

  it('a 200 MB file of dead letters is read line by line: the sink takes the first batch, then fails; the rest is kept byte for byte in bounded memory', async () => {
    const spool = join(await tempDir(), 'spool')
    const letters = deadLetterPath(spool)
    await mkdir(dirname(letters), { recursive: true })
    // 100,000 letters of ~2 KB (a metadata string), then a line torn by a crash mid-append.
    const pad = 'x'.repeat(2000)
    const kept = createHash('sha256')
    const out = createWriteStream(letters)
    for (let i = 0; i < 100_000; i++) {
      const line = `${JSON.stringify({ deadLetteredAt: 1, status: 413, event: { id: `dl-${i}`, type: 'custom', name: 'clicked', time: 1_700_000_000_000, metadata: { pad } } })}\n`
      if (i >= 100) kept.update(line)
      if (!out.write(line)) await once(out, 'drain')
    }
    out.end('{"deadLetteredAt":1,"status":413,"event":{"id":"dl-torn"')
    await once(out, 'finish')
    kept.update('{"deadLetteredAt":1,"status":413,"event":{"id":"dl-torn"\n')
    const bytes = (await stat(letters)).size
    expect(bytes).toBeGreaterThan(200e6)
    // The sink takes the first request (100 events) and answers 500 to the second: a seed whose
    // first draw is not a failure and whose second is.
    const seed = Array.from({ length: 1000 }, (_, s) => s).find((s) => {
      const draw = seeded(s)
      return draw() >= 0.5 && draw() < 0.5
    })!
    const receiver = await startEventsReceiver({ failureRate: 0.5, failures: ['500'], seed })
    try {
      const { code, lines, peakMb, ms } = await commandInProcess(['events', 'replay-dead-letters', '--events-spool', spool, '--events-upstream', receiver.url])
      console.info(`replay-dead-letters on a ${Math.round(bytes / 1e6)} MB file: ${ms} ms, peak RSS ${peakMb} MB`)
      expect(code).toBe(1)
      expect(receiver.requests.map((r) => r.outcome)).toEqual([202, 500])
      expect([...receiver.acceptedTimes().keys()]).toEqual(Array.from({ length: 100 }, (_, i) => `dl-${i}`))
      expect(lines.join('\n')).toMatch(/100 taken by the sink and removed, 99900 refused again and kept, 1 unreadable line\(s\) kept/)
      // Nothing lost: the file is what it was without the 100 taken, the torn line kept (ended).
      expect(createHash('sha256').update(await readFile(letters)).digest('hex')).toBe(kept.digest('hex'))
      // Before: read as one string, split and parsed whole (~1 GB of memory for 200 MB).
      expect(peakMb).toBeLessThan(250)
    } finally {
      await receiver.close()
    }
  })
})

describe('holdfast-server snapshot --out a file over the bound (64 MiB)', () => {
  it('a sparse 1.9 GB file at --out is not read whole: it is no snapshot, and is replaced by one', async () => {
    const out = join(await tempDir(), 'flags.snapshot.json')
    await writeFile(out, '')
    await truncate(out, 1.9e9)
    const { code, peakMb, ms } = await commandInProcess(['snapshot', '--flags', 'examples/flags.json', '--out', out])
    console.info(`snapshot --out over a sparse 1.9 GB file: ${ms} ms, peak RSS ${peakMb} MB`)
    expect(code).toBe(0)
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ definitions: { flags: expect.any(Object) } })
    // Before: the whole 1.9 GB read into memory, then dropped as a string too long.
    expect(peakMb).toBeLessThan(400)
  })
})
