// Snapshot files: made at build time (`holdfast-server snapshot …`), read by `--snapshot FILE` as
// the oldest layer, or shipped to the browser as a `fallback` Bootstrap.
import { randomBytes } from 'node:crypto'
import { realpath } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Bootstrap } from '@holdfast/core'
import { nodeFileSystem, writeFileAtomic as writeFileDurably, type EventFileSystem } from '../events/fileSystem'
import type { ServerLogger } from '../logger'
import { readRegularFileAndTime } from './readRegularFile'
import { MAX_UPSTREAM_BYTES } from './upstreamFetch'
import { bootstrapSchema, definitionsSnapshotSchema } from './records'
import { snapshotCredentialsSchema, unmatchableRecord, type SnapshotCredentials } from './snapshotCredentials'

/**
 * A snapshot read from disk: definitions (any context can be evaluated) or one context's values,
 * with the credentials they were made with when the file records them (`holdfastCredentials`; a
 * file written before it was recorded has none: see snapshotCredentials.ts).
 */
export type SnapshotLayer =
  | { kind: 'definitions'; text: string; fetchedAt: number }
  | { kind: 'bootstrap'; bootstrap: Bootstrap; credentials?: SnapshotCredentials }

/**
 * A `--snapshot` whose content cannot be used: torn (truncated JSON, zero bytes, a deploy or a copy
 * cut short) or none of the shapes a snapshot has. Unlike a path that cannot be read at all (missing,
 * a FIFO, a directory: the operator named the wrong thing), this is a fault of the file, found at a
 * restart: a relay with good values elsewhere starts without it (see {@link loadSnapshotLayer}).
 */
export class UnusableSnapshotError extends Error {}

/**
 * A values snapshot whose `holdfastCredentials` no request can match (see `unmatchableRecord`):
 * unusable, but no refusal to start in proxy mode, as one made with a header the relay does not
 * forward is not: a relay restarted in an upstream outage starts not ready (503) rather than exit.
 */
export class UnservableSnapshotError extends UnusableSnapshotError {}

/** `snapshot` in `/holdfast/v1/status` (with `--snapshot`): whether it could be used, and why not. */
export interface SnapshotState {
  path: string
  usable: boolean
  error?: string
  /** Proxy mode, a usable snapshot: `definitions` (evaluated for any context) or `values` (a Bootstrap: one user's). */
  kind?: 'definitions' | 'values'
  /**
   * Proxy mode, a usable snapshot: to which requests it stands in for the upstream.
   * `its-credentials`: a values snapshot, only to requests that forward the credentials it records
   * (none, when it records none). `every-request`: definitions, whatever credentials a request
   * forwards (`forwardHeaders` names the relay's, when it forwards any): one tenant's definitions for
   * every tenant's users, when the relay's clients are several.
   */
  servedTo?: 'its-credentials' | 'every-request'
  /** With `servedTo: 'every-request'`: the headers the relay forwards (lower case), which the snapshot does not tell apart. */
  forwardHeaders?: string[]
}

/**
 * The largest `--snapshot` read: four times the largest flags document (16 MiB), room for the
 * snapshot command's indentation. A path named by mistake (a log, a disk image) is refused at start
 * by its size, not read whole into memory first.
 */
export const MAX_SNAPSHOT_BYTES = 4 * MAX_UPSTREAM_BYTES

/**
 * Reads `--snapshot FILE`: a definitions snapshot, a bare flagd document (aged by the file's
 * mtime) or a Bootstrap. Rejects with a message naming the file when it is none of those (an
 * {@link UnusableSnapshotError}) or cannot be read; whether the definitions themselves are valid is
 * checked where they are offered for service.
 */
