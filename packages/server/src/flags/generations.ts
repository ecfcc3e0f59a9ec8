// The relay's data dir: numbered generations of what it last served, written so that no crash, full
// disk or kill -9 can leave it without a loadable copy. Each generation is one file:
//
//   line 1: {"holdfastGeneration":1,"sha256":"<hex of the payload>","bytes":<payload length>,"source":"<tag>"?}
//   rest:   the payload (opaque UTF-8 text; the caller's JSON)
//
// `source` tags what the payload came from (a hash of the relay's source and the credentials it
// sends there): a generation written for another source is skipped, never served.
//
// Write path (through the file-system seam, events/fileSystem.ts): temp file in the same dir → write
// → fsync → close → rename to gen-<n>.json → fsync the directory (so the rename itself survives a
// power cut; a platform that refuses a directory fsync is let be, an EIO fails the save) → delete
// the oldest beyond `keep`.
// Read path: newest first; a file whose header or checksum does not hold (torn by a crash mid-write,
// truncated by a full disk, edited by hand) is skipped for the next older one.
//
// This module knows nothing about flags; the Redis store of a later issue can sit beside it.
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { readRegularFile, readRegularFileHead } from './readRegularFile'
import { MAX_UPSTREAM_BYTES } from './upstreamFetch'
import { eachLimited } from '../eachLimited'
import { nodeFileSystem, writeFileAtomic, type EventFileSystem } from '../events/fileSystem'

/** How many generations the data dir keeps by default: 3 (the newest and two to fall back to). */
export const DEFAULT_KEEP_GENERATIONS = 3

/**
 * The largest generation file read back by default: 64 MiB, four times the largest flags document
 * the relay takes from its upstream (as for a --snapshot). A file over it (a disk error, a stray
 * copy, a half-restored backup of several GB) is skipped for the next older one without being read:
 * before, it was read whole, and a file of 1.9 GB held the start for seconds and took 2 GB of memory.
 */
export const MAX_GENERATION_BYTES = 4 * MAX_UPSTREAM_BYTES

const NAME = /^gen-(\d{12})\.json$/
const TEMP = /^\.gen-.*\.tmp$/

/** One generation file as listed by {@link GenerationStore.list}. */
export interface GenerationInfo {
  /** The generation number, counting up from 1 across restarts. */
  number: number
  /** Absolute path of the file. */
  path: string
}

/** A generation read back and verified by {@link GenerationStore.loadNewest}. */
export interface LoadedGeneration extends GenerationInfo {
  /** The payload exactly as it was saved. */
  payload: string
}

/**
 * Why a generation was skipped, in one word (the status' `dataDir.skipped[].reason` and the label of
 * `holdfast_relay_data_dir_skipped_total`): `torn` (cut short: no header line, or fewer bytes than
 * it says), `corrupt` (its header or checksum does not hold), `too-large` (over the bound, not
 * read), `unreadable` (not a regular file, or the read failed), `unusable` (intact, refused by the caller),
 * `other-source` (intact, but written for another source or other credentials: see
 * {@link GenerationStoreOptions.source}).
 */
export type SkipReason = 'torn' | 'corrupt' | 'too-large' | 'unreadable' | 'unusable' | 'other-source'

/** A generation the store skipped while loading, and why (for logs and status). */
export interface SkippedGeneration extends GenerationInfo {
  /**
   * What was found, for the log: `checksum mismatch`, `length 10 ≠ 42 (torn write?)`… (the status
   * calls this `detail`; its `reason` is {@link kind}).
   */
  reason: string
  /** Why, in one word: the status' `dataDir.skipped[].reason` and the metric's `reason` label. */
  kind: SkipReason
}

/**
 * The data dir's small API: load the newest valid generation, save a new one, list them. Every
 * method rejects only for programmer errors; I/O failures of `save` reject with the OS error so the
 * caller can count and report them (the previous generations stay intact either way).
 */
