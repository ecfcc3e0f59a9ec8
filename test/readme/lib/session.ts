// A stand-in for the app's session code used by the README's Next.js page (test/readme/app/page.tsx).
export interface SessionUser {
  id: string
  email: string
  plan: 'free' | 'pro'
}

export async function getUser(cookies: { get(name: string): { value: string } | undefined }): Promise<SessionUser> {
  const id = cookies.get('user')?.value ?? 'anonymous'
  return { id, email: `${id}@example.com`, plan: 'free' }
}
