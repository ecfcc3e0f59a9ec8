// The path a lock file is named by: see {@link realPath}.
import { realpath } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * The lock file named by the real path of what it guards: two servers given one file through
 * different names (a symlinked directory, a symlink to the file) must meet at one lock. Before,
 * each took its own lock beside the name it was given, and both appended to the one file.
 * `path` with every symlink followed; one that does not exist yet (an events file before its first
 * start) is named through the real path of its directory.
 */
export async function realPath(path: string): Promise<string> {
  return (await realpath(path).catch(() => undefined)) ?? join(await realpath(dirname(path)), basename(path))
}
