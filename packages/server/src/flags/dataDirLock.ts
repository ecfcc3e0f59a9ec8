// The data dir's lock (`DIR/LOCK`): one live server per data dir; and what an fs error on the dir means.
import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { acquireLock, type LockHooks, type LockRelease } from '../events/lockFile'
import type { ServerLogger } from '../logger'

/**
 * An fs error's code, and what it means when the data dir's path is a file (an operator's typo):
 * "EEXIST" alone said nothing of what was wrong with the path.
 */
export async function dirProblem(dir: string, error: unknown): Promise<string> {
  const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
  // Only for the codes a file in the way gives: a stat on a mount that hangs (EIO…) would hang too.
  if (code !== 'EEXIST' && code !== 'ENOTDIR') return code
  const isFile = await stat(dir).then((found) => !found.isDirectory(), () => false)
  return isFile ? `${code}: not a directory, a file is at that path` : code
}

/** Why two servers must not share a data dir, said when one is refused or taken over. */
export const TWO_ON_ONE_DIR = "Two servers on one data dir overwrite each other's generations, and a restart may serve the other's flags."

/**
 * Takes the data dir's lock (`DIR/LOCK`, see events/lockFile.ts) for this server: a second live
 * server on the same dir is refused (throws, naming it). Two would delete each other's temp files
 * mid-write and interleave generations, and a restart of either could serve the other's flags. A
 * dir where no lock can be made (not a directory, read-only) does not stop the server, as it
 * never does (see `loadNewestPayload`): it runs without the lock. Resolves with the release.
 */
export async function lockDataDir(dir: string, log: ServerLogger, hooks: LockHooks = {}): Promise<LockRelease> {
  const without = async (error: NodeJS.ErrnoException) => {
    log.warn(`cannot lock the data dir ${dir} (${await dirProblem(dir, error)}); going on without the lock`)
    return async () => {}
  }
  try {
    await mkdir(dir, { recursive: true })
  } catch (error) {
    return await without(error as NodeJS.ErrnoException)
  }
  try {
    return await acquireLock(join(dir, 'LOCK'), `the data dir ${dir}`, `${TWO_ON_ONE_DIR} Give each its own.`, hooks)
  } catch (error) {
    const cause = (error as Error).cause as NodeJS.ErrnoException | undefined
    // Held by a live server (no cause), or another took it in the same instant (EEXIST): refused.
    if (cause === undefined || cause.code === 'EEXIST') throw error
    return without(cause)
  }
}
