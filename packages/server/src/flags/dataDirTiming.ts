// Bounds on a data dir (or an events spool) that does not answer: a dir on a network mount whose
// server is gone does not fail, it hangs.

/**
 * How long the start waits for the data dir (taking its lock, then loading it) before it goes on
 * without it, and for the events spool or file (events/pipeline.ts) before it refuses to start. A
 * dir on a network mount whose server is gone does not fail, it hangs: before, the relay then never
 * listened, never served its --snapshot, Redis or upstream, and said nothing. The same 5 s as the
 * upstream timeout's default. Tests shorten it.
 */
export const dataDirTiming = { openMs: 5000 }

/** "did not answer within 5 s: a hung mount?", with the bound in force. */
export function didNotAnswer(): string {
  return `did not answer within ${dataDirTiming.openMs / 1000} s: a hung mount?`
}

/**
 * Settles as `work` does, or with `undefined` and `timedOut` after {@link dataDirTiming}.openMs;
 * `work` carries on (a hung fs call cannot be cancelled) and its late result is the caller's.
 */
export async function within<T>(work: Promise<T>): Promise<{ value?: T; timedOut: boolean }> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([work.then((value) => ({ value, timedOut: false })), new Promise<{ timedOut: true }>((resolve) => (timer = setTimeout(() => resolve({ timedOut: true }), dataDirTiming.openMs)))])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * True once no file-system call has returned (`returnedAt`, a `performance.now()` time) for
 * {@link dataDirTiming}.openMs while `work` goes on: a call that hangs (a dead mount); false when
 * `work` resolves first; rejects as `work` does. A slow disk (a large spool counted read after
 * read) and the 15 s watch of a stale lock make calls that return: neither is a hung mount.
 */
export async function stuck(work: Promise<unknown>, returnedAt: () => number): Promise<boolean> {
  const bound = dataDirTiming.openMs
  let timer: ReturnType<typeof setTimeout> | undefined
  const hung = new Promise<true>((resolve) => {
    const check = () => {
      const idle = performance.now() - returnedAt()
      if (idle >= bound) resolve(true)
      else timer = setTimeout(check, bound - idle)
    }
    timer = setTimeout(check, bound)
  })
  try {
    return await Promise.race([work.then(() => false), hung])
  } finally {
    clearTimeout(timer)
  }
}
