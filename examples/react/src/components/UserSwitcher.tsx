import { ALICE, BOB, anonymousUser, type DemoUser } from '../users'

/** Who the flags are evaluated for, and buttons to become someone else. */
export function UserSwitcher({ user, onChange }: { user: DemoUser; onChange: (user: DemoUser) => void }) {
  const { targetingKey, ...attributes } = user.context
  return (
    <div className="user">
      <span className="muted small">viewing as</span>
      <code data-testid="current-user" title={JSON.stringify(user.context)}>
        {targetingKey}
        {Object.entries(attributes).map(([k, v]) => ` · ${k}=${String(v)}`)}
      </code>
      <div className="buttons">
        <button data-testid="user-alice" className="secondary" aria-pressed={user.name === 'alice'} onClick={() => onChange(ALICE)}>
          Alice (pro)
        </button>
        <button data-testid="user-bob" className="secondary" aria-pressed={user.name === 'bob'} onClick={() => onChange(BOB)}>
          Bob (free)
        </button>
        <button data-testid="user-anonymous" className="secondary" onClick={() => onChange(anonymousUser())}>
          New anonymous visitor
        </button>
      </div>
    </div>
  )
}
