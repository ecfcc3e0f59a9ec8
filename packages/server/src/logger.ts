import type { LogWriter } from './logWriter'

/**
 * Where the server reports what it does: reloads, rejected flag-file edits, failed event writes.
 * Messages arrive already prefixed with `[holdfast-server]`. Default: {@link consoleLogger}.
 */
export interface ServerLogger {
  /** What the server did: started, reloaded, changed role (the console's: stdout). */
  info(message: string): void
  /** Something an operator should look at: a refused edit, a failing upstream (the console's: stderr). */
  warn(message: string): void
  /** A failure: an event write, a store command, a write-back (the console's: stderr). */
  error(message: string): void
}

/** The default {@link ServerLogger}: `info` to stdout, `warn` and `error` to stderr. */
export const consoleLogger: ServerLogger = {
  info: (message) => console.log(message),
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
}

/** A {@link ServerLogger} that drops everything, for tests and embedding. */
export const silentLogger: ServerLogger = { info() {}, warn() {}, error() {} }

/**
 * Wraps a logger so every message carries the one prefix operators grep for, on one line: control
 * characters (a newline, a carriage return, an escape sequence, U+2028) are written escaped
 * (`\n`, `\u001b`). Text a client sent (an event id, a request path) reaches some lines; with a
 * newline in it, it wrote a line of its own, `[holdfast-server] …` included, that an operator or a
 * log shipper read as the server's. A logger marked {@link ONE_LINE_ITSELF} (the command's) is
 * handed the message as it is and does that itself.
 */
export function prefixLogger(logger: ServerLogger): ServerLogger {
  const escape = isOneLineItself(logger) ? (message: string) => message : oneLine
  const tag = (message: string) => `[holdfast-server] ${escape(message)}`
  return {
    info: (message) => logger.info(tag(message)),
    warn: (message) => logger.warn(tag(message)),
    error: (message) => logger.error(tag(message)),
  }
}

/**
 * Loggers that make each line one line themselves ({@link writerLogger}: escaped in text, left to
 * JSON's own escaping in JSON), so {@link prefixLogger} leaves their messages as they are. Escaped
 * first by prefixLogger, then by JSON, a stack trace's line breaks read `\n` in `jq -r .msg`. A
 * wrapper (the repeat limiter) marks its own logger when its target is marked. Kept by identity,
 * not as a property: a host's logger that answers every property (a Proxy giving a no-op for any
 * method it lacks) read as marked, and its lines went unescaped, a client's line break and all.
 */
const oneLineItself = new WeakSet<ServerLogger>()
/** Marks `logger` as making each line one line itself (see above); returns it. */
export function markOneLineItself<L extends ServerLogger>(logger: L): L {
  oneLineItself.add(logger)
  return logger
}
/** Whether `logger` was marked by {@link markOneLineItself}. */
export const isOneLineItself = (logger: ServerLogger): boolean => oneLineItself.has(logger)

/**
 * The holdfast-server command's logger: `info` to stdout, `warn` and `error` to stderr, as
 * {@link consoleLogger}, but through `writer` (see logWriter.ts), so a log reader that stops reading
 * costs the server a bounded memory: lines past the bound are dropped and counted. {@link consoleLogger}
 * stays as it is for embedders: their process owns stdout, its other writers and its exit, and a
 * bound or a drop there is theirs to choose; the command owns its process and flushes the writer
 * before every exit. `settings()` (read at each line) says the format and the least severe level:
 * `text` writes the line as it came (`[holdfast-server] …`), control characters escaped ({@link oneLine}),
 * `json` one object a line, `{"time": ISO 8601, "level", "msg"}` with the prefix left out, escaped
 * by JSON alone. It is marked by {@link markOneLineItself}.
 */
export function writerLogger(writer: Pick<LogWriter, 'write'>, settings: () => { format: 'text' | 'json'; level: Level } = () => ({ format: 'text', level: 'info' })): ServerLogger {
  const line = (level: Level) => (message: string) => {
    const { format, level: least } = settings()
    if (SEVERITY[level] > SEVERITY[least]) return
    writer.write(level === 'info' ? 'out' : 'err', commandLine(format, level, message))
  }
  return markOneLineItself({ info: line('info'), warn: line('warn'), error: line('error') })
}

/**
 * The longest line the command writes, in characters (64 Ki): past it, the rest is left out and the
 * length said. A line over the writer's bound (1 MiB waiting) was dropped whole, even to a reader
 * that kept up, and said as "dropped: the reader … was not keeping up" ("serving definitions …
 * changed: " naming 20,000 keys, 1.2 MiB); log shippers cut far shorter lines anyway (Docker's at
 * 16 KiB, journald's at 48 KiB). Cut before the format, so a JSON line stays JSON.
 */
const MAX_LINE_CHARS = 64 * 1024

function cutLine(message: string): string {
  return message.length <= MAX_LINE_CHARS ? message : `${message.slice(0, MAX_LINE_CHARS)}… (cut: ${message.length.toLocaleString('en-US')} characters)`
}

/**
 * `message` as one line of the command's log in `format`, as {@link writerLogger} writes it: cut
 * when too long, control characters escaped in text, left to JSON's escaping in JSON. For a line
 * written past the logger (the serving line, said at every level).
 */
export function commandLine(format: 'text' | 'json', level: Level, message: string): string {
  return formatLine(format, level, cutLine(format === 'text' ? oneLine(message) : message))
}

/** `message` (`[holdfast-server] …`) as a line of `format`: itself, or `{"time","level","msg"}`. */
export function formatLine(format: 'text' | 'json', level: Level, message: string): string {
  if (format === 'text') return message
  // JSON.stringify leaves DEL, the C1 controls (NEL among them) and U+2028/U+2029 as they are,
  // which some readers take for line breaks: written as JSON escapes, read back as the same text.
  return JSON.stringify({ time: new Date().toISOString(), level, msg: message.startsWith(PREFIX) ? message.slice(PREFIX.length) : message }).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  )
}

type Level = 'error' | 'warn' | 'info'
const SEVERITY: Record<Level, number> = { error: 0, warn: 1, info: 2 }
const PREFIX = '[holdfast-server] '

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** `text` with every control character escaped, so it is one line whatever it holds. */
export function oneLine(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * Client-sent `text` for a log line: cut to `max` characters, saying its length when cut (a 16 KiB
 * request path made every line naming it 16 KiB), its parentheses written `\u0028` and `\u0029`.
 * The repeat limiter (repeatLimiter.ts) tells a line's kind by leaving out its parenthesised
 * details: an event id holding ")" ended the "(ids …)" there, the rest of the id stayed in the
 * kind, and each such id made a kind of its own (50 refused events, 50 lines). Control characters
 * are escaped as in every line: by {@link prefixLogger}, or by {@link writerLogger} for the command.
 */
export function clipped(text: string, max = 200): string {
  const kept = (text.length <= max ? text : text.slice(0, max)).replace(/[()]/g, (c) => (c === '(' ? '\\u0028' : '\\u0029'))
  return text.length <= max ? kept : `${kept}… (${text.length} characters)`
}
