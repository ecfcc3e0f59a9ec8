import type { ReceivedEvent } from './schema'

/** Where accepted events go once they are new: one call per batch, resolved once durable. */
export interface EventStore {
  open(): Promise<void>
  /** Stores a batch of new events; resolves once fsynced, rejects (storing nothing) otherwise. */
  append(events: ReceivedEvent[]): Promise<void>
  /** Every file holding accepted events, newest first, for reading ids back at start. */
  files(): Promise<string[]>
  /**
   * Called once the ids of `files()` were read back at start (the events file deletes what it keeps
   * no more); `unread` names the files whose reading failed, which are not deleted, and `read` those
   * whose ids were read (the others were past the de-duplication window: older than it, or past its
   * `maxIds` newest ids).
   */
  readBackDone?(unread: ReadonlySet<string>, read: ReadonlySet<string>): Promise<void>
  /** One line of those files back as an event, or undefined when it is not one. */
  readBack(line: Buffer): ReceivedEvent | undefined
  /** Forgets every stored event. */
  reset(): Promise<void>
  close(): Promise<void>
  /** The write (or task) in flight, since when and on which path; undefined when idle (see `AppendLog.busy`). */
  busy?(): { since: number; path: string } | undefined
}