export async function readSnapshotFile(path: string, now = Date.now()): Promise<SnapshotLayer> {
  let read: { text: string; mtimeMs: number }
  try {
    read = await readRegularFileAndTime(path, MAX_SNAPSHOT_BYTES)
  } catch (error) {
    throw new Error(`[holdfast-server] cannot read the snapshot ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
  // The time of the file read, not of whatever is at the path now.
  const { text, mtimeMs: written } = read
  if (text.length === 0) throw new UnusableSnapshotError(`[holdfast-server] the snapshot ${path} is empty (0 bytes: a torn write or copy?)`)
  let json: unknown
  try {
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch {
    throw new UnusableSnapshotError(`[holdfast-server] the snapshot ${path} is not valid JSON (${text.length} bytes: truncated?)`)
  }
  const definitions = definitionsSnapshotSchema.safeParse(json)
  if (definitions.success) return { kind: 'definitions', text: JSON.stringify(definitions.data.definitions), fetchedAt: snapshotTime(definitions.data.fetchedAt, written, now) }
  const bootstrap = bootstrapSchema.safeParse(json)
  // No `fetchedAt` means "the oldest possible" (CONTRACT §3): age it as such. Validated, then used
  // as JSON.parse gave it: zod's copy drops a "__proto__" key inside a value, which the snapshot
  // command wrote as the upstream (and the relay) served it.
  if (bootstrap.success) {
    const { holdfastCredentials: recorded, ...values } = json as Bootstrap & { holdfastCredentials?: unknown }
    const layer: SnapshotLayer = { kind: 'bootstrap', bootstrap: { ...values, fetchedAt: bootstrap.data.fetchedAt === undefined ? 0 : snapshotTime(bootstrap.data.fetchedAt, written, now) } }
    if (recorded === undefined) return layer
    // Unreadable, it could not say whose values these are: not served to anyone (a hand edit?).
    const credentials = snapshotCredentialsSchema.safeParse(recorded)
    if (!credentials.success) {
      const unmatchable = unmatchableRecord(recorded)
      if (unmatchable) throw new UnservableSnapshotError(`[holdfast-server] the snapshot ${path} can be served to nobody: ${unmatchable}`)
      throw new UnusableSnapshotError(`[holdfast-server] the snapshot ${path} has a holdfastCredentials that cannot be read (edited by hand?): whose values it holds is unknown`)
    }
    return { ...layer, credentials: { ...credentials.data, headers: [...credentials.data.headers].sort() } }
  }
  // A bare flagd document says nothing of its time but its mtime; a normalised one says nothing.
  if (isObject(json) && isObject(json.flags)) return { kind: 'definitions', text, fetchedAt: written >= PLAUSIBLE_MTIME ? Math.min(written, now) : 0 }
  throw new UnusableSnapshotError(`[holdfast-server] the snapshot ${path} is neither a definitions snapshot, a flagd document nor a Bootstrap`)
}

/**
 * Modification times before this (2020-01-01) are taken as set by a reproducible build, not as when
 * the file was written: 0 or 1 (Nix), 1980-01-01 (the earliest a zip can hold), 2010-01-01 (Bazel's
 * jars). No snapshot of this project was written before it.
 */
export const PLAUSIBLE_MTIME = Date.UTC(2020, 0, 1)

/**
 * When a snapshot's values were fetched, for ordering it against the data dir and for
 * `metadata.holdfast.fetchedAt`. Its own `fetchedAt` is believed unless this host's clock proves it
 * wrong: in the future, stamped by a clock that ran ahead (a CI machine). Then nothing in the file
 * can be newer than the file: it is capped at the mtime, when that mtime is plausible, else at now.
 * Timeline the cap guards against: CI, its clock a year ahead, stamps the snapshot; the relay serves
 * the upstream and saves it to the data dir; at a restart during an outage the snapshot's time
 * (clamped only to now) beat the data dir's, and the relay went back to the build's values. The
 * mtime is not trusted for a `fetchedAt` in the past: a reproducible build sets it to 1970, 1980 or
 * SOURCE_DATE_EPOCH (the commit's time, maybe weeks before the snapshot), and capped at it a snapshot
 * taken an hour ago was served as decades old and lost to any older data dir.
 */
export function snapshotTime(fetchedAt: number, mtime: number, now: number): number {
  if (fetchedAt <= now) return fetchedAt
  return mtime >= PLAUSIBLE_MTIME ? Math.min(mtime, now) : now
}

/**
 * Reads the `--snapshot` at a relay's start. An unusable one (see {@link UnusableSnapshotError}) is
 * logged as an error naming the file and why, and comes back as a `state` that says so: the source
 * serves its other layers (data dir, upstream, Redis) and refuses to start only when none of them
 * has anything ({@link nothingToServe}). A path that cannot be read still rejects.
 */
export async function loadSnapshotLayer(path: string, log: ServerLogger, now = Date.now()): Promise<{ layer?: SnapshotLayer; state: SnapshotState; servedToNobody?: true }> {
  try {
    return { layer: await readSnapshotFile(path, now), state: { path, usable: true } }
  } catch (error) {
    if (!(error instanceof UnusableSnapshotError)) throw error
    const unusable = unusableSnapshot(path, error.message, log)
    return error instanceof UnservableSnapshotError ? { ...unusable, servedToNobody: true } : unusable
  }
}

/** The state of a snapshot found unusable after it was read (no flags, invalid definitions), logged as such. */
export function unusableSnapshot(path: string, message: string, log: ServerLogger): { state: SnapshotState } {
  const why = message.replace(/^\[holdfast-server\] /, '')
  log.error(`${why}; the snapshot is not served (the data dir, the upstream or Redis are, when they have flags)`)
  return { state: { path, usable: false, error: why } }
}

/** The refusal to start of a source whose snapshot was unusable and that has nothing else to serve. */
export function nothingToServe(state: SnapshotState, also: string): Error {
  return new Error(`[holdfast-server] ${state.error}, and ${also}: nothing to serve, refusing to start`)
}

/**
 * Writes `text` to `path` atomically and durably through the file-system seam `fs` (default the real
 * one): a temp file beside it, write, fsync, rename, fsync of the directory (so that after a power
 * cut the rename is there too). Either the old file or the complete new one is there afterwards,
 * never a torn one. When `path` is a symlink the file it names is replaced and the link stays:
 * renaming over the link itself would leave whatever else reads that file on the old content.
 * Temp files an earlier writer left beside it (killed mid-write) are removed first, see
 * {@link removeStaleTemps}.
 */
export async function writeFileAtomic(to: string, text: string, fs: EventFileSystem = nodeFileSystem): Promise<void> {
  const path = await realpath(to).catch(() => to)
  const temp = join(dirname(path), `${tempPrefix(path)}${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  await removeStaleTemps(fs, path)
  writing.add(temp)
  try {
    await writeFileDurably(fs, path, text, { temporary: temp, permissions: 0o644 })
  } finally {
    writing.delete(temp)
  }
}

/** Temp files of this process being written now: never stale, whatever their age. */
const writing = new Set<string>()

/** A temp file of a writer that is alive (another process, or another write of this one) is left alone this long at most. */
export const STALE_TEMP_MS = 10 * 60_000

/**
 * A temp file written within this (60 s) is kept whatever its PID says: on a shared volume the
 * writer may be on another host or in another container, where its PID means nothing here (gone in
 * this PID namespace, or this process's own: PID 1 in both). A write keeps its temp's mtime fresh.
 */
export const FRESH_TEMP_MS = 60_000

const tempPrefix = (path: string) => `.${basename(path)}.`

/**
 * Removes the temp files that writers of `path` left beside it when they were killed mid-write
 * (`.NAME.PID.HEX.tmp`, exactly this naming; nothing else in the directory is touched), so a CI
 * step killed at every timeout does not fill the disk with them. One is stale when the process
 * named by its PID is gone, or is this process but not writing it now (a PID reused, as in a fresh
 * container where every run has the same PID), or when it was last written more than
 * {@link STALE_TEMP_MS} ago (a PID reused by an unrelated process); never within
 * {@link FRESH_TEMP_MS} of its last write (a writer on another host of a shared volume). A live
 * writer's temp is kept, so two `snapshot` commands writing the same `--out` at once do not break
 * each other's write.
 * Best effort: a failure here never fails the write.
 */
export async function removeStaleTemps(fs: EventFileSystem, path: string, now = Date.now()): Promise<void> {
  const dir = dirname(path)
  const prefix = tempPrefix(path)
  let names: string[]
  try {
    names = await fs.list(dir)
  } catch {
    return
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const match = /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length))
    if (!match) continue
    const temp = join(dir, name)
    if (writing.has(temp)) continue
    const pid = Number(match[1])
    try {
      const info = await fs.stat(temp)
      if (!info) continue
      const age = now - info.mtimeMs
      if (age < FRESH_TEMP_MS || (pid !== process.pid && isAlive(pid) && age < STALE_TEMP_MS)) continue
      await fs.remove(temp)
    } catch {
      // best effort, see above
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists, owned by another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
