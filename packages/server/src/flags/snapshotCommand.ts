// `holdfast-server snapshot …`: the CI step that turns what the flag service says now into a file
// shipped with the build, either definitions for the relay's `--snapshot` or one context's values
// (a Bootstrap) for the browser client's `fallback`. It refuses to replace a good file with a bad
// result: an upstream that is down, answers HTML or `{}`, or has suddenly lost most of its flags
// fails the CI step (exit 1; a file that cannot be written, exit 3) and the previous file stays as it was. A redirect to another host is
// not followed (the CI key in --header must not reach it, and its answer is not the source's).
import { stableStringify, type Bootstrap, type FlagEntry } from '@holdfast/core'
import { clipped } from '../logger'
import { bootstrapSchema, definitionsSnapshotSchema } from './records'
import { MAX_FLAGS_FILE_BYTES } from './fileSource'
import { readRegularFile } from './readRegularFile'
import { createDefinitionsSlot } from './servedDefinitions'
import { checkShrink, DEFAULT_MAX_SHRINK_PERCENT } from './shrinkGuard'
import type { EventFileSystem } from '../events/fileSystem'
import { MAX_SNAPSHOT_BYTES, writeFileAtomic } from './snapshotFile'
import { readUpstreamAnswer } from './upstreamAnswer'
import { recordCredentials } from './snapshotCredentials'
import { ofrepEndpoint, redactUrl, upstreamFetch } from './upstreamFetch'

/** What to snapshot and where to write it. */
export type SnapshotRequest = (
  | {
      /** A flagd definitions URL (`--flags-url`): the definitions are written, for the relay's `--snapshot`. */
      flagsUrl: string
    }
  | {
      /** A flagd definitions file (`--flags`): checked and written, for the relay's `--snapshot`. */
      flagsFile: string
    }
  | {
      /** An OFREP server's base URL (`--upstream`): one context's values are written, as a Bootstrap for the client's `fallback`. */
      upstream: string
      /** The context whose values are asked for. */
      context: Record<string, unknown> & {
        /** The user (or device) the values are for. */
        targetingKey: string
      }
    }
) & {
  /** The file to write (atomically). */
  out: string
  /** Refuse a result that drops more than this share of the flags in `out`. Default 50. */
  maxShrinkPercent?: number
  /**
   * Extra request headers (e.g. `Authorization`). A Bootstrap records their names and a salted hash
   * of their values (`holdfastCredentials`): a relay in proxy mode serves it only to requests that
   * forward exactly these. Without any, it records nothing (served only to requests that forward none).
   */
  headers?: Record<string, string>
  /**
   * With `upstream`: write the values even when the upstream answered some flags with a per-flag
   * error (GENERAL, PARSE_ERROR…), which have no value and are left out (named in `warning`).
   * Default false: such an answer is refused, naming each flag, so a CI step never ships a
   * fallback missing a flag (a kill switch) without a word (`--allow-partial`).
   */
  allowPartial?: boolean
  /** Per request. Default 10,000 ms (a CI step can afford to wait). */
  timeoutMs?: number
  /** The `fetch` requests go through (tests, proxies). Default `globalThis.fetch`. */
  fetch?: typeof fetch
  /** The clock (epoch ms) the snapshot is dated with. Default `Date.now`. */
  now?: () => number
  /** The file system `out` is written through (tests inject faults). Default: the real one. */
  fs?: EventFileSystem
}

/** The outcome: written (with a one-line summary), or refused and why. Never throws. */
export type SnapshotResult =
  | {
      /** The file was written. */
      ok: true
      /** One line saying what was written, for the CI log. */
      summary: string
      /** Written with `allowPartial`, flags left out for their per-flag errors: each named. */
      warning?: string
    }
  | {
      /**
       * Not written, the previous file as it was; or written but its directory could not be synced
       * (a power cut may still undo it), which `message` says.
       */
      ok: false
      /** Why: the source down, invalid or shrunk, or the file not writable (or not synced). */
      message: string
    }

/** Runs the snapshot; see the file comment. */
export async function makeSnapshot(request: SnapshotRequest): Promise<SnapshotResult> {
  const result = await snapshotOutcome(request)
  return result.ok ? result : { ok: false, message: result.message }
}

/**
 * {@link makeSnapshot}, saying which side failed: `refused` (the source: down, invalid, shrunk; the
 * CLI's exit 1) or `write` (the file could not be written or synced; exit 3), so a CI log tells
 * the flag service failing from its own disk or path.
 */
