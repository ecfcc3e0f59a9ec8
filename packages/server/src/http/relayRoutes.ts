// The relay's operations routes: `GET /holdfast/v1/status` (for humans and scripts) and
// `POST /holdfast/v1/refresh` (an operator's "ask the upstream now", behind the admin key).
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { EventsStatus } from '../events/eventsStatus'
import type { FlagSource } from '../flags/flagSource'
import type { RefreshResult } from '../flags/refreshResult'
import { isRelaySource, statusOf } from '../flags/relay'
import { hasApiKey } from './auth'
import { answerBodyFailure, readBody, sendJson } from './body'
import type { Route } from './requestHandler'

/**
 * How long `POST /holdfast/v1/refresh` waits for the work it started before it answers 202 with
 * the progress so far (the work goes on): 30 s, under the usual proxy and curl timeouts.
 */
export const DEFAULT_REFRESH_ANSWER_WITHIN_MS = 30_000

/**
 * The routes. Status needs the API key like any data route (when one is set). Refresh ignores the
 * API key and needs `adminKey` as `Authorization: Bearer KEY` instead: clients hold the API key,
 * only operators hold the admin key. Without an admin key configured, refresh answers 403.
 */
export function createRelayRoutes(deps: { source: FlagSource; adminKey?: string; now?: () => number; events?: () => EventsStatus; refreshAnswerWithinMs?: number }): Record<string, Route> {
  const now = deps.now ?? Date.now
  // `events`: where they go, a write that hangs, the forwarding (events/pipeline.ts). Before, the
  // status said nothing of events: a spool on a mount that died looked as healthy as any.
  const status = (_req: IncomingMessage, res: ServerResponse) =>
    sendJson(res, 200, { ...statusOf(deps.source, now()), ...(deps.events ? { events: deps.events() } : {}) }, { 'Cache-Control': 'no-store' })
  const refresh = async (req: IncomingMessage, res: ServerResponse) => {
    if (deps.adminKey === undefined) {
      return sendJson(res, 403, { errorCode: 'ADMIN_KEY_NOT_SET', errorDetails: 'start the server with --admin-key (or HOLDFAST_ADMIN_KEY) to enable refresh' })
    }
    if (!hasApiKey(req, deps.adminKey)) {
      return sendJson(res, 401, { errorCode: 'UNAUTHORIZED', errorDetails: 'the admin key is required (Authorization: Bearer KEY)' }, { 'WWW-Authenticate': 'Bearer' })
    }
    // `{"acceptShrink": true}` at most, but the bound is every route's (CONTRACT §8: 413 past 1 MiB).
    const body = await readBody(req)
    if (!body.ok) return answerBodyFailure(res, body.reason)
    let acceptShrink = false
    if (body.text.trim() !== '') {
      try {
        acceptShrink = (JSON.parse(body.text) as { acceptShrink?: unknown })?.acceptShrink === true
      } catch {
        return sendJson(res, 400, { errorCode: 'PARSE_ERROR', errorDetails: 'the body must be empty or JSON like {"acceptShrink": true}' })
      }
    }
    const result = await refreshWithin(deps.source, acceptShrink, deps.refreshAnswerWithinMs ?? DEFAULT_REFRESH_ANSWER_WITHIN_MS)
    // 202: the round goes on (proxy mode, many contexts or a slow upstream); asked again, it joins it.
    const code = result.outcome === 'running' ? 202 : result.outcome === 'failed' || result.outcome === 'refused' ? 502 : 200
    sendJson(res, code, result, { 'Cache-Control': 'no-store' })
  }
  return {
    '/holdfast/v1/status': { name: 'relay.status', methods: { GET: status, HEAD: status } },
    '/holdfast/v1/refresh': { name: 'relay.refresh', auth: false, methods: { POST: refresh } },
  }
}

// Every source answers by the bound, whatever it waits on: proxy mode says how far its round got
// itself; otherwise (an upstream timeout configured at up to 10 minutes, a flags file on a mount
// that hangs) the refresh goes on and the answer says so, with the version served meanwhile. A
// refresh after it joins it (the poller shares the request in flight; a file re-read queues one).
async function refreshWithin(source: FlagSource, acceptShrink: boolean, answerWithinMs: number): Promise<RefreshResult> {
  const work = refreshSource(source, acceptShrink, answerWithinMs)
  let timer: ReturnType<typeof setTimeout> | undefined
  // A moment after the source's own bound, so that proxy mode's answer with its progress comes first.
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), answerWithinMs + 100)))
  try {
    const done = await Promise.race([work, late])
    if (done !== 'late') return done
  } finally {
    clearTimeout(timer)
  }
  work.catch(() => {})
  const version = isRelaySource(source) ? source.relayStatus().version : source.current()?.version ?? null
  return { outcome: 'running', version, changed: [] }
}

// A local source (a file) has no detailed refresh: re-read it and tell the changes from the
// update events it sends meanwhile.
async function refreshSource(source: FlagSource, acceptShrink: boolean, answerWithinMs: number): Promise<RefreshResult> {
  if (isRelaySource(source)) return source.refreshDetails({ acceptShrink, answerWithinMs })
  const changed = new Set<string>()
  let refused: string | undefined
  const stop = source.subscribe((event) => {
    if (event.type === 'update') for (const key of event.changed) changed.add(key)
    else refused = event.type === 'refused' ? event.reason : event.error
  })
  try {
    const ok = await source.refresh()
    const result: RefreshResult = { outcome: ok ? (changed.size > 0 ? 'applied' : 'unchanged') : 'refused', version: source.current()?.version ?? null, changed: [...changed].sort() }
    if (!ok && refused) result.error = { kind: 'refused', message: refused }
    return result
  } finally {
    stop()
  }
}
