// Making, putting back and cleaning up lock files on disk, for acquireLock (lockFile.ts).
import { randomUUID } from 'node:crypto'
import { link, open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { LEASE_STALE_MS } from './lockTiming'

// Makes the lock file at `path` holding `text`, or fails with EEXIST. Written aside, then linked
// into place: the lock never exists empty (a server reading it between an open and its write
// took it for one left torn by a crash, stale, and took it over). Where the file system has no
// hard links, made in place as before.
// The temp file is removed whatever fails (before, a write failing on a full disk left one
// beside the lock at every start tried).
export async function create(path: string, text: string): Promise<void> {
  const temp = `${path}.${randomUUID()}.tmp`
  const file = await open(temp, 'wx')
  try {
    try {
      await file.writeFile(text)
    } finally {
      await file.close()
    }
    try {
      await link(temp, path)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw error
      const direct = await open(path, 'wx')
      try {
        await direct.writeFile(text)
      } finally {
        await direct.close()
      }
    }
  } finally {
    await unlink(temp).catch(() => undefined)
  }
}

// Puts back another server's new lock that a takeover moved aside. Linked (a third server's lock
// made in this instant is never replaced); where the file system has no hard links, renamed
// back unless a lock is there. Before, the link failed there and the new holder's lock was
// deleted with the aside: it lost it at its next touch (503s, no forwarding) and the taker was
// refused: no relay held the spool.
export async function putBack(aside: string, path: string): Promise<void> {
  try {
    await link(aside, path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return
    if ((await stat(path).catch(() => undefined)) === undefined) await rename(aside, path).catch(() => undefined)
  }
}

// A kill -9 between writing the temp file and linking it, or while a stale lock is moved aside,
// leaves `LOCK.<uuid>.tmp` or `LOCK.<uuid>.stale` beside the lock, for ever: one more at each
// such crash in the spool or data dir. Removed once the lock is taken, when untouched for the
// stale period (judged by the lock's own mtime, the same clock: a server taking the lock at this
// moment keeps its files). Never fails the start.
export async function removeLeftovers(path: string): Promise<void> {
  try {
    const dir = dirname(path)
    const mine = (await stat(path)).mtimeMs
    const pattern = new RegExp(`^${basename(path).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f-]{36}\\.(tmp|stale)$`)
    for (const name of await readdir(dir)) {
      if (!pattern.test(name)) continue
      const at = (await stat(join(dir, name)).catch(() => undefined))?.mtimeMs
      if (at !== undefined && mine - at > LEASE_STALE_MS) await unlink(join(dir, name)).catch(() => undefined)
    }
  } catch {
    // A dir that cannot be listed: the leftovers stay, as before.
  }
}

/** Whether the lock at `path` is there again within `ms` (looked at every 100 ms). */
export async function backWithin(path: string, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    if ((await stat(path).catch(() => undefined)) !== undefined) return true
  }
  return false
}
