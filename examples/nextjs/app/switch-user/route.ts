import { NextResponse, type NextRequest } from 'next/server'
import { USER_COOKIE, userById } from '../users'

// "Sign in as": remember the user in a cookie and render the page again for them. The new page
// comes with the new user's bootstrap, so their values are on screen from the first paint.
export async function POST(request: NextRequest) {
  const form = await request.formData()
  const user = userById(String(form.get('user') ?? ''))
  // A relative Location: `request.url` names the host as Next.js normalised it (`localhost`),
  // which is another origin, without this cookie, when the browser came through 127.0.0.1.
  const response = new NextResponse(null, { status: 303, headers: { Location: '/' } })
  response.cookies.set(USER_COOKIE, user.id, { path: '/', sameSite: 'lax', httpOnly: true })
  return response
}
