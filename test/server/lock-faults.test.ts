// Faults under the lock file's takeover (events/lockFile.ts): a file system without hard links, a
// write that fails (a full disk), files left by a kill -9 between two steps. The lock's own calls
// go to node:fs/promises, not through an EventFileSystem, so the faults are injected there.
import type { FileHandle } from 'node:fs/promises'
import * as realFs from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { acquireLock } from '../../packages/server/src/events/lockFile'
import { lockTiming } from '../../packages/server/src/events/lockTiming'
import { lockDataDir } from '../../packages/server/src/flags/dataDirLock'
import { recordingLogger, tempDir } from './helpers'

const faults = { noLinks: false, fullDisk: false, slowWriteOf: '' }
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>()
  const refuse = (code: string) => Object.assign(new Error(`${code}: injected`), { code })
  return {
    ...fs,
    // A file system without hard links (some FUSE and SMB mounts say EPERM).
    link: async (from: string, to: string) => (faults.noLinks ? Promise.reject(refuse('EPERM')) : fs.link(from, to)),
    // A full disk: the file is made, its write fails.
    open: async (path: string, flags?: string) => {
      const file = await fs.open(path, flags)
      // A lock made in place whose write is slow (a busy disk): it exists empty meanwhile.
      if (path === faults.slowWriteOf) return Object.assign(Object.create(file) as FileHandle, { writeFile: async (text: string) => (await new Promise((resolve) => setTimeout(resolve, 300)), file.writeFile(text)), close: () => file.close() })
      if (!faults.fullDisk) return file
      return Object.assign(Object.create(file) as FileHandle, { writeFile: () => Promise.reject(refuse('ENOSPC')), close: () => file.close() })
    },
  }
})

const timing = { ...lockTiming }
beforeAll(() => void (lockTiming.watchMs = 400))
afterAll(() => void Object.assign(lockTiming, timing))
afterEach(() => void Object.assign(faults, { noLinks: false, fullDisk: false, slowWriteOf: '' }))

const old = new Date(Date.now() - 120_000)
const otherHost = (instance: string) => JSON.stringify({ pid: 7, host: `not-${hostname()}`, since: '2026-12-05T06:00:00.000Z', instance })

/**
 * A lock left by a server on another host, stale (untouched for 2 minutes); 150 ms into the watch
 * of whoever looks at it, another server's new lock (`text`) takes its place with the same mtime
 * (so the watch, which looks for a touch, still judges the old one stale).
 */
async function staleThenReplaced(path: string, text: string) {
  await realFs.writeFile(path, otherHost('gone'))
  await realFs.utimes(path, old, old)
  return new Promise<void>((resolve) =>
    setTimeout(async () => {
      await realFs.writeFile(`${path}.next`, text)
      await realFs.utimes(`${path}.next`, old, old)
      await realFs.rename(`${path}.next`, path)
      resolve()
    }, 150),
  )
}

describe('a stale lock taken over by another server during the watch', () => {
  it('is put back, on a file system without hard links too (not deleted: its holder would lose it)', async () => {
    faults.noLinks = true
    const path = join(await tempDir(), 'LOCK')
    const replaced = staleThenReplaced(path, otherHost('the-new-holder'))
    await expect(acquireLock(path, 'the spool')).rejects.toThrow(/in use by another server \(pid 7 on not-/)
    await replaced
    expect(JSON.parse(await realFs.readFile(path, 'utf8')).instance).toBe('the-new-holder')
    expect(await realFs.readdir(join(path, '..'))).toEqual(['LOCK'])
  })

  it('refuses a data dir even when what it moved aside cannot be read as a lock (not: goes on without the lock)', async () => {
    const dir = await tempDir()
    // The new holder's lock, made in place (no hard links there), caught before its write.
    const replaced = staleThenReplaced(join(dir, 'LOCK'), '')
    const log = recordingLogger()
    await expect(lockDataDir(dir, log)).rejects.toThrow(/in use by another server/)
    await replaced
    expect(log.lines.join('\n')).not.toMatch(/going on without the lock/)
    expect(await realFs.readFile(join(dir, 'LOCK'), 'utf8')).toBe('')
  })
})

describe('two servers starting at once on a file system without hard links', () => {
  it('one gets the lock: the other does not take a lock still being written (empty) for one left torn by a crash', async () => {
    faults.noLinks = true
    const path = join(await tempDir(), 'LOCK')
    faults.slowWriteOf = path
    const first = acquireLock(path, 'the spool')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const results = await Promise.allSettled([first, acquireLock(path, 'the spool')])
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected'])
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(new RegExp(`in use by another server \\(pid ${process.pid} on`))
    await (results[0] as PromiseFulfilledResult<() => Promise<void>>).value()
    // One left empty by a crash is still taken over (once it stays empty for a second).
    faults.slowWriteOf = ''
    await realFs.writeFile(path, '')
    const release = await acquireLock(path, 'the spool')
    expect(JSON.parse(await realFs.readFile(path, 'utf8')).pid).toBe(process.pid)
    await release()
  })
})

describe('a holder whose lock a taker moved aside and puts back slowly (a busy disk or thread pool)', () => {
  it('does not take it for lost when it is back within a second', async () => {
    const path = join(await tempDir(), 'LOCK')
    const lost: string[] = []
    const release = await acquireLock(path, 'the spool', undefined, { onLost: (by) => lost.push(by) })
    await realFs.rename(path, `${path}.aside`)
    const checked = release.check!()
    await new Promise((resolve) => setTimeout(resolve, 400))
    await realFs.link(`${path}.aside`, path)
    await realFs.unlink(`${path}.aside`)
    await checked
    expect(lost).toEqual([])
    await release()
  })
})

describe('what a lock leaves beside it', () => {
  it('a write that fails (a full disk) leaves no temp file', async () => {
    const dir = await tempDir()
    faults.fullDisk = true
    await expect(acquireLock(join(dir, 'LOCK'), 'the spool')).rejects.toThrow(/ENOSPC/)
    expect(await realFs.readdir(dir)).toEqual([])
  })

  it('files left by a kill -9 (a temp file before its link, a lock moved aside) are removed when the lock is next taken', async () => {
    const dir = await tempDir()
    const leftovers = ['LOCK.0b7a1c4e-1111-4222-8333-944445555666.tmp', 'LOCK.0b7a1c4e-1111-4222-8333-944445555777.stale']
    for (const name of leftovers) {
      await realFs.writeFile(join(dir, name), otherHost(name))
      await realFs.utimes(join(dir, name), old, old)
    }
    // Not the lock's: left alone.
    await realFs.writeFile(join(dir, 'LOCK.notes.txt'), 'mine')
    const release = await acquireLock(join(dir, 'LOCK'), 'the spool')
    await vi.waitFor(async () => expect((await realFs.readdir(dir)).sort()).toEqual(['LOCK', 'LOCK.notes.txt']))
    await release()
  })
})