export interface GenerationStore {
  /** The directory, absolute. */
  readonly dir: string
  /**
   * The newest generation whose checksum holds, or undefined when there is none. `accept` may
   * refuse a payload that is intact but unusable (e.g. not parseable by the caller); the next older
   * one is then tried. Skipped files are reported in `skipped`.
   */
  loadNewest(accept?: (payload: string) => boolean): Promise<{ loaded?: LoadedGeneration; skipped: SkippedGeneration[] }>
  /** Writes `payload` as the next generation, crash-safely; resolves with its number. */
  save(payload: string): Promise<number>
  /** The generation files present, newest first (unverified). */
  list(): Promise<GenerationInfo[]>
}

/** Options of {@link createGenerationStore}. */
export interface GenerationStoreOptions {
  /** The directory; created (with parents) on first use. */
  dir: string
  /** How many generations to keep. Default {@link DEFAULT_KEEP_GENERATIONS}; at least 2. */
  keep?: number
  /** The file system writes go through (tests inject a disk that fills or fails). Default: the real one. */
  fs?: EventFileSystem
  /**
   * The largest generation file read back, and written (a payload that would not be read back is
   * refused by `save`, so it cannot prune the good ones). Default {@link MAX_GENERATION_BYTES}.
   */
  maxBytes?: number
  /**
   * What the payloads come from: an opaque tag (the relay's is a hash of its source and the
   * credentials it sends there, as its Redis namespace is), written into every generation. A
   * generation tagged with another source is skipped (`other-source`), so a relay restarted on the
   * same data dir but pointed at another upstream, or sending another key, never serves what the
   * old one was answered; an untagged one (written by an older server) is read as before. Default:
   * none (nothing written, nothing checked).
   */
  source?: string
}

/** Frames a payload with its checksum header (exported for tests that forge or tear files), tagged with `source` when given. */
export function encodeGeneration(payload: string, source?: string): string {
  const bytes = Buffer.byteLength(payload)
  const sha256 = createHash('sha256').update(payload).digest('hex')
  return `${JSON.stringify(source === undefined ? { holdfastGeneration: 1, sha256, bytes } : { holdfastGeneration: 1, sha256, bytes, source })}\n${payload}`
}

/** What a generation's header line says (see {@link encodeGeneration}). */
interface GenerationHeader {
  sha256: string
  bytes: number
  source?: string
}

/** Reads the header line of a framed file (`text` up to its first newline, or its start). */
function readHeader(line: string): GenerationHeader | 'unreadable' | undefined {
  let h: { holdfastGeneration?: unknown; sha256?: unknown; bytes?: unknown; source?: unknown } | null
  try {
    h = JSON.parse(line)
  } catch {
    return 'unreadable'
  }
  if (h === null || typeof h !== 'object' || h.holdfastGeneration !== 1 || typeof h.sha256 !== 'string' || typeof h.bytes !== 'number') return undefined
  if (h.source !== undefined && typeof h.source !== 'string') return undefined
  return h.source === undefined ? { sha256: h.sha256, bytes: h.bytes } : { sha256: h.sha256, bytes: h.bytes, source: h.source }
}

/** Verifies a framed file; returns the payload (and its source tag, if any) or why it cannot be trusted. */
export function decodeGeneration(text: string): { ok: true; payload: string; source?: string } | { ok: false; reason: string; kind: 'torn' | 'corrupt' } {
  const newline = text.indexOf('\n')
  if (newline < 0) return { ok: false, reason: 'no header line (torn write?)', kind: 'torn' }
  const h = readHeader(text.slice(0, newline))
  if (h === 'unreadable') return { ok: false, reason: 'unreadable header', kind: 'corrupt' }
  if (h === undefined) return { ok: false, reason: 'not a holdfast generation file', kind: 'corrupt' }
  const payload = text.slice(newline + 1)
  const bytes = Buffer.byteLength(payload)
  // Fewer bytes than the header says: cut short (a crash, a full disk). More: something was added.
  if (bytes !== h.bytes) return { ok: false, reason: `length ${bytes} ≠ ${h.bytes} (torn write?)`, kind: bytes < h.bytes ? 'torn' : 'corrupt' }
  if (createHash('sha256').update(payload).digest('hex') !== h.sha256) return { ok: false, reason: 'checksum mismatch', kind: 'corrupt' }
  return h.source === undefined ? { ok: true, payload } : { ok: true, payload, source: h.source }
}

