// One process per events file or spool. Two servers appending to one file (a fleet sharing a
// volume, a restart while the old process still runs) each track their own idea of its size, cut
// the other's lines as a torn tail, and two forwarders deliver and delete the same segments: with
// two relays on one spool, half of the acknowledged events never reached the sink. So the first
// process takes a lock file and the second refuses to start, saying who holds it.
//
// The lock names its holder's pid and host. On the same host a holder that no longer runs (a
// `kill -9`, a crash) is stale and taken over at once; so is one from an earlier boot, or whose pid
// now belongs to another process (on Linux the lock also records the boot id and the process's
// start time: after a power loss the pid in the lock is often some other live process, which
// must not keep the relay from starting). Across hosts (a shared volume) the pid cannot be
// checked, so the holder touches the file every LEASE_REFRESH_MS and a lock untouched for
// LEASE_STALE_MS is taken over (judged without trusting either host's clock: see touchedLately).
//
// A hostname is not a machine: two machines (or two containers on one kernel) sharing a volume
// under one fixed hostname (compose's `hostname:`, cloned VMs) each see the other's lock as "this
// host". Before, a live holder there looked like an earlier boot (another boot id) or, as a
// container's pid 1, like this very process not holding it: taken over at once, and two relays
// appended to and delivered from one spool. So the pid is judged only when the lock was written
// under this boot and in this pid namespace; any other holder must be seen not touching the lock
// (the watch) before it is taken over. And the lock names its holder by a random instance id, so
// that a server closing deletes only its own lock, never one with the same pid and hostname.
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { readFile, rename, unlink, utimes } from 'node:fs/promises'
import { backWithin, create, putBack, removeLeftovers } from './lockFileOps'
import { alive, bootId, held, parseHolder, pidNamespace, readHolder, startTime, type Holder } from './lockHolder'
import { LEASE_STALE_MS, lockTiming } from './lockTiming'

export interface LockHooks {
  /** Told (once, naming the new holder) when the lock is found to be another server's: see the touch. */
  onLost?(holder: string): void
  /**
   * Told each time a file-system call of the watch of a stale lock returns (about every second
   * for 15 s): a start that bounds its open by a call that does not return (a hung mount) must not
   * take that watch for one.
   */
  onProgress?(): void
}

/** Gives the lock back (deletes it when it is still this server's). */
export interface LockRelease {
  (): Promise<void>
  /**
   * Touches the lock and reads it back now, as the touch every 10 s does: `onLost` is told at once
   * when it is another server's (or gone). Never rejects. Made before a write where one more write
   * into what another server holds does harm (the data dir's generations); shares a touch in flight.
   */
  check?(): Promise<void>
}

/**
 * Takes the lock at `path` (what it guards is `what`; `why` says what two holders would break);
 * resolves with its release, or throws naming the holder. When the lock file itself cannot be
 * made (a read-only mount), the error thrown has the OS error as its `cause`. See {@link LockHooks}.
 */
