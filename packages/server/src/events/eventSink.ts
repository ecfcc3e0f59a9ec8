import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { ServerLogger } from '../logger'

/** A Holdfast event as received (CONTRACT §2.2); fields beyond the required four are kept as sent. */
export interface ReceivedEvent {
  id: string
  type: 'exposure' | 'custom'
  name: string
  time: number
  [field: string]: unknown
}

/** What a batch did: new events stored, and events whose `id` was already seen. */
export interface AcceptResult {
  accepted: number
  duplicates: number
}

/** Stores events at most once per `id`, in memory and optionally in a JSON Lines file. */
export interface EventSink {
  /** Reads back the events file (if any) so the dedupe set survives a restart. */
  open(): Promise<void>
  /** Stores the new events of a batch; resolves once they are on disk. Rejects if the write fails. */
  accept(events: ReceivedEvent[]): Promise<AcceptResult>
  /** Every stored event, oldest first, including those read back from the file. */
  list(): ReceivedEvent[]
  /** Forgets every event and empties the file. */
  reset(): Promise<void>
  /** Waits for pending writes. */
  close(): Promise<void>
}

/**
 * Creates an {@link EventSink}. With `file` (default: none, memory only) accepted events are
 * appended one JSON object per line, and `open()` rebuilds the dedupe set from it, skipping lines
 * it cannot read (a crash mid-write leaves a truncated last line).
 */
export function createEventSink(options: { file?: string; log: ServerLogger }): EventSink {
  const { file, log } = options
  const seen = new Set<string>()
  let stored: ReceivedEvent[] = []
  // Appends run one after another so two batches never interleave their lines.
  let writes: Promise<unknown> = Promise.resolve()
  // A file that ends mid-line (crash during a write) gets a newline before our first append, so
  // the broken line stays one broken line instead of swallowing the next event.
  let needsNewline = false

  const enqueue = <T>(task: () => Promise<T>): Promise<T> => {
    const run = writes.then(task, task)
    writes = run.catch(() => {})
    return run
  }

  return {
    async open() {
      if (!file) return
      await mkdir(dirname(file), { recursive: true })
      let text = ''
      try {
        text = await readFile(file, 'utf8')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      }
      needsNewline = text.length > 0 && !text.endsWith('\n')
      let unreadable = 0
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue
        const event = parseLine(line)
        if (!event) unreadable++
        else if (!seen.has(event.id)) {
          seen.add(event.id)
          stored.push(event)
        }
      }
      if (unreadable > 0) log.warn(`${file}: skipped ${unreadable} unreadable line(s) (a write cut short?)`)
    },

    async accept(events) {
      const fresh: ReceivedEvent[] = []
      // Claim ids synchronously, before any await: two concurrent retries of one batch must not
      // both count as new.
      for (const event of events) {
        if (seen.has(event.id)) continue
        seen.add(event.id)
        fresh.push(event)
      }
      const result = { accepted: fresh.length, duplicates: events.length - fresh.length }
      if (fresh.length === 0) return result
      if (file) {
        try {
          await enqueue(async () => {
            const lines = fresh.map((event) => JSON.stringify(event) + '\n').join('')
            await appendFile(file, (needsNewline ? '\n' : '') + lines)
            needsNewline = false
          })
        } catch (error) {
          // Unclaim, so the client's retry of this batch is stored rather than called a duplicate.
          for (const event of fresh) seen.delete(event.id)
          log.error(`could not append to ${file}: ${(error as Error).message}`)
          throw error
        }
      }
      stored.push(...fresh)
      return result
    },

    list: () => stored.slice(),

    async reset() {
      seen.clear()
      stored = []
      if (file) await enqueue(() => writeFile(file, ''))
      needsNewline = false
    },

    close: () => writes.then(() => undefined),
  }
}

/** Checks one event against CONTRACT §2.2; returns what is wrong, or undefined when it is fine. */
export function eventProblem(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return 'not an object'
  const { id, type, name, time } = event as Record<string, unknown>
  if (typeof id !== 'string' || id === '') return 'id must be a non-empty string'
  if (type !== 'exposure' && type !== 'custom') return 'type must be "exposure" or "custom"'
  if (typeof name !== 'string') return 'name must be a string'
  if (typeof time !== 'number' || !Number.isFinite(time)) return 'time must be a number (epoch milliseconds)'
  return undefined
}

/**
 * Reads a `POST /holdfast/v1/events` body: `{ "events": [Event, ...] }`. One invalid event refuses
 * the whole batch (400, nothing stored), so a sender never has to work out which half went in.
 */
export function readEventBatch(body: unknown): { ok: true; events: ReceivedEvent[] } | { ok: false; error: string } {
  const events = (body as { events?: unknown } | null)?.events
  if (typeof body !== 'object' || body === null || !Array.isArray(events)) return { ok: false, error: 'expected {"events": [...]}' }
  for (let i = 0; i < events.length; i++) {
    const problem = eventProblem(events[i])
    if (problem) return { ok: false, error: `events[${i}]: ${problem}` }
  }
  return { ok: true, events: events as ReceivedEvent[] }
}

function parseLine(line: string): ReceivedEvent | undefined {
  try {
    const event: unknown = JSON.parse(line)
    return eventProblem(event) === undefined ? (event as ReceivedEvent) : undefined
  } catch {
    return undefined
  }
}
