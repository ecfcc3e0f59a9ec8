import type { LogWriter } from './logWriter'

/**
 * Where the server reports what it does: reloads, rejected flag-file edits, failed event writes.
 * Messages arrive already prefixed with `[holdfast-server]`. Default: {@link consoleLogger}.
 */
export interface ServerLogger {
  info(message: string): void
  warn(message: string): void
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

/** Wraps a logger so every message carries the one prefix operators grep for. */
export function prefixLogger(logger: ServerLogger): ServerLogger {
  const tag = (message: string) => `[holdfast-server] ${message}`
  return {
    info: (message) => logger.info(tag(message)),
    warn: (message) => logger.warn(tag(message)),
    error: (message) => logger.error(tag(message)),
  }
}

/**
 * The holdfast-server command's logger: `info` to stdout, `warn` and `error` to stderr, as
 * {@link consoleLogger}, but through `writer` (see logWriter.ts), so a log reader that stops reading
 * costs the server a bounded memory: lines past the bound are dropped and counted. {@link consoleLogger}
 * stays as it is for embedders: their process owns stdout, its other writers and its exit, and a
 * bound or a drop there is theirs to choose; the command owns its process and flushes the writer
 * before every exit.
 */
export function writerLogger(writer: Pick<LogWriter, 'write'>): ServerLogger {
  return {
    info: (message) => writer.write('out', message),
    warn: (message) => writer.write('err', message),
    error: (message) => writer.write('err', message),
  }
}
