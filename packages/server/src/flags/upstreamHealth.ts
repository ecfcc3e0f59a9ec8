// What the relay knows about its upstream, as a pure function of what happened (a reducer). The
// status route, the metrics and the `stale` bit of every answer all read this one value.
import type { UpstreamReport } from '../store/upstreamReport'
import type { UpstreamFailureKind } from './upstreamFetch'

/** `none`: no upstream (a local file). `ok`: the latest attempt succeeded. */
export type UpstreamState = 'ok' | 'failing' | 'unauthorized' | 'none'

/** Why the latest attempt failed. */
export interface UpstreamError {
  kind: UpstreamFailureKind
  message: string
  at: number
  httpStatus?: number
}

/** The upstream as the relay sees it. */
export interface UpstreamHealth {
  state: UpstreamState
  /** Epoch ms of the latest attempt that got a usable answer (200 applied or unchanged, 304). */
  lastSuccessAt?: number
  lastAttemptAt?: number
  lastError?: UpstreamError
  /** Since when every attempt answered 401/403 (for `clear-after`). */
  unauthorizedSince?: number
  /** Answers refused (failures and guarded documents), in total and by kind. */
  refused: number
  refusedBy: Partial<Record<UpstreamFailureKind, number>>
}

/**
 * What an attempt produced, for {@link reduceHealth}. `refused`: the upstream answered, but what it
 * said for one context was refused (proxy mode: emptied, shrunk, too large, or one user's 401/403
 * while others' credentials are accepted): counted, while the state, which
 * says whether the upstream itself answers, stays as it was.
 */
export type HealthEvent =
  | { type: 'success'; at: number }
  | { type: 'failure'; at: number; error: Omit<UpstreamError, 'at'> }
  | { type: 'refused'; at: number; error: Omit<UpstreamError, 'at'> }

/** The health before any attempt: `none` when there is no upstream, else `failing` until one succeeds. */
export function initialHealth(hasUpstream: boolean): UpstreamHealth {
  return { state: hasUpstream ? 'failing' : 'none', refused: 0, refusedBy: {} }
}

/** The next health after `event`. Every failure counts as a refusal: nothing it carried was applied. */
export function reduceHealth(health: UpstreamHealth, event: HealthEvent): UpstreamHealth {
  if (event.type === 'success') {
    const next: UpstreamHealth = { ...health, state: 'ok', lastSuccessAt: event.at, lastAttemptAt: event.at }
    delete next.unauthorizedSince
    return next
  }
  const counted = { refused: health.refused + 1, refusedBy: { ...health.refusedBy, [event.error.kind]: (health.refusedBy[event.error.kind] ?? 0) + 1 } }
  if (event.type === 'refused') return { ...health, lastAttemptAt: event.at, lastError: { ...event.error, at: event.at }, ...counted }
  const unauthorized = event.error.kind === 'unauthorized'
  const next: UpstreamHealth = {
    ...health,
    // Without an upstream (a local file) a refused edit is counted, but there is no upstream to fail.
    state: health.state === 'none' ? 'none' : unauthorized ? 'unauthorized' : 'failing',
    lastAttemptAt: event.at,
    lastError: { ...event.error, at: event.at },
    ...counted,
  }
  if (unauthorized) next.unauthorizedSince = health.unauthorizedSince ?? event.at
  else delete next.unauthorizedSince
  return next
}

/** `--on-upstream-unauthorized`: keep serving (default), clear at once, or clear after N seconds of 401/403. */
export type UnauthorizedPolicy = { mode: 'keep' } | { mode: 'clear' } | { mode: 'clear-after'; seconds: number }

/** Reads `keep | clear | clear-after=SECONDS`; undefined for anything else. */
export function parseUnauthorizedPolicy(text: string): UnauthorizedPolicy | undefined {
  if (text === 'keep' || text === 'clear') return { mode: text }
  const match = /^clear-after=(\d+(?:\.\d+)?)$/.exec(text)
  if (match && Number.isFinite(Number(match[1]))) return { mode: 'clear-after', seconds: Number(match[1]) }
  return undefined
}

/** Whether what is held must be dropped now, given the policy and how long 401/403 has lasted. */
export function shouldClear(policy: UnauthorizedPolicy, health: UpstreamHealth, now: number): boolean {
  if (health.state !== 'unauthorized' || health.unauthorizedSince === undefined) return false
  return unauthorizedLongEnough(policy, health.unauthorizedSince, now)
}

/** Whether, after nothing but 401/403 since `since`, what is held must be dropped now under `policy`. */
export function unauthorizedLongEnough(policy: UnauthorizedPolicy, since: number, now: number): boolean {
  if (policy.mode === 'keep') return false
  if (policy.mode === 'clear') return true
  return now - since >= policy.seconds * 1000
}

/** `--redis`: the leader's health as it shares it with the followers (no counts: each relay keeps its own). */
export function reportOfHealth(health: UpstreamHealth): UpstreamReport {
  const report: UpstreamReport = { state: health.state }
  if (health.lastSuccessAt !== undefined) report.lastSuccessAt = health.lastSuccessAt
  if (health.lastAttemptAt !== undefined) report.lastAttemptAt = health.lastAttemptAt
  if (health.lastError) report.lastError = { kind: health.lastError.kind, message: health.lastError.message, ...(health.lastError.httpStatus === undefined ? {} : { httpStatus: health.lastError.httpStatus }) }
  return report
}

/**
 * `--redis`: a follower's health after the leader's `report` (not `none`): what the leader's polls
 * found, without counting its refusals again. Its times come from the leader's clock: one in this
 * relay's future (`now`) counts as now. The 401/403 streak is timed on this relay's own clock, from
 * the first report of it: the leader's timestamps come from another machine, whose clock may be
 * hours off.
 */
export function followReport(health: UpstreamHealth, report: UpstreamReport, now: number): UpstreamHealth {
  const next: UpstreamHealth = { ...health, state: report.state }
  if (report.lastSuccessAt !== undefined) next.lastSuccessAt = Math.min(report.lastSuccessAt, now)
  if (report.lastAttemptAt !== undefined) next.lastAttemptAt = Math.min(report.lastAttemptAt, now)
  if (report.lastError) next.lastError = { kind: report.lastError.kind as UpstreamError['kind'], message: report.lastError.message, at: next.lastAttemptAt ?? now, ...(report.lastError.httpStatus === undefined ? {} : { httpStatus: report.lastError.httpStatus }) }
  if (report.state === 'unauthorized') next.unauthorizedSince = health.unauthorizedSince ?? now
  else delete next.unauthorizedSince
  return next
}
