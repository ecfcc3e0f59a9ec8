// Why the events file or spool cannot be used, said with the path the operator gave: the OS error
// alone does not say it is about them, nor what to change.
import { stat } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * The OS error when the lock file itself could not be made (acquireLock's refusal carries it as
 * its `cause`; EEXIST is another server's lock). Reported as the file or spool being unusable:
 * before, a directory the server may not write in (EACCES, EROFS) read "is in use by another
 * server … or delete the lock", a server and a lock that did not exist.
 */
export function lockNotMade(error: unknown): NodeJS.ErrnoException | undefined {
  const cause = (error as { cause?: NodeJS.ErrnoException }).cause
  return cause instanceof Error && typeof cause.code === 'string' && cause.code !== 'EEXIST' ? cause : undefined
}

/**
 * `error` (the open of the events file or spool, `what`, at `path`) as the error a start refuses
 * with: `[holdfast-server] cannot use <what>: <code>, <why>`; one already said so, or with no OS
 * code, as it is.
 */
export async function unusable(error: NodeJS.ErrnoException, what: string, path: string): Promise<Error> {
  if (error.message.startsWith('[holdfast-server]') || error.code === undefined) return error
  let why = error.message
  if (error.code === 'EISDIR') why = 'it is a directory'
  else if (error.code === 'EACCES' || error.code === 'EPERM') why = 'permission denied'
  else if (error.code === 'EROFS') why = 'a read-only file system'
  else if (error.code === 'EEXIST' || error.code === 'ENOTDIR') {
    // A file where a directory of the path should be: name it.
    for (let at = path; at !== dirname(at); at = dirname(at)) {
      const info = await stat(at).catch(() => undefined)
      if (info && !info.isDirectory()) {
        why = `${at} is a file, not a directory`
        break
      }
      if (info) break
    }
  }
  return new Error(`[holdfast-server] cannot use ${what}: ${error.code}, ${why}`)
}
