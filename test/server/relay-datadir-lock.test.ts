// The data dir's lock taken over by a relay on another host: this one was stopped (a paused VM)
// or its mount hung for longer than the lease (30 s), and the other relay, finding the lock
// untouched, took it. Before, the old holder came back and went on writing generations beside the
// new holder's (each numbering on from what it saw, deleting the other's temp files), so a restart
// of either could serve the other's flags. Now it stops writing there, as the events spool does
// (events/lockFile.ts `onLost`), and says so in its status and log.
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '@holdfast/server'
import { lockTiming } from '../../packages/server/src/events/lockTiming'
import { createGenerationStore, type GenerationStore } from '../../packages/server/src/flags/generations'
import { createPersistence, lockDataDirWithin } from '../../packages/server/src/flags/persistence'
import { post, recordingLogger, startServer, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

// Written generations (a temporary file mid-write, `.gen-….tmp`, is not one yet: the first scan
// could catch it before its rename and compare it with the generation it became).
const generations = async (dir: string) => (await readdir(dir)).filter((name) => name !== 'LOCK' && !name.endsWith('.tmp')).sort()
const served = async (url: string) => ((await (await post(`${url}/ofrep/v1/evaluate/flags`, { context: { targetingKey: 'u' } })).json()) as { flags: Array<{ key: string; value: unknown }> }).flags.find((f) => f.key === 'f0')?.value

describe('a relay whose data-dir lock is taken over by a server on another host', { timeout: 30_000 }, () => {
  it('writes no more generations there, says so in its status, its metrics and its log, and leaves the lock to its holder', async () => {
    const refresh = lockTiming.refreshMs
    lockTiming.refreshMs = 50
    try {
      const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
      const dir = join(await tempDir(), 'data')
      const logger = recordingLogger()
      const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, dataDir: dir, pollIntervalSeconds: 0.1, logger })
      await waitFor(async () => (await generations(dir)).length > 0, 5_000)
      const before = await generations(dir)
      // What a relay on another host writes when it takes a lock untouched for 30 s over.
      const theirs = JSON.stringify({ pid: 4242, host: 'other-host.invalid', since: '2026-12-05T06:00:00.000Z' })
      await writeFile(join(dir, 'LOCK'), theirs)
      // A few touches of the lock go by (every 50 ms here), then the upstream changes.
      await new Promise((resolve) => setTimeout(resolve, 300))
      upstream.set({ document: booleanFlags(3, 'off') })
      // Still served (this relay's flags are its own), but no longer written into the other's dir.
      await waitFor(async () => (await served(server.url)) === false, 5_000)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await generations(dir)).toEqual(before)
      const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { dataDir: Record<string, unknown> }
      expect(status.dataDir).toMatchObject({
        unused: true,
        takenOver: { by: 'pid 4242 on other-host.invalid, since 2026-12-05T06:00:00.000Z', at: expect.any(Number) },
        lastError: expect.stringContaining('taken over by another server (pid 4242 on other-host.invalid'),
      })
      expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^holdfast_relay_data_dir_used 0$/m)
      expect(logger.lines.filter((line) => line.includes(dir) && line.includes('taken over'))).toHaveLength(1)
      await server.close()
      expect(await readFile(join(dir, 'LOCK'), 'utf8')).toBe(theirs)
      expect(await generations(dir)).toEqual(before)
    } finally {
      lockTiming.refreshMs = refresh
    }
  })
})

describe('a data-dir write held by a hung mount while the lock was taken over', { timeout: 30_000 }, () => {
  it('the write after it, once the mount is back, is not made: the lock is read again before each write, not only every 10 s', async () => {
    // Timeline: the mount hangs in the middle of a write (and of the lock's touch); another host
    // takes the lock over; the mount comes back. The write in flight lands (it cannot be called
    // back), but before, the newest payload waiting behind it was written at once as well, before
    // the next touch (up to 10 s later) found the lock gone: a generation newer than the new
    // holder's, with this relay's flags, which a restart of either would serve.
    const dir = join(await tempDir(), 'data')
    const real = createGenerationStore({ dir })
    let resume: (() => void) | undefined
    const saved: string[] = []
    const store: GenerationStore = {
      ...real,
      dir: real.dir,
      async save(payload) {
        if (payload === 'held') await new Promise<void>((resolve) => (resume = resolve))
        saved.push(payload)
        return real.save(payload)
      },
    }
    const release = await lockDataDirWithin(store, silentLogger)
    const persistence = createPersistence({ store, now: Date.now })
    persistence.schedule(() => 'held')
    await waitFor(() => resume !== undefined, 5_000)
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 4242, host: 'other-host.invalid', since: '2026-12-05T06:00:00.000Z' }))
    persistence.schedule(() => 'after the takeover')
    resume!()
    await persistence.flush()
    expect(saved).toEqual(['held'])
    expect(persistence.state()).toMatchObject({ unused: true, takenOver: { by: expect.stringContaining('pid 4242 on other-host.invalid') } })
    await persistence.close()
    await release()
  })
})
