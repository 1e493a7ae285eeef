// The signed-in user's session, kept in memory only: no token ever reaches localStorage, sessionStorage or a
// cookie an injected script could read. A reload therefore asks to sign in again.
import { reactive } from 'vue'

// The gateway ends a session after 30 idle minutes (SESSION_IDLE_TIMEOUT); the console enforces the same.
export const IDLE_LIMIT_MS = 30 * 60 * 1000

export const session = reactive({
  accessToken: null,
  refreshToken: null,
  expiresAt: 0,
  user: null, // {name, department, roles, subject}
  lastActivity: Date.now(),
  endedReason: '',
  features: {}, // what this jurisdiction's profile switches on (e.g. complaints: Hainan)
  profileName: '',
})

export function claimsOf(token) {
  const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
  const json = decodeURIComponent(
    atob(part)
      .split('')
      .map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'))
      .join(''),
  )
  return JSON.parse(json)
}

export function startSession(tokenResponse) {
  const claims = claimsOf(tokenResponse.access_token)
  session.accessToken = tokenResponse.access_token
  if (tokenResponse.refresh_token) session.refreshToken = tokenResponse.refresh_token
  session.expiresAt = Date.now() + tokenResponse.expires_in * 1000
  session.user = {
    subject: claims.sub,
    name: claims.name || '',
    department: claims.dept || null,
    roles: claims.roles || [],
  }
  session.lastActivity = Date.now()
  session.endedReason = ''
}

export function endSession(reason = '') {
  session.accessToken = null
  session.refreshToken = null
  session.expiresAt = 0
  session.user = null
  session.endedReason = reason
}

export function hasRole(...roles) {
  return !!session.user && session.user.roles.some((r) => roles.includes(r))
}

export function touch() {
  session.lastActivity = Date.now()
}

export function idleRemainingMs() {
  return Math.max(0, IDLE_LIMIT_MS - (Date.now() - session.lastActivity))
}
