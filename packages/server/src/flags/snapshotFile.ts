// Snapshot files: made at build time (`holdfast-server snapshot …`), read by `--snapshot FILE` as
// the oldest layer, or shipped to the browser as a `fallback` Bootstrap.
import { randomBytes } from 'node:crypto'
import { open, realpath, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Bootstrap } from '@holdfast/core'
import type { ServerLogger } from '../logger'
import { readRegularFile } from './readRegularFile'
import { bootstrapSchema, definitionsSnapshotSchema } from './records'

/** A snapshot read from disk: definitions (any context can be evaluated) or one context's values. */
export type SnapshotLayer =
  | { kind: 'definitions'; text: string; fetchedAt: number }
  | { kind: 'bootstrap'; bootstrap: Bootstrap }

/**
 * A `--snapshot` whose content cannot be used: torn (truncated JSON, zero bytes, a deploy or a copy
 * cut short) or none of the shapes a snapshot has. Unlike a path that cannot be read at all (missing,
 * a FIFO, a directory: the operator named the wrong thing), this is a fault of the file, found at a
 * restart: a relay with good values elsewhere starts without it (see {@link loadSnapshotLayer}).
 */
export class UnusableSnapshotError extends Error {}

/** `snapshot` in `/holdfast/v1/status` (with `--snapshot`): whether it could be used, and why not. */
export interface SnapshotState {
  path: string
  usable: boolean
  error?: string
}

/**
 * Reads `--snapshot FILE`: a definitions snapshot, a bare flagd document (aged by the file's
 * mtime) or a Bootstrap. Rejects with a message naming the file when it is none of those (an
 * {@link UnusableSnapshotError}) or cannot be read; whether the definitions themselves are valid is
 * checked where they are offered for service.
 */
export async function readSnapshotFile(path: string): Promise<SnapshotLayer> {
  let text: string
  try {
    text = await readRegularFile(path)
  } catch (error) {
    throw new Error(`[holdfast-server] cannot read the snapshot ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`)
  }
  if (text.length === 0) throw new UnusableSnapshotError(`[holdfast-server] the snapshot ${path} is empty (0 bytes: a torn write or copy?)`)
  let json: unknown
  try {
    json = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch {
    throw new UnusableSnapshotError(`[holdfast-server] the snapshot ${path} is not valid JSON (${text.length} bytes: truncated?)`)
  }
  // Nothing in the file was fetched after the file was written: its time is at most the file's
  // mtime. Timeline this guards against: CI, its clock a year ahead, stamps the snapshot; the relay
  // serves the upstream and saves it to the data dir; at a restart during an outage the snapshot's
  // time (clamped only to now) beat the data dir's, and the relay went back to the build's values.
  const written = (await stat(path)).mtimeMs
  const definitions = definitionsSnapshotSchema.safeParse(json)
  if (definitions.success) return { kind: 'definitions', text: JSON.stringify(definitions.data.definitions), fetchedAt: Math.min(definitions.data.fetchedAt, written) }
  const bootstrap = bootstrapSchema.safeParse(json)
  // No `fetchedAt` means "the oldest possible" (CONTRACT §3): age it as such. Validated, then used
  // as JSON.parse gave it: zod's copy drops a "__proto__" key inside a value, which the snapshot
  // command wrote as the upstream (and the relay) served it.
  if (bootstrap.success) return { kind: 'bootstrap', bootstrap: { ...(json as Bootstrap), fetchedAt: Math.min(bootstrap.data.fetchedAt ?? 0, written) } }
  if (isObject(json) && isObject(json.flags)) return { kind: 'definitions', text, fetchedAt: written }
  throw new UnusableSnapshotError(`[holdfast-server] the snapshot ${path} is neither a definitions snapshot, a flagd document nor a Bootstrap`)
}

/**
 * Reads the `--snapshot` at a relay's start. An unusable one (see {@link UnusableSnapshotError}) is
 * logged as an error naming the file and why, and comes back as a `state` that says so: the source
 * serves its other layers (data dir, upstream, Redis) and refuses to start only when none of them
 * has anything ({@link nothingToServe}). A path that cannot be read still rejects.
 */
export async function loadSnapshotLayer(path: string, log: ServerLogger): Promise<{ layer?: SnapshotLayer; state: SnapshotState }> {
  try {
    return { layer: await readSnapshotFile(path), state: { path, usable: true } }
  } catch (error) {
    if (!(error instanceof UnusableSnapshotError)) throw error
    return unusableSnapshot(path, error.message, log)
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
 * Writes `text` to `path` atomically and durably: a temp file beside it, fsync, rename. Either the
 * old file or the complete new one is there afterwards, never a torn one. When `path` is a symlink
 * the file it names is replaced and the link stays: renaming over the link itself would leave
 * whatever else reads that file on the old content.
 */
export async function writeFileAtomic(to: string, text: string): Promise<void> {
  const path = await realpath(to).catch(() => to)
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const handle = await open(temp, 'w', 0o644)
  try {
    await handle.writeFile(text)
    await handle.sync()
    await handle.close()
    await rename(temp, path)
  } catch (error) {
    await handle.close().catch(() => {})
    await rm(temp, { force: true }).catch(() => {})
    throw error
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
