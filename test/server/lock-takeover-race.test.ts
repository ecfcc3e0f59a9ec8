// Two servers taking one stale lock over at the same moment (two relays restarted together after a
// crash, beside a shared spool or data dir). Before, each judged it stale and deleted it: the
// second deleted the first's new lock and made its own, and both went on holding it (2–4 times in
// 30 tries here), appending to one spool until the first one's next touch, 10 s later.
import { link, mkdtemp, readdir, rename, unlink, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { acquireLock } from '../../packages/server/src/events/lockFile'

describe('a stale lock taken over by two servers at once', () => {
  it('goes to one of them; the other is refused, naming it; nothing is left beside the lock', async () => {
    let both = 0
    for (let i = 0; i < 50; i++) {
      const path = join(await mkdtemp(join(tmpdir(), 'lock-race-')), 'LOCK')
      // Left by a process that is gone (this host, a pid no process has).
      await writeFile(path, JSON.stringify({ pid: 999_999_999, host: hostname(), since: '2026-12-05T06:00:00.000Z' }))
      const results = await Promise.allSettled([acquireLock(path, 'the spool'), acquireLock(path, 'the spool')])
      expect(results.some((result) => result.status === 'fulfilled')).toBe(true)
      if (results.every((result) => result.status === 'fulfilled')) both++
      const refused = results.find((result) => result.status === 'rejected')
      if (refused) expect(String((refused as PromiseRejectedResult).reason)).toMatch(/in use by another server/)
      for (const result of results) if (result.status === 'fulfilled') await result.value()
      expect(await readdir(dirname(path))).toEqual([])
    }
    expect(both).toBe(0)
  })
})

describe('a holder whose lock is moved aside for a moment (a server judging it stale, then putting it back)', () => {
  it('does not take it for lost', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'lock-aside-')), 'LOCK')
    const lost: string[] = []
    const release = await acquireLock(path, 'the spool', undefined, { onLost: (by) => lost.push(by) })
    await rename(path, `${path}.aside`)
    const checked = release.check!()
    await new Promise((resolve) => setTimeout(resolve, 20))
    await link(`${path}.aside`, path)
    await unlink(`${path}.aside`)
    await checked
    expect(lost).toEqual([])
    // Removed for good, it is lost.
    await unlink(path)
    await release.check!()
    expect(lost).toEqual([expect.stringContaining('was removed')])
    await release()
  })
})
