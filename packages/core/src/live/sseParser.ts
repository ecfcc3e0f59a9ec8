// A Server-Sent Events parser (the WHATWG "event stream interpretation"), fed text as it arrives in
// whatever pieces the network cuts it into: a line, a CRLF, even a field name can be split across
// chunks. Lines end in CRLF, LF or CR; a CR at the very end of a chunk may be the first half of a
// CRLF, so it is held until the next chunk says. Comments (`:` lines) and unknown fields are
// ignored; `retry:` with digits only is reported; an event is dispatched at a blank line when it has
// data (several `data:` lines are joined with "\n").

/** No notice is anywhere near this long; a line that is, is a broken or hostile stream. */
const MAX_LINE = 65_536

/** One dispatched SSE event. */
export interface SseEvent {
  /** The `event:` field; default `message`. */
  event: string
  /** The `data:` lines joined with "\n". */
  data: string
  /** The last `id:` seen on the stream, if any. */
  id?: string
}

/** What the parser reports. */
export interface SseHandlers {
  /** A complete event. */
  onEvent(event: SseEvent): void
  /** A valid `retry:` field, in ms. Optional. */
  onRetry?(ms: number): void
}

/** A push parser for one stream; create a new one per connection. */
export interface SseParser {
  /**
   * Feeds the next piece of decoded text. Returns false when an unfinished line, or the data of an
   * unfinished event, has grown past 64 KiB (a hostile or broken stream): the caller should drop
   * the connection.
   */
  push(text: string): boolean
}

/** Creates a parser for one connection (see the file comment for what it accepts). */
export function createSseParser(handlers: SseHandlers): SseParser {
  let buffer = ''
  let started = false
  let pendingCr = false
  let data: string[] = []
  /** Characters in `data`, a newline each: an event's lines are bounded together, like one line (an endless event). */
  let size = 0
  let eventType = ''
  let lastId: string | undefined

  function line(text: string) {
    if (text === '') {
      if (data.length > 0) {
        const event: SseEvent = { event: eventType || 'message', data: data.join('\n') }
        if (lastId !== undefined) event.id = lastId
        handlers.onEvent(event)
      }
      data = []
      size = 0
      eventType = ''
      return
    }
    if (text.charCodeAt(0) === 58 /* : */) return
    const colon = text.indexOf(':')
    const field = colon < 0 ? text : text.slice(0, colon)
    let value = colon < 0 ? '' : text.slice(colon + 1)
    if (value.charCodeAt(0) === 32) value = value.slice(1)
    if (field === 'data') {
      data.push(value)
      // +1: the newline it adds when joined; an empty `data` line is a line too.
      size += value.length + 1
    } else if (field === 'event') eventType = value
    else if (field === 'id') {
      if (!value.includes('\0')) lastId = value
    } else if (field === 'retry') {
      if (/^\d+$/.test(value)) handlers.onRetry?.(Number(value))
    }
  }

  return {
    push(text) {
      if (!started && text.length > 0) {
        started = true
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      }
      if (pendingCr && text.charCodeAt(0) === 10) text = text.slice(1)
      pendingCr = false
      // What is left of the buffer holds no line end: scan only what came, and read the buffer only
      // at a line's end. A line that drips in a character at a time cost a rescan of all of it per
      // character; then, scanned from its old end, V8 still flattened the joined string on each
      // read (a copy of all of it per character: 2 s for 64 KiB, quadratic either way).
      let start = 0
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i)
        if (c !== 10 && c !== 13) continue
        line(buffer + text.slice(start, i))
        buffer = ''
        if (c === 13) {
          if (i + 1 === text.length) pendingCr = true
          else if (text.charCodeAt(i + 1) === 10) i++
        }
        start = i + 1
      }
      buffer += text.slice(start)
      return buffer.length <= MAX_LINE && size <= MAX_LINE
    },
  }
}
