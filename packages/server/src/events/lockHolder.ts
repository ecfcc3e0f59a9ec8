// Who holds a lock (what the lock file says of its holder) and whether that holder is alive: its
// pid on this host and boot, or its touches of the lock from anywhere else. See lockFile.ts.
import { hostname } from 'node:os'
import { readFile, readlink, stat } from 'node:fs/promises'
import { LEASE_STALE_MS, lockTiming } from './lockTiming'

/** Locks this process holds: a second server in the same process is refused too. */
export const held = new Set<string>()

/** What a lock file says of its holder. */
export interface Holder {
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

/** The holder the lock at `path` names; undefined when it is gone or unreadable. */
export async function readHolder(path: string): Promise<Holder | undefined> {
  return parseHolder(await readFile(path, 'utf8').catch(() => undefined))
}

/** A lock file's text as its holder; undefined when it is not one (a crash while writing it: stale). */
export function parseHolder(text: string | undefined): Holder | undefined {
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

/** Whether `holder` of the lock at `path` still runs (same host and boot: its pid) or still touches the lock (anywhere else). */
export async function alive(path: string, holder: Holder, progress?: () => void): Promise<boolean> {
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

/** This process's pid namespace (Linux: `pid:[inode]`); undefined elsewhere. */
export async function pidNamespace(): Promise<string | undefined> {
  return readlink('/proc/self/ns/pid').catch(() => undefined)
}

/** This boot's id (Linux); undefined elsewhere. */
export async function bootId(): Promise<string | undefined> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined))?.trim()
}

// Field 22 of /proc/PID/stat, counted after the command name (in parentheses, which may hold spaces).
export async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
}