export async function snapshotOutcome(request: SnapshotRequest): Promise<Extract<SnapshotResult, { ok: true }> | { ok: false; message: string; failed: 'refused' | 'write' }> {
  try {
    const result = 'upstream' in request ? await valuesSnapshot(request) : await definitionsSnapshot(request)
    return result.ok ? result : { ...result, failed: 'refused' }
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
    // Still a failure: the new file may not survive a power cut. But it is in place.
    if ((error as { renamed?: boolean }).renamed) return { ok: false, failed: 'write', message: `wrote ${request.out}, but could not sync its directory (${reason}): a power cut may still undo it` }
    return { ok: false, failed: 'write', message: `cannot write ${request.out}: ${reason}` }
  }
}

async function definitionsSnapshot(request: SnapshotRequest & ({ flagsUrl: string } | { flagsFile: string })): Promise<SnapshotResult> {
  const now = request.now ?? Date.now
  let text: string
  let from: string
  if ('flagsUrl' in request) {
    from = redactUrl(request.flagsUrl)
    const result = await upstreamFetch({ url: request.flagsUrl, method: 'GET', headers: request.headers, timeoutMs: request.timeoutMs ?? 10_000, fetch: request.fetch, redirects: 'same-host' })
    if (result.kind === 'failed') return { ok: false, message: result.message }
    if (result.kind !== 'ok') return { ok: false, message: `${from} answered 304 to a request without If-None-Match` }
    text = result.text
  } else {
    from = request.flagsFile
    try {
      text = await readRegularFile(request.flagsFile, MAX_FLAGS_FILE_BYTES)
    } catch (error) {
      return { ok: false, message: `cannot read ${request.flagsFile} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` }
    }
  }
  const slot = createDefinitionsSlot({ maxShrinkPercent: request.maxShrinkPercent ?? DEFAULT_MAX_SHRINK_PERCENT })
  const previous = await readExisting(request.out)
  // Neither guard can weigh the other kind: a mistyped --out must not swap one kind for the other.
  if (previous !== undefined && bootstrapSchema.safeParse(previous).success) {
    return { ok: false, message: `${request.out} holds one user's values (a Bootstrap), not definitions; left untouched (choose another --out, or remove it first)` }
  }
  const old = previous === undefined ? undefined : definitionsSnapshotSchema.safeParse(previous)
  if (old?.success) await slot.offer(JSON.stringify(old.data.definitions), 'snapshot', old.data.fetchedAt, { guard: false })
  // A bare flagd document is a valid --snapshot too: what FILE holds now all the same.
  else if (isObject(previous) && isObject(previous.flags)) await slot.offer(JSON.stringify(previous), 'snapshot', 0, { guard: false })
  const offered = await slot.offer(text, 'url', now())
  if ('refusal' in offered) return { ok: false, message: `refused ${from}: ${offered.refusal.message}; ${request.out} left untouched` }
  const served = offered.version
  const snapshot = { holdfastSnapshot: 1, kind: 'definitions', fetchedAt: now(), version: served.version, definitions: JSON.parse(stripBom(text)) }
  await writeFileAtomic(request.out, `${JSON.stringify(snapshot, null, 2)}\n`, request.fs)
  // A few names say what moved; thousands on one line only bury the rest of the CI log.
  const keys = offered.applied ? offered.changed : []
  const more = keys.length > 10 ? ` and ${keys.length - 10} more` : ''
  const changed = offered.applied ? `changed: ${keys.slice(0, 10).join(', ') || 'none'}${more}` : 'unchanged'
  return { ok: true, summary: `wrote ${request.out}: ${served.flagCount} flags, version ${served.version} (${changed})` }
}

/** Flags left out named in a message; the rest are counted. */
const NAMED_MAX = 10

/** `entries` as `"key" (detail)`, the first {@link NAMED_MAX} named and the rest counted ("and N more"). */
function nameSome(entries: FlagEntry[], detail: (e: FlagEntry) => string = () => ''): string[] {
  const named = entries.slice(0, NAMED_MAX).map((e) => `${JSON.stringify(clipped(e.key, 200))}${detail(e)}`)
  if (entries.length > NAMED_MAX) named.push(`and ${(entries.length - NAMED_MAX).toLocaleString('en-US')} more`)
  return named
}

