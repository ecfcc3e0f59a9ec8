// An events spool (or events file) that hangs at START: a network mount whose server is gone. Its
// lock and its open never answer. Before, the start waited for ever: with --events-upstream and a
// --data-dir, the relay printed nothing, never listened, and a supervisor saw it "running". Now
// the open is bounded by the data dir's `dataDirTiming.openMs` (5 s) and then does what an
// unusable spool does: the start is refused, naming the dir (a relay must not answer 202 for events
// it cannot spool). The process must then end: a normal exit waits for the hung call for ever.
// The hang is real: a FIFO as the lock blocks the lock's read of its holder in a libuv thread, as
// a dead NFS server does (see relay-datadir-hung.test.ts).
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { dataDirTiming } from '../../packages/server/src/flags/dataDirTiming'
import { faultyFileSystem } from './events-faults'
import { post, recordingLogger, startServer, tempDir } from './helpers'
import { hungFifo as fifo, orHung, releaseHungFifos } from './hung-mount'
import { booleanFlags } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000 })

const BOUND_MS = 400
dataDirTiming.openMs = BOUND_MS

const children: Array<ReturnType<typeof spawn>> = []
const dirs: string[] = []
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL')
  releaseHungFifos()
  // The open given up goes on once unblocked (it takes the lock, then gives it back): retried.
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
})

/** A temporary directory of this file's own (the open given up may still write in it at teardown). */
async function hungDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-spool-hung-'))
  dirs.push(dir)
  return dir
}


/** holdfast-server from the sources, its output gathered; `exited` settles with its signal or code. */
function cli(args: string[]) {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/bin.ts', ...args, '--port', '0', '--max-event-loop-delay', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  const output = { text: '' }
  child.stdout!.on('data', (chunk: Buffer) => (output.text += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output.text += chunk.toString()))
  const exited = new Promise<string | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)))
  return { child, output, exited }
}

async function flagsFile(): Promise<string> {
  const path = join(await tempDir(), 'flags.json')
  await writeFile(path, JSON.stringify(booleanFlags(2)))
  return path
}

describe('an events spool or file that hangs at start', () => {
  it('holdfast-server with --events-upstream, the spool in the data dir: refuses the start within the bound, naming the spool, and ends', async () => {
    const data = join(await hungDir(), 'data')
    fifo(join(data, 'events-spool', 'LOCK'))
    const started = Date.now()
    const { output, exited } = cli(['--flags', await flagsFile(), '--data-dir', data, '--events-upstream', 'http://127.0.0.1:9/e'])
    // 5 s bound + 1 s for hung calls + a tsx start on a shared machine.
    const end = await orHung(exited, 15_000)
    // Not exit 1: that would wait for the hung call for ever. Not SIGTERM either: systemd's
    // Restart=on-failure takes it for a clean stop.
    expect(end, output.text).toBe('SIGKILL')
    expect(Date.now() - started).toBeLessThan(14_000)
    expect(output.text).toContain(`cannot use the events spool ${join(data, 'events-spool')}: it did not answer within 5 s: a hung mount?`)
    expect(output.text).toMatch(/never returned \(a hung mount\?\).*ending by SIGKILL/)
    expect(output.text).not.toMatch(/serving .* at http/)
  })

  it('holdfast-server: SIGTERM while the hung spool holds the start ends the process by SIGTERM', async () => {
    const spool = join(await hungDir(), 'spool')
    fifo(join(spool, 'LOCK'))
    const { child, output, exited } = cli(['--flags', await flagsFile(), '--events-upstream', 'http://127.0.0.1:9/e', '--events-spool', spool])
    await new Promise((resolve) => setTimeout(resolve, 1500))
    child.kill('SIGTERM')
    expect(await orHung(exited, 12_000), output.text).toBe('SIGTERM')
    expect(output.text).not.toMatch(/serving .* at http/)
  })

  it('createFlagServer with an events file whose lock hangs: rejects within the bound, naming the file', async () => {
    const dir = await hungDir()
    fifo(join(dir, 'events.jsonl.lock'))
    const logger = recordingLogger()
    const started = Date.now()
    const result = await orHung(startServer({ eventsFile: join(dir, 'events.jsonl'), logger }).then(() => 'started', (error: Error) => error.message), BOUND_MS + 5000)
    expect(result).toContain(`[holdfast-server] cannot use the events file ${join(dir, 'events.jsonl')}: it did not answer within 0.4 s: a hung mount?`)
    expect(Date.now() - started).toBeLessThan(BOUND_MS + 3000)
  })

  it('createFlagServer: a data dir and the spool in it both on a dead mount cost the start one bound, not one each', async () => {
    const data = join(await hungDir(), 'data')
    fifo(join(data, 'LOCK'))
    fifo(join(data, 'events-spool', 'LOCK'))
    const before = dataDirTiming.openMs
    // Long enough that one bound and two cannot be confused on a loaded machine.
    dataDirTiming.openMs = 2500
    try {
      const logger = recordingLogger()
      const started = Date.now()
      const result = await orHung(
        startServer({ flags: booleanFlags(2) as never, dataDir: data, eventsUpstream: 'http://127.0.0.1:9/e', logger }).then(() => 'started', (error: Error) => error.message),
        10_000,
      )
      expect(result).toContain(`cannot use the events spool ${join(data, 'events-spool')}: it did not answer within 2.5 s`)
      expect(logger.lines.join('\n')).toContain(`the data dir ${data} did not answer`)
      // Before: 2.5 s for the data dir's lock, then 2.5 s more for the spool's.
      expect(Date.now() - started).toBeLessThan(4500)
    } finally {
      dataDirTiming.openMs = before
    }
  })

  it('createFlagServer with an events file that is a FIFO (its open and read never answer): rejects within the bound', async () => {
    const dir = await hungDir()
    fifo(join(dir, 'events.jsonl'))
    const result = await orHung(startServer({ eventsFile: join(dir, 'events.jsonl') }).then(() => 'started', (error: Error) => error.message), BOUND_MS + 5000)
    expect(result).toMatch(/cannot use the events file .*: it did not answer within 0\.4 s: a hung mount\?/)
  })
})