/** Creates the {@link GenerationStore} over `options.dir`. Touches the disk only when called. */
export function createGenerationStore(options: GenerationStoreOptions): GenerationStore {
  const dir = options.dir
  const fs = options.fs ?? nodeFileSystem
  const keep = Math.max(2, options.keep ?? DEFAULT_KEEP_GENERATIONS)
  const maxBytes = options.maxBytes ?? MAX_GENERATION_BYTES
  let next: number | undefined
  // Saves are chained: two overlapping saves must not pick the same number or prune each other.
  let chain: Promise<unknown> = Promise.resolve()
  // The generation last loaded or saved here: the one served (`accept` may have refused newer intact ones).
  let good: number | undefined
  // Whether a generation tagged `tag` may be served here: an untagged one was written by an older server.
  const ours = (tag: string | undefined) => options.source === undefined || tag === undefined || tag === options.source
  // Whether each generation (by number) was written for another source, as far as known: learned
  // as files are read or written here, else read from the file's header line (see `isForeign`).
  const foreign = new Map<number, boolean>()
  // Another source's generation is never served here: it is stale to this relay, and goes before
  // any of its own when room is made or generations are pruned. A file whose header cannot be read
  // is not known to be another's, and is kept or pruned by its number as before.
  const isForeign = async (info: GenerationInfo): Promise<boolean> => {
    if (options.source === undefined) return false
    const known = foreign.get(info.number)
    if (known !== undefined) return known
    const head = await readRegularFileHead(info.path, HEAD_BYTES).catch(() => undefined)
    if (head === undefined) return false
    const tag = headerSource(head)
    foreign.set(info.number, tag !== undefined && !ours(tag))
    return foreign.get(info.number)!
  }
  const remove = async (info: GenerationInfo) => {
    await fs.remove(info.path).catch(() => {})
    foreign.delete(info.number)
  }

  // The index in `present` (newest first) of the newest generation known good: the one loaded or
  // saved here, else the newest whose checksum holds; undefined when none does.
  const newestGood = async (present: GenerationInfo[]): Promise<number | undefined> => {
    const served = present.findIndex((info) => info.number === good)
    if (served !== -1) return served
    for (const [index, info] of present.entries()) {
      const text = await readRegularFile(info.path, maxBytes).catch(() => undefined)
      const decoded = text === undefined ? undefined : decodeGeneration(text)
      if (decoded?.ok) foreign.set(info.number, !ours(decoded.source))
      if (decoded?.ok && ours(decoded.source)) return index
    }
    return undefined
  }

  const list = async (): Promise<GenerationInfo[]> => {
    const names = await fs.list(dir)
    const found: GenerationInfo[] = []
    for (const name of names) {
      const match = NAME.exec(name)
      if (match) found.push({ number: Number(match[1]), path: join(dir, name) })
    }
    return found.sort((a, b) => b.number - a.number)
  }

  const writeDurably = async (payload: string): Promise<number> => {
    await fs.mkdirp(dir)
    const present = await list()
    const number = Math.max(next ?? 1, (present[0]?.number ?? 0) + 1)
    const temp = join(dir, `.gen-${number}-${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
    const framed = encodeGeneration(payload, options.source)
    // A generation a restart would refuse to read must not be written: kept, it pruned a good one.
    if (Buffer.byteLength(framed) > maxBytes) throw new Error(`the generation would be larger than ${maxBytes / 1_048_576} MiB (${Buffer.byteLength(framed)} bytes), which a restart does not read`)
    // Write, fsync, close, rename, fsync of the directory; a full disk's partial temp file is removed.
    const write = () => writeFileAtomic(fs, join(dir, nameOf(number)), framed, { temporary: temp, permissions: 0o600 })
    try {
      await write()
    } catch (error) {
      // A disk that fills up, perhaps with our own generations: `keep` of them plus the temp file
      // may not fit where `keep` did (proxy mode's grow with the contexts), and every write failed
      // from then on, for ever, the data dir falling further behind what was served. The older ones
      // go (the newest good one stays, so at every instant one exists) and the write is tried once more.
      // "Good" is read, not assumed: the newest by number may be torn (a power cut, a hand edit) and
      // the one served an older one; deleting all but the newest by number, a retry that failed too
      // left no generation a restart could read.
      // Another source's generations go too, older or newer: kept, a dir of only theirs (a relay
      // re-pointed at another upstream, or sending another key) failed every write for good.
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error
      const kept = await newestGood(present)
      const doomed: GenerationInfo[] = []
      for (const [index, info] of present.entries()) {
        if (index !== kept && ((kept !== undefined && index > kept) || (await isForeign(info)))) doomed.push(info)
      }
      if (doomed.length === 0) throw error
      for (const old of doomed) await remove(old)
      present.splice(0, present.length, ...present.filter((info) => !doomed.includes(info)))
      await write()
    }
    next = number + 1
    good = number
    foreign.set(number, false)
    // Pruning after the rename: at every instant at least the previous good generation exists.
    // `keep` files in all, this source's first (newest first), then another source's in the room
    // left: kept by number alone, a relay back on its own source after a spell on another deleted
    // its own older generations and kept the other's, which it never serves.
    const own: GenerationInfo[] = []
    const theirs: GenerationInfo[] = []
    for (const info of present) ((await isForeign(info)) ? theirs : own).push(info)
    const kept = new Set([...own.slice(0, keep - 1), ...theirs.slice(0, Math.max(0, keep - 1 - own.length))])
    for (const old of present) if (!kept.has(old)) await remove(old)
    return number
  }

  return {
    dir,
    list,
    async loadNewest(accept) {
      const skipped: SkippedGeneration[] = []
      await removeStaleTemps(fs, dir)
      for (const info of await list()) {
        let text: string
        try {
          text = await readRegularFile(info.path, maxBytes)
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code
          skipped.push({ ...info, reason: `unreadable (${code ?? (error as Error).message})`, kind: (error as { tooLarge?: boolean }).tooLarge ? 'too-large' : 'unreadable' })
          continue
        }
        const decoded = decodeGeneration(text)
        if (!decoded.ok) {
          skipped.push({ ...info, reason: decoded.reason, kind: decoded.kind })
          continue
        }
        foreign.set(info.number, !ours(decoded.source))
        if (!ours(decoded.source)) {
          skipped.push({ ...info, reason: 'written for another source or other credentials (the data dir of a relay pointed elsewhere before this start)', kind: 'other-source' })
          continue
        }
        if (accept && !accept(decoded.payload)) {
          skipped.push({ ...info, reason: 'intact but not usable', kind: 'unusable' })
          continue
        }
        next = Math.max(next ?? 1, info.number + 1)
        good = info.number
        return { loaded: { ...info, payload: decoded.payload }, skipped }
      }
      return { skipped }
    },
    save(payload) {
      const run = chain.then(() => writeDurably(payload))
      chain = run.catch(() => {})
      return run
    },
  }
}

// The header line is ~150 bytes (a 64-character checksum, a 24-character source tag).
const HEAD_BYTES = 1024

/** The `source` tag in a generation file's header line (the start of the file), if it has one. */
function headerSource(head: string): string | undefined {
  const newline = head.indexOf('\n')
  const header = newline < 0 ? undefined : readHeader(head.slice(0, newline))
  return typeof header === 'object' ? header.source : undefined
}

function nameOf(number: number): string {
  return `gen-${String(number).padStart(12, '0')}.json`
}

// At most this many leftover temp files are removed before the load goes on; the rest go in the
// background. One by one, 20,000 of them (a crash loop) held the start back by ~2.5 s, and the
// delay grew with their number.
const TEMPS_REMOVED_FIRST = 256

// A crash between open and rename leaves a temp file behind; it never becomes a generation. The
// names are listed before anything is loaded or saved, so no temp file of this process is among
// them (the data dir's lock keeps other live servers out).
async function removeStaleTemps(fs: EventFileSystem, dir: string): Promise<void> {
  let paths: string[]
  try {
    paths = (await fs.list(dir)).filter((name) => TEMP.test(name)).map((name) => join(dir, name))
  } catch {
    return
  }
  // A few at a time: the removals share libuv's small thread pool with the relay's own reads.
  const remove = (path: string) => fs.remove(path).catch(() => {})
  await eachLimited(paths.slice(0, TEMPS_REMOVED_FIRST), 8, remove)
  if (paths.length > TEMPS_REMOVED_FIRST) void eachLimited(paths.slice(TEMPS_REMOVED_FIRST), 8, remove)
}
