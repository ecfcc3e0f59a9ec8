// The event-stream parser of live updates, fed the way a network feeds it: in arbitrary pieces.
// It is internal to the on-demand chunk (exporting it from the entry would put it in the first
// load), so it is imported by path.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createSseParser, type SseEvent } from '../../packages/core/src/live/sseParser'

function parse(pieces: string[]) {
  const events: SseEvent[] = []
  const retries: number[] = []
  const parser = createSseParser({ onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms) })
  const ok = pieces.map((p) => parser.push(p))
  return { events, retries, ok }
}

/** Cuts `text` at the given positions. */
function cut(text: string, at: number[]): string[] {
  const points = [...new Set(at.map((n) => n % (text.length + 1)))].sort((a, b) => a - b)
  const pieces: string[] = []
  let from = 0
  for (const p of points) {
    pieces.push(text.slice(from, p))
    from = p
  }
  pieces.push(text.slice(from))
  return pieces
}

const STREAM =
  '\uFEFFretry: 3000\r\n: holdfast stream open\r\n\r\n' +
  'data: {"type":"refetchEvaluation","etag":"v2"}\n\n' +
  ': ping\n\n' +
  'event: other\ndata: ignored by the client, but parsed\n\n' +
  'id: 7\ndata: line one\ndata: line two\r\r' +
  'data:no space\ndata\n\n' +
  'retry: soon\nretry: 250\n\n' +
  'data: {"type":"somethingNew"}\n\n' +
  'data: unterminated'

const EXPECTED: SseEvent[] = [
  { event: 'message', data: '{"type":"refetchEvaluation","etag":"v2"}' },
  { event: 'other', data: 'ignored by the client, but parsed' },
  { event: 'message', data: 'line one\nline two', id: '7' },
  { event: 'message', data: 'no space\n', id: '7' },
  { event: 'message', data: '{"type":"somethingNew"}', id: '7' },
]

describe('the event-stream parser', () => {
  it('reads comments, retry, multi-line data, ids, CR/LF/CRLF line ends and a BOM', () => {
    const { events, retries } = parse([STREAM])
    expect(events).toEqual(EXPECTED)
    expect(retries).toEqual([3000, 250])
  })

  it('gives the same events however the stream is cut into chunks (CRLF split across chunks included)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 40 }), (at) => {
        const { events, retries } = parse(cut(STREAM, at))
        expect(events).toEqual(EXPECTED)
        expect(retries).toEqual([3000, 250])
      }),
      { numRuns: 500 },
    )
  })

  it('gives the same events one character at a time', () => {
    expect(parse([...STREAM]).events).toEqual(EXPECTED)
  })

  it('dispatches nothing for a stream of comments and blank lines', () => {
    expect(parse([': a\n\n\n: b\r\n\r\n']).events).toEqual([])
  })

  it('refuses an endless line instead of growing without bound', () => {
    const parser = createSseParser({ onEvent: () => {} })
    let ok = true
    for (let i = 0; i < 100 && ok; i++) ok = parser.push('x'.repeat(1024))
    expect(ok).toBe(false)
  })

  it('refuses an endless event (data lines that never end in a blank line) instead of growing without bound', () => {
    const parser = createSseParser({ onEvent: () => {} })
    let ok = true
    let chunks = 0
    // 1,000 short data lines per chunk, never a blank line: each line is short, the event is not.
    for (; chunks < 1000 && ok; chunks++) ok = parser.push('data: {"type":"refetchEvaluation"}\n'.repeat(1000))
    expect(ok).toBe(false)
    expect(chunks).toBeLessThan(10)
  })

  it('refuses an endless event of empty data lines too (each one is a line of the event, and a newline when it is dispatched)', () => {
    const parser = createSseParser({ onEvent: () => {} })
    let ok = true
    let chunks = 0
    // `data` with no value adds nothing to the event's characters, but one more line: before, the
    // event held a million lines after a second of this, and its dispatch would join them all.
    for (; chunks < 100 && ok; chunks++) ok = parser.push('data\n'.repeat(10_000))
    expect(ok).toBe(false)
    expect(chunks).toBeLessThan(10)
  })

  it('reads a line that drips in one character at a time in linear time (a slow or hostile stream)', () => {
    // The CPU time this process spent, not the wall clock: on a loaded machine the wall clock also
    // counts the other processes' turns (a linear parse took 2.6 s of it once in a loaded run, and
    // a quadratic one passed a 2 s wall-clock bound on a quiet machine).
    const cpuMs = () => {
      const { user, system } = process.cpuUsage()
      return (user + system) / 1000
    }
    const started = cpuMs()
    // Four connections of a stream that drips a line to the bound, each dropped there.
    for (let connection = 0; connection < 4; connection++) {
      const parser = createSseParser({ onEvent: () => {} })
      let ok = true
      let n = 0
      while (ok) (ok = parser.push('x')), n++
      expect(n).toBe(65_537)
    }
    // 64 Ki pushes each: rescanning the whole unfinished line on each one was ~2 billion character
    // reads; scanning only what came but reading the string joined per push still copied all of it
    // per character in V8 (300-400 ms of CPU per connection here, 1.3-2.4 s of a loaded machine's
    // wall clock). Scanning only what came, and joining at a line's end: 5-20 ms per connection.
    expect(cpuMs() - started).toBeLessThan(400)
  })
})