describe('holdfast-server: a second signal while a file system call hangs', () => {
  it('"now" means now: the second SIGTERM ends the process, where exit 130 waited for the hung call for ever', async () => {
    const data = join(await hungDir(), 'data')
    fifo(join(data, 'LOCK'))
    const { child, output, exited } = cli(['--flags', await flagsFile(), '--data-dir', data])
    await expect.poll(() => /serving .* at http/.test(output.text), { timeout: 15_000 }).toBe(true)
    child.kill('SIGTERM')
    // The second once the first is taken (two at once are one), while the drain (and its 1 s wait
    // for pending calls) runs with the data dir's lock read still hung.
    await expect.poll(() => output.text.includes('SIGTERM: draining'), { timeout: 5000, interval: 10 }).toBe(true)
    child.kill('SIGTERM')
    expect(await orHung(exited, 8000), output.text).toBe('SIGTERM')
    expect(output.text).toContain('SIGTERM again: exiting without finishing the drain')
  })
})

describe('an events file that hangs after the start', () => {
  it('close() gives up on a write whose fsync never returns (within 5 s), says so, and settles: a drain must not wait for a dead mount', async () => {
    const fs = faultyFileSystem()
    const logger = recordingLogger()
    const server = await startServer({ eventsFile: join(await hungDir(), 'events.jsonl'), eventsFileSystem: fs, logger, drainTimeoutMs: 100 })
    const held = fs.holdSyncs()
    // The client's request waits for its fsync: it is never answered 202, so the client keeps the event.
    const posting = post(`${server.url}/holdfast/v1/events`, { events: [{ id: 'e1', type: 'custom', name: 'n', time: 1 }] }).catch(() => 'cut')
    await held.waiting
    try {
      const closing = Date.now()
      expect(await orHung(server.close(), 9000)).not.toBe('hung')
      expect(Date.now() - closing).toBeLessThan(8000)
      expect(await posting).not.toMatchObject({ status: 202 })
      expect(logger.lines.some((line) => line.includes('events.jsonl') && line.includes('did not finish within 5 s'))).toBe(true)
    } finally {
      held.release()
    }
  })
})
