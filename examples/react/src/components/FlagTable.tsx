import { useFlagDetails, type JsonValue } from '@holdfast/react'
import { DEMO_FLAGS } from '../flags'
import { Age } from './Age'
import { Badge } from './Badge'

/** Every demo flag: what the app gets, where it came from and how old it is. */
export function FlagTable() {
  return (
    <section className="panel">
      <h2>Flags</h2>
      <table className="flags">
        <thead>
          <tr>
            <th>flag</th>
            <th>value</th>
            <th>source</th>
            <th>variant / reason</th>
            <th title="when this value was first received; a re-confirmation does not reset it">value age</th>
            <th>fresh?</th>
          </tr>
        </thead>
        <tbody>
          {DEMO_FLAGS.map((flag) => (
            <FlagRow key={flag.key} flagKey={flag.key} defaultValue={flag.defaultValue} about={flag.about} />
          ))}
        </tbody>
      </table>
    </section>
  )
}

function FlagRow({ flagKey, defaultValue, about }: { flagKey: string; defaultValue: JsonValue; about: string }) {
  const details = useFlagDetails(flagKey, defaultValue)
  const id = `flag-${flagKey}`
  return (
    <tr data-testid={id} className={details.stale ? 'stale' : undefined}>
      <td>
        <code>{flagKey}</code>
        <div className="muted small">{about}</div>
      </td>
      <td>
        <code data-testid={`${id}-value`} className="value">
          {JSON.stringify(details.value)}
        </code>
      </td>
      <td>
        <Badge value={details.source} testId={`${id}-source`} />
      </td>
      <td className="small">
        <span data-testid={`${id}-variant`}>{details.variant ?? '—'}</span>
        <span className="muted"> / {details.reason ?? '—'}</span>
        {details.errorCode && (
          <div data-testid={`${id}-error`} className="error-code">
            {details.errorCode}
          </div>
        )}
      </td>
      <td className="small nowrap">
        <Age at={details.updatedAt} testId={`${id}-age`} />
      </td>
      <td>
        <span data-testid={`${id}-stale`} className={details.stale ? 'warn' : 'ok'}>
          {details.stale ? 'stale' : 'fresh'}
        </span>
      </td>
    </tr>
  )
}
