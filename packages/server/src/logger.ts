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
