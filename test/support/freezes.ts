// Bounds on time a test's process ran or waited, not on time a loaded machine froze it.

/**
 * Watches this process for freezes (a loaded machine not running it: its event loop ticks late)
 * from now on; `longest()` is the longest gap between ticks so far, up to the moment it is asked,
 * in ms; `stop()` ends the watch. A wait on a socket (a silent Redis) leaves the loop idle, ticking
 * on time: it is not a freeze.
 */
export function watchFreezes(): { longest: () => number; stop: () => void } {
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - last)
    last = now
  }, 10)
  // A watch a failed test did not stop keeps no process alive.
  timer.unref()
  return { longest: () => Math.max(longest, performance.now() - last), stop: () => clearInterval(timer) }
}

/**
 * How long `ask` took beyond the longest stretch this process (the test and any relays in it) was
 * frozen meanwhile. On a loaded machine an answer that waited on nothing took 1.3 s: the process was
 * not run. One that waits on a silent Redis, a timer or a socket waits with the event loop idle, and
 * that time is kept. So it bounds waits, not work: a relay in this process blocking its event loop
 * synchronously would be taken off as a freeze, and only a bound on waits should use it.
 */
export async function timed<T>(ask: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const freezes = watchFreezes()
  const started = performance.now()
  try {
    const value = await ask()
    return { value, ms: performance.now() - started - freezes.longest() }
  } finally {
    freezes.stop()
  }
}

