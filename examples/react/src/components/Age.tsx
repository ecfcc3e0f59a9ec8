import { formatAge, formatClock, useNow } from './time'

/** How long ago `at` was, ticking; the exact time on hover. "—" when unknown. */
export function Age({ at, testId }: { at: number | undefined; testId?: string }) {
  const now = useNow()
  if (at === undefined) return <span data-testid={testId} className="muted">—</span>
  // A freshly received value can be a few ms "in the future" of the last tick.
  return (
    <time data-testid={testId} dateTime={new Date(at).toISOString()} title={formatClock(at)}>
      {formatAge(at, Math.max(now, at))}
    </time>
  )
}
