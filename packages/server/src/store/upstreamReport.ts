// The leader's report of the upstream, shared through the store so followers can say how fresh
// their flags are, and its reader: another relay's report is input like any other.
import { z } from 'zod'

/** The leader's view of the upstream, shared so followers can say how fresh their flags are. */
export interface UpstreamReport {
  /** The upstream as the leader saw it: `ok` (its latest poll succeeded), `failing` (failed, or none succeeded yet), `unauthorized` (401/403) or `none` (no upstream; a follower ignores such a report). */
  state: 'ok' | 'failing' | 'unauthorized' | 'none'
  /** Epoch ms of the leader's latest poll that got a usable answer. */
  lastSuccessAt?: number
  /** Epoch ms of the leader's latest poll. */
  lastAttemptAt?: number
  /** Why the leader's latest failed poll failed; kept after a success, absent until a poll fails. */
  lastError?: {
    /** The kind of failure (`network`, `timeout`, `http`, `unauthorized`, ...). */
    kind: string
    /** What the failure said. */
    message: string
    /** The upstream's HTTP status, when it answered. */
    httpStatus?: number
  }
}

// Another relay's report, read from Redis: input like any other (a broken peer, a hand edit). A
// field that is not what it should be is dropped, not trusted: a follower times and persists what
// it reads here.
const finiteOrNone = z.number().finite().optional().catch(undefined)
const reportSchema = z.object({
  state: z.enum(['ok', 'failing', 'unauthorized', 'none']),
  lastSuccessAt: finiteOrNone,
  lastAttemptAt: finiteOrNone,
  lastError: z
    .object({ kind: z.string().max(64), message: z.string().max(2000), httpStatus: z.number().int().min(100).max(599).optional().catch(undefined) })
    .optional()
    .catch(undefined),
})

/** The leader's report as a follower may use it; undefined when it is not one. */
export function readUpstreamReport(text: string): UpstreamReport | undefined {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  const parsed = reportSchema.safeParse(json)
  if (!parsed.success) return undefined
  const { state, lastSuccessAt, lastAttemptAt, lastError } = parsed.data
  const report: UpstreamReport = { state }
  if (lastSuccessAt !== undefined) report.lastSuccessAt = lastSuccessAt
  if (lastAttemptAt !== undefined) report.lastAttemptAt = lastAttemptAt
  if (lastError) report.lastError = lastError.httpStatus === undefined ? { kind: lastError.kind, message: lastError.message } : lastError
  return report
}
