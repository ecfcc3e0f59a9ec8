// How often a lock's holder touches it, when an untouched one counts as stale, and how long one
// that looks stale is watched: see lockFile.ts.

/** The holder touches its lock this often (ms). */
export const LEASE_REFRESH_MS = 10_000
/** A lock on another host untouched this long (ms) is stale. */
export const LEASE_STALE_MS = 30_000
/**
 * How long a lock that looks stale by this host's clock is watched for a touch, and how often it is
 * looked at meanwhile (`stepMs`, at most a quarter of the watch): 15 s and 1 s. Tests shorten them,
 * keeping the ratios to the 5 s open bound (dataDirTiming in flags/persistence.ts).
 */
export const lockTiming = { watchMs: LEASE_REFRESH_MS * 1.5, stepMs: 1000, refreshMs: LEASE_REFRESH_MS }
