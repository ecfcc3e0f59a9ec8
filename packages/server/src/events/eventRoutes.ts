import type { IncomingMessage, ServerResponse } from 'node:http'
import { readEventBatch, type EventSink } from './eventSink'
import { readJson, sendJson } from '../http/body'

/**
 * `POST /holdfast/v1/events` (CONTRACT §2.2): validates the batch, stores events whose `id` is new,
 * and answers `202 {"accepted": n, "duplicates": m}` once they are written. A batch with any
 * invalid event is refused whole with 400; a failed write is a 500 the client will retry.
 */
export async function handleEvents(
  req: IncomingMessage,
  res: ServerResponse,
  deps: { sink: EventSink },
): Promise<void> {
  const body = await readJson(req, res)
  if (!body) return
  const parsed = body.value
  const batch = readEventBatch(parsed)
  if (!batch.ok) return sendJson(res, 400, { errorCode: 'INVALID_EVENTS', errorDetails: batch.error })
  try {
    sendJson(res, 202, await deps.sink.accept(batch.events))
  } catch {
    sendJson(res, 500, { errorDetails: 'the events could not be stored; retry later' })
  }
}
