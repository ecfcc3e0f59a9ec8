// How long a source with nothing to serve holds the start for its first answer. A healthy upstream
// answers well within it, so the server is ready when `createFlagServer` resolves; a hanging one no
// longer keeps the process from listening for the whole upstream timeout (a liveness probe sees it
// alive, requests get 503 + Retry-After, and it is ready the moment the first answer lands).

/** Milliseconds the start waits for the first answer when there is nothing else to serve. */
export const STARTUP_WAIT_MS = 2_000

/** Settles when `first` does, or after `ms`, whichever comes first; the timer does not outlive it. */
export async function waitAtMost(first: Promise<unknown>, ms = STARTUP_WAIT_MS): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([first, new Promise((resolve) => (timer = setTimeout(resolve, ms)))])
  } finally {
    clearTimeout(timer)
  }
}
