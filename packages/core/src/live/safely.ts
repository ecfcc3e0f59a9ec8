// One guard for what the live-updates chunk reads from the page and the app, which may throw.
/**
 * `use()`, or undefined when it throws: localStorage may be missing (a ReferenceError) or throw
 * (private mode, blocked storage), and the app's headers may have a getter that throws.
 */
export function safely<T>(use: () => T): T | undefined {
  try {
    return use()
  } catch {}
}
