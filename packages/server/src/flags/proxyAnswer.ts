// What the proxy sends back: a context's held answer as an OFREP bulk body with its honest
// `metadata.holdfast`, a snapshot's answer for a context never seen, or a 503. Pure.
import type { FlagMap } from '@holdfast/core'
import type { EvaluationContext } from '@openfeature/core'
import { evaluateAll, type OfrepEntry } from '../ofrep/evaluate'
import type { HeldContext } from './contextCache'
import { toEntries } from './heldEntries'
import type { ParsedFlags } from './flagDefinitions'
import type { ForwardedAnswer } from './flagSource'
import { NOT_READY_RETRY_AFTER_SECONDS } from './relay'
import type { HoldfastMetadata } from './relayStatus'
import type { SnapshotLayer } from './snapshotFile'
import { madeWith } from './snapshotCredentials'

/** A context's held answer; stale when this attempt failed, when read from disk, or when a relay upstream said so. */
export function answerFromHeld(held: HeldContext, stale: boolean): ForwardedAnswer {
  const holdfast: HoldfastMetadata = { source: held.source, fetchedAt: held.fetchedAt, stale: stale || held.source !== 'upstream' || held.upstreamStale === true }
  return { status: 200, body: { flags: toEntries(held.flags, held.notFound), metadata: { ...held.metadata, holdfast } } }
}

/**
 * A `--snapshot`'s answer for a context never seen, or in place of a held answer older than the
 * snapshot (`over` in snapshotStandIn.ts), always stale: definitions evaluated for it,
 * or a Bootstrap's values for the user it was made for (same `targetingKey`, the client's own rule
 * for a bootstrap). A Bootstrap is one user's values, targeting applied: to anyone else it would
 * be another user's values, applied over what their browser holds (an answer beats the cache), so
 * they get the 503 of a context never seen and keep their own.
 * It is also one key's values: served only to a request that forwards exactly the credentials it
 * was made with (`forwarded`), or, from an older file that records none, to one that forwards none
 * (a relay whose clients send no credentials is one tenant). Before, tenant B's user got the values
 * the upstream made for tenant A's key.
 */
export function answerFromSnapshot(snapshot: SnapshotLayer, compiled: ParsedFlags | undefined, context: EvaluationContext, forwarded: Record<string, string>): ForwardedAnswer | undefined {
  if (!snapshotServes(snapshot, compiled, context, forwarded)) return undefined
  if (snapshot.kind === 'bootstrap') {
    const flags = snapshot.bootstrap.flags.filter((f) => f.errorCode === undefined) as OfrepEntry[]
    return { status: 200, body: { flags, metadata: { holdfast: { source: 'snapshot', fetchedAt: snapshot.bootstrap.fetchedAt, stale: true } } } }
  }
  if (!compiled?.ok) return undefined
  const evaluated = evaluateAll(compiled.core, context)
  return { status: 200, body: { flags: evaluated.flags, metadata: { ...evaluated.metadata, holdfast: { source: 'snapshot', fetchedAt: snapshot.fetchedAt, stale: true } } } }
}

/**
 * Whether {@link answerFromSnapshot} answers this context (cheap: nothing evaluated): definitions
 * that compiled answer any, a Bootstrap only its own user with its own credentials.
 */
export function snapshotServes(snapshot: SnapshotLayer, compiled: ParsedFlags | undefined, context: EvaluationContext, forwarded: Record<string, string>): boolean {
  if (snapshot.kind !== 'bootstrap') return compiled?.ok === true
  if (snapshot.bootstrap.context.targetingKey !== context.targetingKey) return false
  return snapshot.credentials ? madeWith(snapshot.credentials, forwarded) : Object.keys(forwarded).length === 0
}

/** When a snapshot's values were taken (the `metadata.holdfast.fetchedAt` its answers carry). */
export function snapshotFetchedAt(snapshot: SnapshotLayer): number {
  return snapshot.kind === 'bootstrap' ? snapshot.bootstrap.fetchedAt : snapshot.fetchedAt
}

/**
 * The 503 answered while nothing can be served for a context: never an empty 200, never a 401.
 * `Retry-After` is 5 s, or `retryAfterSeconds` when longer (the upstream asked for a pause).
 */
export function notReady(details: string, retryAfterSeconds = 0): ForwardedAnswer {
  return { status: 503, body: { errorCode: 'GENERAL', errorDetails: details }, headers: { 'Retry-After': String(Math.max(NOT_READY_RETRY_AFTER_SECONDS, retryAfterSeconds)) } }
}

/** The configured headers of a request, by lower-case name (repeated headers joined). */
export function pickHeaders(headers: Record<string, string | string[] | undefined>, names: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {}
  for (const name of names) {
    const value = headers[name]
    if (value !== undefined) picked[name] = Array.isArray(value) ? value.join(', ') : value
  }
  return picked
}

/** The keys whose value, variant or error changed, or that came or went. */
export function changedKeys(before: FlagMap, after: FlagMap): string[] {
  const changed: string[] = []
  for (const [key, flag] of after) {
    const prev = before.get(key)
    if (!prev || prev.value !== flag.value && JSON.stringify(prev.value) !== JSON.stringify(flag.value) || prev.variant !== flag.variant || prev.errorCode !== flag.errorCode) changed.push(key)
  }
  for (const key of before.keys()) if (!after.has(key)) changed.push(key)
  return changed.sort()
}

/**
 * An upstream error body as the relay passes it on: as written when it is an OFREP error (an object
 * with a non-empty string `errorCode`), else `{ errorCode: 'GENERAL', errorDetails }`. A gateway's own shape
 * (`{"message": …}`, a string, `null`, problem+json) would reach OFREP clients with no code to read.
 */
export function ofrepError(text: string | undefined, errorDetails: string): Record<string, unknown> {
  const body = parseOr(text, undefined) as Record<string, unknown> | undefined
  // `""` (a serializer without `omitempty`) is no code either: passed on, OFREP clients had none to read.
  return typeof body === 'object' && body !== null && typeof body.errorCode === 'string' && body.errorCode !== '' ? body : { errorCode: 'GENERAL', errorDetails }
}

/** `text` as JSON, or `fallback` when it is not. */
export function parseOr(text: string | undefined, fallback: unknown): unknown {
  try {
    return text === undefined ? fallback : JSON.parse(text)
  } catch {
    return fallback
  }
}