async function valuesSnapshot(request: SnapshotRequest & { upstream: string; context: Bootstrap['context'] }): Promise<SnapshotResult> {
  const now = request.now ?? Date.now
  const from = redactUrl(request.upstream)
  const result = await upstreamFetch({
    url: ofrepEndpoint(request.upstream),
    method: 'POST',
    body: JSON.stringify({ context: request.context }),
    headers: request.headers,
    timeoutMs: request.timeoutMs ?? 10_000,
    fetch: request.fetch,
    redirects: 'same-host',
  })
  if (result.kind === 'failed') return { ok: false, message: result.message }
  if (result.kind !== 'ok') return { ok: false, message: `${from} answered 304 to a request without If-None-Match` }
  const read = readUpstreamAnswer(result.text, result.contentType)
  if (!read.ok) return { ok: false, message: `refused the answer of ${from}: ${read.message}; ${request.out} left untouched` }
  // A fallback only needs values; per-flag failures would only be dropped by the client.
  // A relay upstream that says its answer is stale vouches only as far as its own fetchedAt.
  const upstreamAt = read.answer.upstreamHoldfast?.stale ? read.answer.upstreamHoldfast.fetchedAt : undefined
  const fetchedAt = upstreamAt === undefined ? now() : Math.min(now(), upstreamAt)
  const flags: FlagEntry[] = read.answer.entries.filter((e) => e.errorCode === undefined).map((e) => ({ ...e, updatedAt: fetchedAt }))
  // A flag answered with an error has no value to write. Before, it was left out with exit 0 and
  // only a count on stdout, and a CI step shipped a fallback missing (say) its kill switch.
  // FLAG_NOT_FOUND is a flag that is gone (the client removes it too), named but no failure.
  const gone = read.answer.entries.filter((e) => e.errorCode === 'FLAG_NOT_FOUND')
  const failed = read.answer.entries.filter((e) => e.errorCode !== undefined && e.errorCode !== 'FLAG_NOT_FOUND')
  // An entry that could not be read (a key that is not a string, not an object) is a flag left out
  // too, and cannot be named: counted. Before, it was left out in silence (exit 0).
  const unread = read.answer.skipped
  // The first few named, the rest counted: an evaluator down answers every flag GENERAL, and
  // thousands of names were cut at the log's line bound with the end of the line (the file left
  // untouched, --allow-partial). As the definitions snapshot names its changed keys.
  const named = nameSome(failed, (e) => ` (${clipped(e.errorCode!, 64)}${e.errorDetails ? `: ${clipped(e.errorDetails, 200)}` : ''})`)
  const failedNames = [...named, ...(unread ? [`${unread} ${unread === 1 ? 'entry' : 'entries'} that could not be read (not an object with a string key)`] : [])].join(', ')
  const leftOut = failed.length + unread
  if (leftOut > 0 && !request.allowPartial) {
    return { ok: false, message: `${from} answered ${leftOut} flag(s) with an error and no value: ${failedNames}; a snapshot without them would ship without those flags, so ${request.out} is left untouched (--allow-partial writes the others)` }
  }
  const previous = await readExisting(request.out)
  if (previous !== undefined && (definitionsSnapshotSchema.safeParse(previous).success || (isObject(previous) && isObject(previous.flags)))) {
    return { ok: false, message: `${request.out} holds definitions, not one user's values; left untouched (choose another --out, or remove it first)` }
  }
  const old = previous === undefined ? undefined : bootstrapSchema.safeParse(previous)
  const verdict = checkShrink(old?.success ? old.data.flags.map((f) => f.key) : [], flags.map((f) => f.key), request.maxShrinkPercent ?? DEFAULT_MAX_SHRINK_PERCENT)
  // With --allow-partial, what was left out may be why (every flag failed: "no flags" of an upstream
  // that answered some): named, as in any other refusal of them.
  const why = leftOut > 0 ? ` (left out: ${failedNames})` : ''
  if (!verdict.ok) return { ok: false, message: `refused the answer of ${from}: ${verdict.message}${why}; ${request.out} left untouched` }
  const bootstrap: Bootstrap = { context: request.context, flags, fetchedAt }
  if (result.etag !== undefined) bootstrap.etag = result.etag
  // Whose values these are (see snapshotCredentials.ts): a relay in proxy mode serves them only to
  // requests that forward exactly these headers. The client reading it as a `fallback` ignores it.
  // Made with none, the file is a plain Bootstrap: a relay serves one that records nothing only to
  // requests that forward none, which is what a record of no headers would say.
  const headers = request.headers ?? {}
  const written = Object.keys(headers).length === 0 ? bootstrap : { ...bootstrap, holdfastCredentials: recordCredentials(headers) }
  await writeFileAtomic(request.out, `${JSON.stringify(written, null, 2)}\n`, request.fs)
  // Capped as the failed ones are: 3,000 flags deleted at once made one line past the log's bound.
  const notFound = gone.length ? ` (left out, not found: ${nameSome(gone).join(', ')})` : ''
  const summary = `wrote ${request.out}: a Bootstrap of ${flags.length} flags for ${stableStringify(request.context.targetingKey)}${notFound}`
  if (leftOut === 0) return { ok: true, summary }
  return { ok: true, summary, warning: `${request.out} is partial: left out ${leftOut} flag(s) ${from} answered with an error and no value: ${failedNames}` }
}

async function readExisting(path: string): Promise<unknown> {
  try {
    // Bounded as the relay reads a --snapshot: a multi-GB file at --out was read whole (2 GB of
    // memory for 1.9 GB); one over the bound is no snapshot a relay would serve, so no previous one.
    return JSON.parse(stripBom(await readRegularFile(path, MAX_SNAPSHOT_BYTES)))
  } catch {
    return undefined
  }
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
