import { watch, watchFile as pollFile, unwatchFile, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'

/** How often the poll fallback stats the file: 500 ms. */
export const POLL_INTERVAL_MS = 500

/** Quiet time after the last change signal before `onChange` runs: 50 ms. */
export const SETTLE_MS = 50

/** Longest a burst of change signals can delay `onChange`: 1,000 ms, so edits go live within 2 s. */
export const MAX_WAIT_MS = 1000

/**
 * Calls `onChange` (debounced, with a maximum wait) whenever the file at `path` may have changed; returns a stop
 * function. Two mechanisms, because neither is enough alone:
 * - `fs.watch` on the parent directory reacts in milliseconds, and, unlike a watch on the file,
 *   keeps working when an editor saves by writing a temp file and renaming it over the original
 *   (the watched inode is then gone). It is unreliable on network and container mounts.
 * - `fs.watchFile` polls `stat` of the path every {@link POLL_INTERVAL_MS}; it follows the path,
 *   not the inode, and works everywhere.
 * The debounce folds an editor's truncate-then-write into one reload; `onChange` must still cope
 * with reading a half-written file (the caller refuses it and the next signal retries).
 */
export function watchPath(
  path: string,
  onChange: () => void,
  options: { pollMs?: number; settleMs?: number; maxWaitMs?: number } = {},
): () => void {
  const settleMs = options.settleMs ?? SETTLE_MS
  const maxWaitMs = options.maxWaitMs ?? MAX_WAIT_MS
  let timer: ReturnType<typeof setTimeout> | undefined
  // When the first signal of the current burst arrived; undefined when no burst is pending.
  let burstStarted: number | undefined
  let stopped = false
  const fire = () => {
    burstStarted = undefined
    if (!stopped) onChange()
  }
  const schedule = () => {
    if (stopped) return
    clearTimeout(timer)
    // A monotonic clock: on the wall clock, NTP setting it back an hour mid-burst made the burst's
    // start look an hour ahead, and continuous writes kept every version off for the hour.
    const now = performance.now()
    burstStarted ??= now
    // A plain debounce starves under continuous edits (a generator writing 40 times a second):
    // past maxWaitMs since the burst began, fire anyway.
    const wait = Math.max(0, Math.min(settleMs, burstStarted + maxWaitMs - now))
    timer = setTimeout(fire, wait)
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
