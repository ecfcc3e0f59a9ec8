// One process per events file or spool. Two servers appending to one file (a fleet sharing a
// volume, a restart while the old process still runs) each track their own idea of its size, cut
// the other's lines as a torn tail, and two forwarders deliver and delete the same segments: with
// two relays on one spool, half of the acknowledged events never reached the sink. So the first
// process takes a lock file and the second refuses to start, saying who holds it.
//
// The lock names its holder's pid and host. On the same host a holder that no longer runs (a
// `kill -9`, a crash) is stale and taken over at once. Across hosts (a shared volume) the pid
// cannot be checked, so the holder touches the file every LEASE_REFRESH_MS and a lock untouched
// for LEASE_STALE_MS is taken over.
import { hostname } from 'node:os'
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises'

const LEASE_REFRESH_MS = 10_000
const LEASE_STALE_MS = 30_000
/** Locks this process holds: a second server in the same process is refused too. */
const held = new Set<string>()

interface Holder {
  pid: number
  host: string
  since: string
}

/** Takes the lock at `path` (what it guards is `what`); resolves with its release, or throws naming the holder. */
export async function acquireLock(path: string, what: string): Promise<() => Promise<void>> {
  const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString() }
  for (let attempt = 0; ; attempt++) {
    try {
      const file = await open(path, 'wx')
      try {
        await file.writeFile(JSON.stringify(me))
      } finally {
        await file.close()
      }
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw refusal(error)
      const holder = await readHolder(path)
      if (holder && (await alive(path, holder))) throw refusal(undefined, holder)
      // Stale: its holder is gone. Only one of two processes taking it over at once gets it (`wx`).
      await unlink(path).catch(() => undefined)
    }
  }
  held.add(path)
  const touch = setInterval(() => {
    const now = new Date()
    utimes(path, now, now).catch(() => undefined)
  }, LEASE_REFRESH_MS)
  touch.unref()
  return async () => {
    clearInterval(touch)
    held.delete(path)
    const holder = await readHolder(path)
    if (holder?.pid === me.pid && holder.host === me.host) await unlink(path).catch(() => undefined)
  }

  function refusal(error: unknown, holder?: Holder): Error {
    const who = holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.since}` : (error as Error).message
    return new Error(
      `[holdfast-server] ${what} is in use by another server (${who}; lock ${path}). Two servers on one ` +
        `events file or spool lose and duplicate events: give each its own. If that server is gone, ` +
        `the lock is taken over once it is stale (at once on the same host, after ${LEASE_STALE_MS / 1000} s from another), or delete ${path}.`,
    )
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<Holder>
    return typeof parsed.pid === 'number' && typeof parsed.host === 'string' ? { pid: parsed.pid, host: parsed.host, since: String(parsed.since) } : undefined
  } catch {
    return undefined // unreadable (a crash while writing it): stale
  }
}

async function alive(path: string, holder: Holder): Promise<boolean> {
  if (holder.host !== hostname()) {
    const touched = (await stat(path).catch(() => undefined))?.mtimeMs
    return touched !== undefined && Date.now() - touched < LEASE_STALE_MS
  }
  // Our own pid: held in this process, or left by an earlier life of it (a container's pid 1).
  if (holder.pid === process.pid) return held.has(path)
  try {
    process.kill(holder.pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
