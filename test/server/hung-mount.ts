// A stand-in for a dead network mount in tests: a FIFO where a file is expected. Opening it for
// reading (or writing) blocks a real libuv thread until the other end comes, as a read on a mount
// whose server is gone does. Shared by the hung data dir and hung events spool suites.
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { dirname } from 'node:path'

const fifos: string[] = []

/** Settles with `work`'s value, or 'hung' after `ms`: a test of a hang must not hang itself. */
export function orHung<T>(work: Promise<T>, ms: number): Promise<T | 'hung'> {
  return Promise.race([work, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), ms).unref())])
}

/** Makes a FIFO at `path` (and its directory); released by {@link releaseHungFifos}. */
export function hungFifo(path: string): string {
  execFileSync('mkdir', ['-p', dirname(path)])
  execFileSync('mkfifo', [path])
  fifos.push(path)
  return path
}

/** Gives each hung reader its writer (and a hung writer its reader): the threads they hold come back to the pool. Call in afterEach. */
export function releaseHungFifos(): void {
  for (const fifo of fifos.splice(0)) {
    for (const mode of [constants.O_WRONLY, constants.O_RDONLY]) {
      try {
        closeSync(openSync(fifo, mode | constants.O_NONBLOCK))
      } catch {
        // no one at the other end
      }
    }
  }
}
