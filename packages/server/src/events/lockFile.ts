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
import { link, open, readdir, readFile, readlink, rename, stat, unlink, utimes } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

const LEASE_REFRESH_MS = 10_000
const LEASE_STALE_MS = 30_000
/**
 * How long a lock that looks stale by this host's clock is watched for a touch, and how often it is
 * looked at meanwhile (`stepMs`, at most a quarter of the watch): 15 s and 1 s. Tests shorten them,
 * keeping the ratios to the 5 s open bound (dataDirTiming in flags/persistence.ts).
 */
export const lockTiming = { watchMs: LEASE_REFRESH_MS * 1.5, stepMs: 1000, refreshMs: LEASE_REFRESH_MS }
/** Locks this process holds: a second server in the same process is refused too. */
const held = new Set<string>()

interface Holder {
  pid: number
  host: string
  since: string
  /** Linux: /proc/sys/kernel/random/boot_id when the lock was taken. */
  boot?: string
  /** Linux: the holder's start time in clock ticks since boot (/proc/PID/stat, field 22). */
  started?: string
  /** Linux: the holder's pid namespace (`pid:[inode]` of /proc/self/ns/pid): its pid means nothing in another. */
  pidns?: string
  /** Random, per lock taken: tells this holder from another with the same pid and hostname. */
  instance?: string
}

/** What {@link acquireLock} tells its caller. */
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

// Makes the lock file at `path` holding `text`, or fails with EEXIST. Written aside, then linked
// into place: the lock never exists empty (a server reading it between an open and its write
// took it for one left torn by a crash, stale, and took it over). Where the file system has no
// hard links, made in place as before.
// The temp file is removed whatever fails (before, a write failing on a full disk left one
// beside the lock at every start tried).
async function create(path: string, text: string): Promise<void> {
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
async function putBack(aside: string, path: string): Promise<void> {
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
async function removeLeftovers(path: string): Promise<void> {
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

async function backWithin(path: string, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    if ((await stat(path).catch(() => undefined)) !== undefined) return true
  }
  return false
}

async function readHolder(path: string): Promise<Holder | undefined> {
  return parseHolder(await readFile(path, 'utf8').catch(() => undefined))
}

function parseHolder(text: string | undefined): Holder | undefined {
  if (text === undefined) return undefined
  try {
    const parsed = JSON.parse(text) as Partial<Holder>
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return undefined
    const str = (value: unknown) => (typeof value === 'string' ? value : undefined)
    return { pid: parsed.pid, host: parsed.host, since: String(parsed.since), boot: str(parsed.boot), started: str(parsed.started), pidns: str(parsed.pidns), instance: str(parsed.instance) }
  } catch {
    return undefined // unreadable (a crash while writing it): stale
  }
}

async function alive(path: string, holder: Holder, progress?: () => void): Promise<boolean> {
  if (holder.host !== hostname()) return touchedLately(path, progress)
  // The same hostname, but another boot id or pid namespace: an earlier boot of this machine, an
  // earlier life of this container (its pid 1), or a live server on another machine or container
  // with this hostname. Its pid cannot be checked here: alive unless the watch sees no touch (the
  // holder touches every 10 s), whatever its mtime says.
  const pidns = await pidNamespace()
  if ((holder.boot !== undefined && holder.boot !== (await bootId())) || (holder.pidns !== undefined && holder.pidns !== pidns)) return touchedLately(path, progress, true)
  // A Linux lock from before the pid namespace was recorded (an older server, during an upgrade):
  // its pid may be in another container. A pid alive here keeps it, as before; one that looks
  // gone (or is ours: a container's pid 1) is watched, not taken at once. Before, an older relay
  // living in another container under this hostname, as pid 1, was taken over at once by the
  // upgraded one: two relays on one spool until its next touch.
  const unsure = holder.boot !== undefined && holder.pidns === undefined && pidns !== undefined
  const watched = async () => unsure && (await touchedLately(path, progress, true))
  // Our own pid: held in this process, or left by an earlier life of it.
  if (holder.pid === process.pid) return held.has(path) || watched()
  // The pid has been given to a process started since.
  if (holder.started !== undefined) {
    const now = await startTime(holder.pid)
    if (now !== undefined && now !== holder.started) return watched()
  }
  try {
    process.kill(holder.pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' || watched()
  }
}

// Whether the holder on another host still touches the lock. Its mtimes come from the holder's
// clock (or the file server's), which may be minutes off this host's: an mtime within the stale
// period by this clock is alive; one that looks older (or far ahead) is watched for a while, and
// alive if it moves. Before, a holder whose clock ran 30 s behind looked stale at every start:
// a second server took the spool over from a live one, and both appended and delivered.
//
// The watch looks every second (a touch seen ends it), and says so through `progress`: the start
// bounds the open of a spool or data dir at 5 s without a call that returns (a hung mount). Before,
// one sleep of 15 s outlasted that bound: a relay started after its predecessor on another host
// died was refused its spool ("a hung mount?") and ran without its data dir until a restart.
//
// `watch`: watched even when its mtime looks recent (a holder whose pid cannot be checked, on a
// host with this hostname: an mtime from before a crash a few seconds ago is no sign of life).
async function touchedLately(path: string, progress?: () => void, watch = false): Promise<boolean> {
  const mtime = async () => {
    const at = (await stat(path).catch(() => undefined))?.mtimeMs
    progress?.()
    return at
  }
  const first = await mtime()
  if (first === undefined) return false
  if (!watch && Math.abs(Date.now() - first) < LEASE_STALE_MS) return true
  const step = Math.min(lockTiming.stepMs, lockTiming.watchMs / 4)
  for (let waited = 0; waited < lockTiming.watchMs; waited += step) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(step, lockTiming.watchMs - waited)))
    const now = await mtime()
    if (now === undefined) return false
    if (now !== first) return true
  }
  return false
}

async function pidNamespace(): Promise<string | undefined> {
  return readlink('/proc/self/ns/pid').catch(() => undefined)
}

async function bootId(): Promise<string | undefined> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined))?.trim()
}

// Field 22 of /proc/PID/stat, counted after the command name (in parentheses, which may hold spaces).
async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
}
