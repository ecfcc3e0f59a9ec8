/**
 * Writes the command's log lines to stdout and stderr with a bound. On Linux, Node writes to a pipe
 * or socket (a log shipper, journald, `| grep`) asynchronously: what the reader has not taken yet
 * waits in the process's memory, without limit. A reader that stalled (a hung shipper, a suspended
 * `| grep`) let a relay logging at every poll grow by megabytes a minute until it was killed, and
 * a `process.exit` then threw away whatever was still waiting, the last lines ("stopped", a start
 * error) first. Here each stream holds at most `maxQueuedBytes` not yet taken; lines past that are
 * dropped and counted, and once neither stream has anything waiting (looked at every 250 ms) a line
 * on stderr says how many. {@link LogWriter.flush} waits (boundedly) for what is queued before an exit.
 *
 * Files and terminals are written synchronously by Node whatever is done here: a log file on a
 * hung mount, or a terminal paused with Ctrl-S, still holds the process (see docs/server.md, Logs).
 */
export interface LogWriter {
  /** Writes `line` (no newline) to `stream` ('out' or 'err'); drops it, counted, when too much is waiting. Never throws. */
  write(stream: 'out' | 'err', line: string): void
  /** Lines dropped so far because the reader was not keeping up. */
  dropped(): number
  /** Resolves once everything queued is taken by the reader, or after `timeoutMs` (a reader that never comes back). */
  flush(timeoutMs: number): Promise<void>
}

/** The part of a `Writable` (process.stdout, process.stderr) the writer uses. */
export interface LogStream {
  write(chunk: string): boolean
  readonly writableLength: number
  /** Its 'error' (EPIPE: the reader went away) is heard, so it is no uncaught exception. */
  on?(event: 'error', listener: (error: Error) => void): unknown
}

export interface LogWriterOptions {
  /** Where `out` and `err` go. Default process.stdout and process.stderr. */
  streams?: { out: LogStream; err: LogStream }
  /** Bytes waiting per stream before lines are dropped. Default 1 MiB. */
  maxQueuedBytes?: number
  /** The line (on `err`) that says how many were dropped. */
  droppedNotice?: (count: number) => string
  /** The line (on `err`) that says stdout's reader went away and its lines are dropped from then on; undefined: none is said. */
  outGoneNotice?: () => string | undefined
}

/** Creates a {@link LogWriter}. */
export function createLogWriter(options: LogWriterOptions = {}): LogWriter {
  const streams: { out: LogStream; err: LogStream } = options.streams ?? { out: process.stdout, err: process.stderr }
  const maxQueued = options.maxQueuedBytes ?? 1024 * 1024
  const notice = options.droppedNotice ?? ((n: number) => `[holdfast-server] ${n} log line(s) dropped: the reader of stdout/stderr was not keeping up`)
  let dropped = 0
  let unsaid = 0
  let waitingForDrain = false
  // A stream whose reader went away (a log shipper restarted, `| head` done): Node says EPIPE as an
  // 'error' event on it, which with no listener was an uncaught exception, and the relay died at
  // its next line (a SIGTERM's 'draining': the drain cut short, exit 1). Its lines are dropped from
  // then on, counted, and stderr says it once when stdout is the one gone.
  const gone = new Set<LogStream>()
  const waiting = () => (gone.has(streams.out) ? 0 : streams.out.writableLength) + (gone.has(streams.err) ? 0 : streams.err.writableLength)

  const say = (stream: LogStream, text: string) => {
    if (gone.has(stream)) return
    try {
      stream.write(text)
    } catch {
      // A stream already destroyed (EPIPE: the reader is gone): nowhere left to say anything.
    }
  }
  for (const which of ['out', 'err'] as const) {
    const stream = streams[which]
    stream.on?.('error', () => {
      if (gone.has(stream)) return
      gone.add(stream)
      if (which !== 'out') return
      const said = (options.outGoneNotice ?? (() => '[holdfast-server] stdout is closed (its reader went away): its lines are dropped from here on, counted in holdfast_log_lines_dropped_total'))()
      if (said !== undefined) say(streams.err, `${said}\n`)
    })
  }
  const sayDropped = () => {
    waitingForDrain = false
    if (unsaid === 0) return
    if (waiting() > 0) return waitDrain()
    const n = unsaid
    unsaid = 0
    say(streams.err, `${notice(n)}\n`)
  }
  // Looked at every 250 ms rather than on 'drain': a stream emits that only after a write of its
  // own was refused, and the lines dropped may have been meant for the other one.
  const waitDrain = () => {
    if (waitingForDrain) return
    waitingForDrain = true
    setTimeout(sayDropped, 250).unref()
  }

  return {
    write(which, line) {
      const stream = streams[which]
      const text = `${line}\n`
      if (gone.has(stream)) {
        dropped++
        return
      }
      if (stream.writableLength + text.length > maxQueued) {
        dropped++
        unsaid++
        return waitDrain()
      }
      say(stream, text)
    },
    dropped: () => dropped,
    async flush(timeoutMs) {
      const until = Date.now() + timeoutMs
      // The count is said as soon as nothing waits, looked at here too: left to the 250 ms timer, a
      // reader that caught up within the flush saw the exit come first, and the count was lost.
      for (;;) {
        if (unsaid > 0 && waiting() === 0) sayDropped()
        if (waiting() === 0 || Date.now() >= until) return
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
  }
}
