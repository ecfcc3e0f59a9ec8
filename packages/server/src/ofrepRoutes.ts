import type { IncomingMessage, ServerResponse } from 'node:http'
import { evaluateAll, evaluateEntry, isFailure, readEvaluationRequest } from './evaluate'
import type { FlagSource } from './flagSource'
import { answerBodyFailure, etagMatches, etagOf, isGone, readBody, sendEmpty, sendJson, sendText } from './http'
import type { OutageControl } from './outage'

const JSON_TYPE = 'application/json; charset=utf-8'

/** What the OFREP handlers need from the server. */
export interface OfrepDeps {
  flags: FlagSource
  /** Present only with demo controls on. */
  outage?: OutageControl
  /** True once `close()` started: held requests give up instead of answering. */
  isClosing(): boolean
}

/**
 * `POST /ofrep/v1/evaluate/flags`: evaluates every flag for the posted context. The `ETag` is a
 * hash of the exact body, so it changes exactly when this context's answer changes (a flag edit
 * that does not affect this user keeps it); `If-None-Match` with that tag gets a bodiless 304.
 */
export async function handleBulkEvaluation(req: IncomingMessage, res: ServerResponse, deps: OfrepDeps): Promise<void> {
  if (await answeredByOutage(res, deps)) return
  const body = await readBody(req)
  if (!body.ok) return answerBodyFailure(res, body.reason)
  const request = readEvaluationRequest(body.text)
  if (!request.ok) return sendJson(res, 400, request.error)
  const payload = JSON.stringify(evaluateAll(deps.flags.current(), request.context))
  const etag = etagOf(payload)
  if (etagMatches(header(req, 'if-none-match'), etag)) return sendEmpty(res, 304, { ETag: etag })
  sendText(res, 200, payload, JSON_TYPE, { ETag: etag })
}

/**
 * `POST /ofrep/v1/evaluate/flags/{key}`: one flag, for server-side OFREP providers. Status codes
 * follow flagd: 404 `FLAG_NOT_FOUND`, 400 for any other failure (bad context or a broken rule).
 */
export async function handleFlagEvaluation(req: IncomingMessage, res: ServerResponse, key: string, deps: OfrepDeps): Promise<void> {
  if (await answeredByOutage(res, deps)) return
  const body = await readBody(req)
  if (!body.ok) return answerBodyFailure(res, body.reason)
  const request = readEvaluationRequest(body.text)
  if (!request.ok) return sendJson(res, 400, { key, ...request.error })
  const entry = evaluateEntry(deps.flags.current(), key, request.context)
  if (!entry) return sendJson(res, 404, { key, errorCode: 'FLAG_NOT_FOUND', errorDetails: `flag '${key}' was not found` })
  sendJson(res, isFailure(entry) ? 400 : 200, entry)
}

const CAPTIVE_PORTAL = `<!doctype html>
<html><head><title>Sign in to CoffeeShop Wi-Fi</title></head>
<body><h1>Welcome to CoffeeShop Wi-Fi</h1><p>Accept the terms to continue browsing.</p>
<form method="post"><button>Accept and connect</button></form></body></html>
`

/**
 * Plays the simulated outage, if any. Returns true when the request has been dealt with (answered,
 * or abandoned because the client or the server went away). `hang` holds the request until the
 * mode changes, then plays whatever the new mode is (`none` answers normally).
 */
async function answeredByOutage(res: ServerResponse, deps: OfrepDeps): Promise<boolean> {
  const { outage } = deps
  if (!outage) return false
  let state = outage.get()
  while (state.mode === 'hang') {
    await outage.changed()
    if (deps.isClosing() || isGone(res)) return true
    state = outage.get()
  }
  const retryAfter: Record<string, string> = state.retryAfter === undefined ? {} : { 'Retry-After': String(state.retryAfter) }
  switch (state.mode) {
    case 'none':
      return false
    case '503':
      sendJson(res, 503, { errorDetails: 'simulated outage (demo controls)' }, retryAfter)
      return true
    case 'empty':
      sendJson(res, 200, {})
      return true
    case 'empty-flags':
      sendJson(res, 200, { flags: [] })
      return true
    case 'html':
      sendText(res, 200, CAPTIVE_PORTAL, 'text/html; charset=utf-8')
      return true
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}
