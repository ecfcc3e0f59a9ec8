// A data dir that hangs at START (a network mount whose server is gone): taking its lock or loading
// it never answers. Before, the start waited for ever: the relay never listened, never served its
// upstream, snapshot or Redis, and said nothing. Now the start waits at most `dataDirTiming.openMs`
// (5 s; shortened here) and goes on without the data dir, saying so (log once, status `dataDir`).
// The hang is real where the seam allows: a FIFO as `DIR/LOCK` blocks the lock's read of its
// holder in a libuv thread, as a dead NFS server does; a load that never answers comes through the
// injectable generation store. The upstream is a real server, reached by host name (`localhost`).
import { spawn } from 'node:child_process'
import { readdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { GenerationStore, RelaySource } from '@holdfast/server'
import { dataDirTiming } from '../../packages/server/src/flags/dataDirTiming'
import { runSnapshotCli } from '../../packages/server/src/snapshotCli'
import { recordingLogger, startServer, tempDir } from './helpers'
import { hungFifo, orHung, releaseHungFifos } from './hung-mount'
import { booleanFlags, startUpstream, urlSourceFor } from './relay-fakes'

vi.setConfig({ testTimeout: 30_000 })

const BOUND_MS = 400
dataDirTiming.openMs = BOUND_MS

afterEach(releaseHungFifos)

/** A data dir whose LOCK is a FIFO: reading the lock's holder blocks for ever, like a dead mount. */
async function hungLockDir(): Promise<string> {
  const dir = join(await tempDir(), 'data')
  hungFifo(join(dir, 'LOCK'))
  return dir
}

describe('a data dir that hangs at start', () => {
  it('a lock that never answers: the relay starts within the bound, serves its upstream (by host name), says so once, and never writes to the dir', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const dir = await hungLockDir()
    const logger = recordingLogger()
    const started = Date.now()
    const server = await orHung(startServer({ flags: undefined, flagsUrl: `${upstream.url.replace('127.0.0.1', 'localhost')}/flags.json`, dataDir: dir, pollIntervalSeconds: 0.1, logger }), 5000 + BOUND_MS)
    expect(server).not.toBe('hung')
    if (server === 'hung') return
    expect(Date.now() - started).toBeLessThan(BOUND_MS + 3000)
    const status = await (await fetch(`${server.url}/holdfast/v1/status`)).json()
    expect(status).toMatchObject({ ready: true, source: 'upstream', dataDir: { unused: true, lastError: expect.stringMatching(/did not answer within 0\.4 s: a hung mount\?/) } })
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^holdfast_relay_data_dir_used 0$/m)
    const said = logger.lines.filter((line) => line.includes(dir) && line.includes('did not answer'))
    expect(said).toHaveLength(1)
    // Polls go on; none of them reaches the dir (it is not this relay's: it holds no lock there).
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect((await readdir(dir)).sort()).toEqual(['LOCK'])
    expect((await (await fetch(`${server.url}/holdfast/v1/status`)).json()).dataDir).toMatchObject({ unused: true, writeFailures: 0 })
    const closing = Date.now()
    expect(await orHung(server.close(), 8000)).not.toBe('hung')
    expect(Date.now() - closing).toBeLessThan(6000)
  })

  it('with the upstream down: the --snapshot is served once the hung lock is given up, not never', async () => {
    const upstream = await startUpstream({ document: booleanFlags(4, 'off') })
    const snapshot = join(await tempDir(), 'flags.snapshot.json')
    expect(await runSnapshotCli(['--flags-url', `${upstream.url}/flags.json`, '--out', snapshot], { out: () => {}, err: () => {} })).toBe(0)
    upstream.set({ status: 503, text: 'down' })
    const dir = await hungLockDir()
    const server = await orHung(startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, snapshot, dataDir: dir, logger: recordingLogger() }), 5000 + BOUND_MS)
    expect(server).not.toBe('hung')
    if (server === 'hung') return
    expect(await (await fetch(`${server.url}/holdfast/v1/status`)).json()).toMatchObject({ ready: true, source: 'snapshot', stale: true, flags: 4, dataDir: { unused: true } })
  })

  it('with --flags FILE: a hung lock does not keep the file from being served', async () => {
    const dir = await hungLockDir()
    const server = await orHung(startServer({ dataDir: dir }), 5000 + BOUND_MS)
    expect(server).not.toBe('hung')
    if (server === 'hung') return
    const status = await (await fetch(`${server.url}/holdfast/v1/status`)).json()
    expect(status).toMatchObject({ ready: true, source: 'file', dataDir: { unused: true, lastError: expect.stringMatching(/a hung mount/) } })
  })

  it('a load that never answers: open() settles within the bound, the upstream is served, and the status says the data dir did not answer until a write gets through', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const store: GenerationStore = {
      dir: '/hung-mount',
      loadNewest: () => new Promise(() => {}),
      save: () => new Promise<number>(() => {}),
      list: () => new Promise(() => {}),
    }
    const logger = recordingLogger()
    const relay: RelaySource = urlSourceFor({ url: upstream.url.replace('127.0.0.1', 'localhost') }, { pollIntervalMs: 100, store, log: logger })
    const started = Date.now()
    expect(await orHung(relay.open(), 5000)).not.toBe('hung')
    expect(Date.now() - started).toBeLessThan(BOUND_MS + 3000)
    expect(relay.relayStatus()).toMatchObject({ ready: true, source: 'upstream', dataDir: { lastError: expect.stringMatching(/did not answer within 0\.4 s: a hung mount\?/) } })
    expect(logger.lines.filter((line) => line.includes('/hung-mount') && line.includes('starting without it'))).toHaveLength(1)
    // It holds the lock (the store has no say in that here): writes are tried, and the one that
    // hangs shows as writingSince, the error standing.
    expect(relay.relayStatus().dataDir!.writingSince).toBeDefined()
    expect(relay.relayStatus().dataDir!.unused).toBeUndefined()
    expect(await orHung(relay.close(), 8000)).not.toBe('hung')
    // A mount that comes back just after the bound: the first write that gets through clears the error.
    const saved: string[] = []
    const back: GenerationStore = { ...store, save: async (payload) => saved.push(payload) }
    const again: RelaySource = urlSourceFor({ url: upstream.url }, { pollIntervalMs: 100, store: back, log: logger })
    await again.open()
    expect(logger.lines.filter((line) => line.includes('/hung-mount') && line.includes('starting without it'))).toHaveLength(2)
    await expect.poll(() => saved.length, { timeout: 5000 }).toBeGreaterThan(0)
    expect(again.relayStatus().dataDir!.lastError).toBeUndefined()
    await again.close()
  })
})

describe('holdfast-server on a data dir that hangs', () => {
  it('starts (within the 5 s bound), serves, and on SIGTERM ends instead of waiting for ever for the hung call', async () => {
    const dir = await hungLockDir()
    const flags = join(await tempDir(), 'flags.json')
    await writeFile(flags, JSON.stringify(booleanFlags(2)))
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const child = spawn(process.execPath, ['--import', 'tsx', 'packages/server/src/bin.ts', '--flags', flags, '--data-dir', dir, '--port', '0', '--max-event-loop-delay', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()))
    const exited = new Promise<string | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)))
    try {
      await expect.poll(() => /serving .* at http/.test(out), { timeout: 15_000 }).toBe(true)
      expect(out).toMatch(/did not answer within 5 s: a hung mount\?/)
      child.kill('SIGTERM')
      expect(await orHung(exited, 10_000)).toBe('SIGTERM')
      expect(out).toMatch(/stopped[\s\S]*never returned \(a hung mount\?\)/)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
