// The search of a batch the sink refused with 400/422 for its bad event(s): the search's state
// and each step of it, applied in place by the forwarder (forwarder.ts) as the sink answers.

/**
 * A batch the sink refused with 400/422, being searched for its bad event(s): `lines` of the
 * spool from the cursor, sent in pieces of at most `size`, with `cuts` left before a refused
 * piece is dropped whole. Before, the whole batch (2,000 events) was dropped for one bad event.
 * The cuts are bounded (2 × (log2(batch) + 1): enough to find two bad events) so a batch of
 * nothing but bad events costs a few dozen requests, not one per event, and refusals are paced
 * by the first backoff step.
 *
 * A piece delivered (2xx) during the search gives its cut back (up to the bound): the bound is
 * on refusals that deliver nothing. Before, a sink naming each bad event (`events[i]`) cost two
 * cuts per bad event though each named cut delivered the events before it: with one event in
 * eight refused, the cuts ran out at the 8th, and its piece went to the dead-letter file whole,
 * good events with it.
 *
 * `before`: lines still to send before the event the sink named; once they are delivered, that
 * event goes alone (`alone`), and after it the rest whole. Before, the piece after the
 * delivered ones kept their size: it started at the named event and was refused (naming it
 * again) before it went alone, one more refusal and pause per bad event.
 */
export interface BatchSearch {
  /** The events in the batch refused whole. */
  batch: number
  /** Lines of the spool from the cursor still to send (the skipped ones too). */
  lines: number
  /** The most events sent in one piece. */
  size: number
  /** Cuts left before a refused piece is dropped whole. */
  cuts: number
  /** The cuts a search starts with: 2 × (log2(batch) + 1). */
  bound: number
  /** Lines still to send before the event the sink named. */
  before?: number
  /** The named event goes alone next. */
  alone?: boolean
  /** A piece was delivered during the search. */
  took?: boolean
  /** The most events delivered in one piece. */
  taken?: number
  /** A piece was refused for good (dead-lettered or dropped) during the search. */
  lost?: boolean
  /** The batch was all that was waiting, under the size batches went at (not cut by the byte cap). */
  tail?: boolean
}

/**
 * The batch size a search that ended with every piece taken teaches: the refusal was about the
 * batch, not an event (a sink that answers 400 to "more than 500 events per request"). Undefined
 * when an event was refused for good, when nothing smaller than the batch was taken, or for a tail
 * batch: its pieces are halves of whatever was waiting (a batch of 12 to a sink capped at 10 is
 * taken in pieces of 6), not the sink's cap. Before, such a tail taught 6 and batches went at 6,
 * half the throughput, for good (a try at 12 refused and taught 6 again); a full batch teaches the cap.
 */
export function sizeTaught(search: BatchSearch): number | undefined {
  return !search.lost && !search.tail && search.taken !== undefined && search.taken < search.batch ? search.taken : undefined
}

/** The search of a batch of `n` events refused whole (`lines`: its spool lines, the skipped ones too); `tail`: all that was waiting, under the batch size. */
export function startSearch(n: number, lines: number, tail = false): BatchSearch {
  const bound = 2 * (Math.ceil(Math.log2(n)) + 1)
  return { lines, size: n, cuts: bound, bound, batch: n, ...(tail ? { tail } : {}) }
}

/** A piece delivered (2xx) gives its cut back (up to the bound): the bound is on refusals that deliver nothing. */
export function gaveBack(search: BatchSearch, n: number): void {
  search.cuts = Math.min(search.bound, search.cuts + 1)
  search.took = true
  search.taken = Math.max(search.taken ?? 0, n)
}

/**
 * The search moves past `lines` sent (delivered or dropped); after a drop the rest of the refused
 * batch is tried whole again, since the refused event may have been the only one. Undefined once
 * the batch is all sent (the search is over).
 */
export function searched(search: BatchSearch | undefined, lines: number, dropped = false): BatchSearch | undefined {
  if (!search) return undefined
  search.lines -= lines
  if (dropped) search.lost = true
  if (search.lines <= 0) return undefined
  if (dropped) {
    search.size = search.lines
    search.before = undefined
    search.alone = false
  }
  return search
}

/** After a piece of `sent` lines was delivered: the named event goes alone once the lines before it are sent, the rest whole after it. */
export function pieceDelivered(search: BatchSearch, sent: number): void {
  if (search.alone) {
    // The named event went through alone after all: the rest whole, not one by one.
    search.alone = false
    search.size = search.lines
  } else if (search.before !== undefined) {
    search.before -= sent
    if (search.before > 0) search.size = search.before
    else {
      search.size = 1
      search.before = undefined
      search.alone = true
    }
  }
}

/** A piece of `n` events refused: one cut, at the event the sink named (`at`: the piece before it goes through, then it alone), or a halving. */
export function cutAt(search: BatchSearch, n: number, at: number | undefined): void {
  search.cuts--
  search.size = at !== undefined && at < n ? Math.max(1, at) : Math.ceil(n / 2)
  search.before = at !== undefined && at > 0 && at < n ? at : undefined
  search.alone = at === 0
}
