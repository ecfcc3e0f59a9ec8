import type { IncomingMessage, ServerResponse } from 'node:http'
import type { EventSink } from '../events/eventSink'
import { readJson, sendEmpty, sendJson } from '../http/body'
import { readOutageChange, type OutageControl } from './outage'

/** `GET /demo/outage`: the current outage as `{ mode, events, retryAfter? }`. */
export function handleGetOutage(res: ServerResponse, outage: OutageControl): void {
  sendJson(res, 200, outage.get())
}

/**
 * `POST /demo/outage` with `{ mode?, events?, retryAfter? }`: changes the simulated outage and
 * answers the new state. Requests held by `hang` are released into the new mode.
 */
export async function handleSetOutage(req: IncomingMessage, res: ServerResponse, outage: OutageControl): Promise<void> {
  const body = await readJson(req, res)
  if (!body) return
  const parsed = body.value
  const change = readOutageChange(parsed)
  if (!change.ok) return sendJson(res, 400, { errorCode: 'INVALID_OUTAGE', errorDetails: change.error })
  sendJson(res, 200, outage.set(change.change))
}

/** `POST /demo/reset-events`: forgets every received event (and empties the events file); 204. */
export async function handleResetEvents(res: ServerResponse, sink: EventSink): Promise<void> {
  await sink.reset()
  sendEmpty(res, 204)
}
