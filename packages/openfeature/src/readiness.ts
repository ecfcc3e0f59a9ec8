// When a client "has values" for the OpenFeature SDK, and when a failure is a refusal: the two
// questions `initialize` and `onContextChange` answer before they resolve (or reject).
import { GeneralError, InvalidContextError } from '@openfeature/web-sdk'
import type { FlagClient } from '@holdfast/core'

const noop = () => {}

/**
 * Resolves when the client holds values for its context, or `settled` settles, whichever is first;
 * also once `gone()` says the user left (a logout: the answer awaited is no one's now).
 */
export function valuesOrSettled(c: FlagClient, settled: Promise<unknown>, gone: () => boolean): Promise<void> {
  const over = () => c.getStatus().state != 'loading' || gone()
  if (over()) return Promise.resolve()
  return new Promise<void>((resolve) => {
    let stop = noop
    const done = () => {
      stop()
      resolve()
    }
    stop = c.subscribe(() => {
      if (over()) done()
    })
    settled.then(done, done)
  })
}

/** The error to reject with when the server refused, or undefined. */
export function refusal(c: FlagClient): Error | undefined {
  const status = c.getStatus()
  if (status.state != 'error' || !status.error) return undefined
  if (status.error.code == 'INVALID_CONTEXT') return new InvalidContextError(status.error.message)
  if (status.error.code == 'UNAUTHORIZED') return new GeneralError(status.error.message)
  return undefined
}
