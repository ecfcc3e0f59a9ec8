// The spool's forwarder side in flight (a read or a cursor write), for `Spool.readerBusy`: since
// when its latest file-system call has been under way, and on which path.

/** What {@link createReaderBusy} returns. */
export interface ReaderBusy {
  /** Runs `work` (a read or an ack) as the reader's call in flight, on `path` to begin with. */
  timed<T>(path: string, work: () => Promise<T>): Promise<T>
  /** The reader's next file-system call starts now, on `path` (nothing while no read or ack runs). */
  calling(path: string): void
  /** The call in flight: since when (on `busyNow`) and on which path; undefined when none is. */
  busy(): { since: number; path: string } | undefined
}

/** Creates the watch of the spool's reader; `busyNow` is its clock (epoch ms). */
export function createReaderBusy(busyNow: () => number): ReaderBusy {
  // The forwarder's read or ack in flight (it runs one at a time), for `readerBusy`: since when
  // its latest file-system call has been under way, and on which file. A long count (a large spool
  // read again, window after window) moves `since` on with each call: only a call that does not
  // return looks stalled. Before, `since` was the start of the whole read.
  let reader: { since: number; path: string } | undefined
  const calling = (path: string) => {
    if (reader) {
      reader.since = busyNow()
      reader.path = path
    }
  }
  const timed = async <T>(path: string, work: () => Promise<T>): Promise<T> => {
    const mine = { since: busyNow(), path }
    reader = mine
    try {
      return await work()
    } finally {
      if (reader === mine) reader = undefined
    }
  }
  return { timed, calling, busy: () => reader }
}
