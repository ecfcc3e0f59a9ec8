// Two machines (or two containers on one kernel) sharing a volume under one fixed hostname
// (compose's `hostname: relay`, cloned VMs). Before, the lock told its holder by pid and hostname
// alone: a live holder on the other machine looked like "this host, an earlier boot" (another
// boot id) and a container's pid 1 like "this very process, not holding it": either was taken
// over at once, and two relays appended to and delivered from one spool. And a relay closing
// deleted a lock that named its pid and hostname, the other machine's live lock among them.
import { readFile, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquireLock } from '../../packages/server/src/events/lockFile'
import { lockTiming } from '../../packages/server/src/events/lockTiming'
import { tempDir } from './helpers'

const timing = { watchMs: lockTiming.watchMs, refreshMs: lockTiming.refreshMs }
beforeAll(() => {
  lockTiming.watchMs = 300
})
afterAll(() => Object.assign(lockTiming, timing))

const boot = async () => (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim() || undefined

/** A live holder elsewhere: its lock at `path`, touched every 50 ms until stopped. */
async function liveHolder(path: string, holder: Record<string, unknown>) {
  await writeFile(path, JSON.stringify(holder))
  const touching = setInterval(() => {
    const now = new Date()
    void utimes(path, now, now).catch(() => undefined)
  }, 50)
  return () => clearInterval(touching)
}

describe('a lock held by a live server on another machine with the same hostname', { timeout: 20_000 }, () => {
  it('(another boot id) is not taken over while it is touched; once its touches stop, it is', async () => {
    const path = join(await tempDir(), 'LOCK')
    const stop = await liveHolder(path, { pid: 7, host: hostname(), since: '2026-12-05T06:00:00.000Z', boot: '11111111-2222-3333-4444-555555555555', started: '99', instance: 'the-other-machine' })
    try {
      await expect(acquireLock(path, 'the spool')).rejects.toThrow(/in use by another server \(pid 7 on/)
    } finally {
      stop()
    }
    const release = await acquireLock(path, 'the spool')
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid)
    await release()
  })

  it('(a container on this kernel with its own pid namespace, our pid in it) is not taken over while it is touched', async () => {
    const path = join(await tempDir(), 'LOCK')
    const stop = await liveHolder(path, { pid: process.pid, host: hostname(), since: '2026-12-05T06:00:00.000Z', boot: await boot(), pidns: 'pid:[1]', instance: 'the-other-container' })
    try {
      await expect(acquireLock(path, 'the spool')).rejects.toThrow(new RegExp(`in use by another server \\(pid ${process.pid} on`))
    } finally {
      stop()
    }
  })

  it('is not deleted by a server closing that has the same pid and hostname', async () => {
    const path = join(await tempDir(), 'LOCK')
    lockTiming.refreshMs = 60_000
    try {
      const release = await acquireLock(path, 'the spool')
      // The other machine's relay (pid and hostname as ours) took the lock over while this one was paused.
      const theirs = JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-12-05T07:00:00.000Z', instance: 'the-other-machine' })
      await writeFile(path, theirs)
      await release()
      expect(await readFile(path, 'utf8')).toBe(theirs)
    } finally {
      lockTiming.refreshMs = timing.refreshMs
    }
  })
})

describe('a lock written by an older server (no pid namespace in it) in another container with this hostname', { timeout: 20_000 }, () => {
  it('(live, our pid 1 in its own namespace) is not taken over while it is touched; once its touches stop, it is', async () => {
    const path = join(await tempDir(), 'LOCK')
    // What the server before the pid namespace was recorded wrote: pid, host, since, boot, started.
    const stop = await liveHolder(path, { pid: process.pid, host: hostname(), since: '2026-12-05T06:00:00.000Z', boot: await boot(), started: '99' })
    try {
      await expect(acquireLock(path, 'the spool')).rejects.toThrow(new RegExp(`in use by another server \\(pid ${process.pid} on`))
    } finally {
      stop()
    }
    const release = await acquireLock(path, 'the spool')
    expect(JSON.parse(await readFile(path, 'utf8')).instance).toBeDefined()
    await release()
  })
})
