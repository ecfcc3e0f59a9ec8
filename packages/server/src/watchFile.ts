import { watch, watchFile as pollFile, unwatchFile, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'

/** How often the poll fallback stats the file: 500 ms. */
export const POLL_INTERVAL_MS = 500

/** Quiet time after the last change signal before `onChange` runs: 50 ms. */
export const SETTLE_MS = 50

/**
 * Calls `onChange` (debounced) whenever the file at `path` may have changed; returns a stop
 * function. Two mechanisms, because neither is enough alone:
 * - `fs.watch` on the parent directory reacts in milliseconds, and, unlike a watch on the file,
 *   keeps working when an editor saves by writing a temp file and renaming it over the original
 *   (the watched inode is then gone). It is unreliable on network and container mounts.
 * - `fs.watchFile` polls `stat` of the path every {@link POLL_INTERVAL_MS}; it follows the path,
 *   not the inode, and works everywhere.
 * The debounce folds an editor's truncate-then-write into one reload; `onChange` must still cope
 * with reading a half-written file (the caller refuses it and the next signal retries).
 */
export function watchPath(path: string, onChange: () => void, options: { pollMs?: number; settleMs?: number } = {}): () => void {
  const settleMs = options.settleMs ?? SETTLE_MS
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  const schedule = () => {
    if (stopped) return
    clearTimeout(timer)
    timer = setTimeout(() => {
      if (!stopped) onChange()
    }, settleMs)
  }

  let watcher: FSWatcher | undefined
  try {
    const name = basename(path)
    watcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
      // Some platforms omit the file name; then any change in the directory counts.
      if (!changed || changed.toString() === name) schedule()
    })
    watcher.on('error', () => watcher?.close())
  } catch {
    // No native watching here (e.g. too many watchers); the poll below still works.
  }
  const onStat = () => schedule()
  pollFile(path, { interval: options.pollMs ?? POLL_INTERVAL_MS, persistent: false }, onStat)

  return () => {
    stopped = true
    clearTimeout(timer)
    watcher?.close()
    unwatchFile(path, onStat)
  }
}
