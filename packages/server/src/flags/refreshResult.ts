// What `POST /holdfast/v1/refresh` answers (a relay source's refreshDetails).

/** What `POST /holdfast/v1/refresh` answers. */
export interface RefreshResult {
  /**
   * `running`: proxy mode, the round of re-asks outlasted `refreshAnswerWithinMs` and goes on in
   * the background; `changed` and `asked` say how far it got. A later refresh joins it.
   */
  outcome: 'applied' | 'unchanged' | 'refused' | 'failed' | 'running'
  /** The version in service afterwards, as in the status (in proxy mode: of every answer held). */
  version: string | null
  /** Flag keys added, removed or changed by this refresh. */
  changed: string[]
  /** Why the refresh failed or was refused; absent when it applied or found nothing new. */
  error?: {
    /** The kind of failure (`network`, `timeout`, `http`, `unauthorized`, `invalid`, `shrink`, ...). */
    kind: string
    /** What the failure said, for the log. */
    message: string
  }
  /** Proxy mode: how many held contexts were asked again. */
  contexts?: number
  /** Proxy mode: how many of them have been asked so far in this round (all of them once it is over, less those skipped or not reached). */
  asked?: number
  /**
   * Proxy mode: how many of those the upstream answered (values, 304, 400, or an answer the guard
   * refused). A round `failed` with answers ended at one context's failure beside them: not an
   * outage, and what it finds next is not spread as the end of one (see `watchUpstream`).
   */
  answered?: number
  /**
   * Proxy mode: how many of those asked got no usable answer (no answer, a timeout, 5xx, HTML…).
   * A round that asked every context, some answered, is not `failed` for them: they keep their
   * values (stale), and `error` names the latest such failure.
   */
  failed?: number
  /** Proxy mode: when the round this answer belongs to started (epoch ms). */
  startedAt?: number
  /**
   * Proxy mode: held contexts this process cannot ask again, so not in `contexts`: read back from
   * the data dir (or taken from another relay) and not asked for by their users since. The data
   * dir keeps a hash, never the context or a forwarded token: each is asked again on its user's
   * next request, and from then on by every round.
   */
  unknown?: number
}
