/** A coloured label for a value source or a client state (see styles.css `.badge-*`). */
export function Badge({ value, testId, title }: { value: string; testId?: string; title?: string }) {
  return (
    <span data-testid={testId} className={`badge badge-${value}`} title={title}>
      {value}
    </span>
  )
}