export async function acquireLock(
  path: string,
  what: string,
  why = 'Two servers on one events file or spool lose and duplicate events: give each its own.',
  { onLost, onProgress }: LockHooks = {},
): Promise<LockRelease> {
  const me: Holder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), boot: await bootId(), started: await startTime(process.pid), pidns: await pidNamespace(), instance: randomUUID() }
  const isMe = (holder: Holder) => (holder.instance ?? '') === me.instance && holder.pid === me.pid && holder.host === me.host && holder.since === me.since
  for (let attempt = 0; ; attempt++) {
    try {
      await create(path, JSON.stringify(me))
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw refusal(error)
      let seen = await readFile(path, 'utf8').catch(() => undefined)
      // Empty: left by a crash between its open and its write, or being written now by a server
      // starting on a file system without hard links (made in place there). Looked at again for a
      // second before it counts as torn. Before, the second of two servers starting there at once
      // took the first's empty lock for torn, moved it aside, found it as empty as it judged it,
      // deleted it and took its own: both held the spool until the first one's touch, 10 s later.
      for (let waited = 0; seen === '' && waited < 1000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        seen = await readFile(path, 'utf8').catch(() => undefined)
        onProgress?.()
      }
      const holder = parseHolder(seen)
      if (holder && (await alive(path, holder, onProgress))) throw refusal(undefined, holder)
      // Stale: its holder is gone. Taken over by moving it aside and checking that what was moved
      // is what was judged stale. Timeline this guards against: two servers start at once beside a
      // stale lock; both judge it stale; A deletes it and makes its own; B then deletes A's new
      // lock and makes its own: both held it (4 times in 30 in a test), and both appended to one
      // spool until A's next touch, 10 s later. Now B moves A's lock aside, sees it is not the one
      // it judged, puts it back (unless a third made one meanwhile) and is refused.
      const aside = `${path}.${me.instance}.stale`
      if (await rename(path, aside).then(() => true, () => false)) {
        const moved = await readFile(aside, 'utf8').catch(() => undefined)
        if (moved !== seen) await putBack(aside, path)
        await unlink(aside).catch(() => undefined)
        if (moved !== seen) {
          const other = parseHolder(moved)
          // EEXIST: refused as any lock held (a data dir whose lock cannot be made at all goes on
          // without it; one another server holds must not: persistence.ts).
          throw other ? refusal(undefined, other) : refusal(Object.assign(new Error('another server took the lock at the same moment'), { code: 'EEXIST' }))
        }
      }
    }
  }
  held.add(path)
  void removeLeftovers(path)
  // One touch (or check) at a time: on a hung mount a touch never returns and holds a libuv thread
  // (DNS lookups and every file read share the 4): one every 10 s filled the pool in 40 s.
  let checking: Promise<void> | undefined
  let lost = false
  const check = (): Promise<void> => {
    if (lost) return Promise.resolve()
    const now = new Date()
    checking ??= utimes(path, now, now)
      // Gone for a moment may be a server judging it stale that moved it aside and is putting it
      // back (see the takeover above): looked at again, every 100 ms for a second, before it
      // counts as removed. Before, once after 100 ms: a taker whose read and link back took
      // longer (a busy disk, a thread pool full of slow calls) made this live holder stop taking
      // events and forwarding, for nothing, until a restart.
      .then(() => true, async (error: NodeJS.ErrnoException) => error.code !== 'ENOENT' || (await backWithin(path, 1000)))
      // Still ours? A server on another host takes the lock over once it went untouched for 30 s:
      // this process was stopped, or its mount hung, that long (a paused VM, an NFS partition).
      // Before, it went on as if it held the lock when it came back, and two servers appended to
      // and delivered from one spool. A lock file that is gone is lost too: the server that took
      // it over has stopped since (what it guards was changed under us), or it was deleted by
      // hand (the refusal says "delete it" when its holder is gone): going on without it, a next
      // server starts beside this one at once.
      .then(async (there) => {
        if (!onLost || lost) return
        const holder = there ? await readHolder(path) : undefined
        if (there && (!holder || isMe(holder))) return
        lost = true
        clearInterval(touch)
        held.delete(path)
        onLost(holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.since}` : `its lock file ${path} was removed: a server that took it over and stopped since, or by hand`)
      })
      .catch(() => undefined)
      .finally(() => (checking = undefined))
    return checking
  }
  const touch = setInterval(() => void (checking ?? check()), lockTiming.refreshMs)
  touch.unref()
  const release = async () => {
    clearInterval(touch)
    held.delete(path)
    const holder = await readHolder(path)
    if (holder && isMe(holder)) await unlink(path).catch(() => undefined)
  }
  return Object.assign(release, { check })

  function refusal(error: unknown, holder?: Holder): Error {
    const who = holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.since}` : (error as Error).message
    return new Error(
      `[holdfast-server] ${what} is in use by another server (${who}; lock ${path}). ${why} If that server is gone, ` +
        `the lock is taken over once it is stale (at once on the same host, after ${LEASE_STALE_MS / 1000} s from another), or delete ${path}.`,
      holder ? undefined : { cause: error },
    )
  }
}
