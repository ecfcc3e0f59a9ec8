// Taking over a lock left by a server on another host is not a hung mount. Such a lock, untouched
// for 30 s by this host's clock, is watched for 15 s before it is taken over (a holder whose clock
// runs behind may still touch it: events/lockFile.ts), while the start bounds the events store's
// and the data dir's open at 5 s (a hung mount). Before, the watch outlasted the bound: a relay
// started on a shared volume after the other host died was refused ("did not answer within 5 s:
// a hung mount?") for its spool, and ran without its data dir until a restart, every time the
// previous holder was on another host. The service's ratios are kept here: the watch lasts three
// bounds (15 s, 5 s) and looks at the lock at a fifth of the bound or less (1 s). Watched 2.4 s, bound
// 0.8 s, looked at every 0.1 s. Before, the look came every 0.3 s (a quarter of a 1.2 s watch) against
// a 0.4 s bound: a timer 100 ms late on a loaded machine (two busy loops beside the run: gaps of
// 350-700 ms between looks) read as a hung mount, and the data-dir case failed 2 runs in 6.
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lockTiming } from '../../packages/server/src/events/lockTiming'
import { dataDirTiming } from '../../packages/server/src/flags/dataDirTiming'
import { post, startServer, tempDir, waitFor } from './helpers'
import { booleanFlags, startUpstream } from './relay-fakes'

const timing = { watchMs: lockTiming.watchMs, stepMs: lockTiming.stepMs, openMs: dataDirTiming.openMs }
beforeAll(() => {
  lockTiming.watchMs = 2400
  lockTiming.stepMs = 100
  dataDirTiming.openMs = 800
})
afterAll(() => {
  lockTiming.watchMs = timing.watchMs
  lockTiming.stepMs = timing.stepMs
  dataDirTiming.openMs = timing.openMs
})

/** `dir/LOCK` as a server on another host leaves it when it dies: untouched for a minute. */
async function deadHostLock(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  const lock = join(dir, 'LOCK')
  await writeFile(lock, JSON.stringify({ pid: 4242, host: 'dead-host.invalid', since: '2026-12-05T05:00:00.000Z' }))
  const old = new Date(Date.now() - 60_000)
  await utimes(lock, old, old)
  return lock
}

describe('a lock left by a server on another host that died', { timeout: 30_000 }, () => {
  it('on the events spool: the relay starts, takes the lock over and takes events (not refused as a hung mount)', async () => {
    const spool = join(await tempDir(), 'spool')
    const lock = await deadHostLock(spool)
    const relay = await startServer({ eventsUpstream: 'http://127.0.0.1:9/holdfast/v1/events', eventsSpoolDir: spool })
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ pid: process.pid })
    expect((await post(`${relay.url}/holdfast/v1/events`, { events: [{ id: 'after-takeover', type: 'custom', name: 'c', time: 1 }] })).status).toBe(202)
  })

  it('on the data dir: the relay takes the lock over and saves its generations there (not "unused until a restart")', async () => {
    const upstream = await startUpstream({ document: booleanFlags(3, 'on') })
    const dir = join(await tempDir(), 'data')
    const lock = await deadHostLock(dir)
    const server = await startServer({ flags: undefined, flagsUrl: `${upstream.url}/flags.json`, dataDir: dir, pollIntervalSeconds: 0.1 })
    await waitFor(async () => (await readdir(dir)).some((name) => name.startsWith('gen-')), 5_000)
    expect(JSON.parse(await readFile(lock, 'utf8'))).toMatchObject({ pid: process.pid })
    const status = (await (await fetch(`${server.url}/holdfast/v1/status`)).json()) as { dataDir: Record<string, unknown> }
    expect(status.dataDir.unused).toBeUndefined()
    expect(status.dataDir.lastError).toBeUndefined()
  })
})
