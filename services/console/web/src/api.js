// Every call goes to the gateway with the signed-in user's token; the console holds no privilege of its own.
import { session, startSession, endSession } from './session.js'

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.message) || `请求失败（HTTP ${status}）`
    super(message)
    this.status = status
    this.code = (body && body.code) || 'http_' + status
    this.details = (body && body.details) || {}
    this.traceId = (body && body.trace_id) || ''
  }

  // The platform's message, plus the field or row problems it listed, in Chinese.
  get fullMessage() {
    const lines = [this.message]
    for (const f of this.details.fields || []) lines.push(`${f.field}：${f.message}`)
    return lines.join('\n')
  }
}

async function parse(resp) {
  const type = resp.headers.get('content-type') || ''
  if (type.includes('application/json')) return resp.json()
  return resp.text()
}

export async function signIn(username, password, otp) {
  const form = new URLSearchParams({ grant_type: 'password', username, password })
  if (otp) form.set('otp', otp)
  const resp = await fetch('/auth/token', { method: 'POST', body: form })
  const body = await parse(resp)
  if (!resp.ok) throw new ApiError(resp.status, body)
  startSession(body)
}

let refreshing = null

async function refresh() {
  if (!session.refreshToken) throw new ApiError(401, { message: '会话已结束，请重新登录。', code: 'session_ended' })
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: session.refreshToken })
  const resp = await fetch('/auth/token', { method: 'POST', body: form })
  const body = await parse(resp)
  if (!resp.ok) {
    endSession(body.message || '会话已结束，请重新登录。')
    throw new ApiError(resp.status, body)
  }
  startSession(body)
}

async function freshToken() {
  // Access tokens live five minutes; renew one shortly before it runs out rather than after a refusal.
  if (session.accessToken && Date.now() < session.expiresAt - 30_000) return session.accessToken
  refreshing = refreshing || refresh().finally(() => (refreshing = null))
  await refreshing
  return session.accessToken
}

function url(path, query) {
  const u = new URL(path, window.location.origin)
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === '') continue
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x))
    else u.searchParams.set(k, v)
  }
  return u.pathname + u.search
}

export async function call(method, path, { query, body, headers, raw } = {}) {
  const token = await freshToken()
  const init = { method, headers: { Authorization: `Bearer ${token}`, ...(headers || {}) } }
  if (body !== undefined) {
    if (body instanceof Blob || typeof body === 'string') init.body = body
    else {
      init.body = JSON.stringify(body)
      init.headers['Content-Type'] = 'application/json'
    }
  }
  const resp = await fetch(url(path, query), init)
  if (resp.status === 401) {
    const payload = await parse(resp)
    endSession((payload && payload.message) || '会话已结束，请重新登录。')
    throw new ApiError(401, payload)
  }
  if (!resp.ok) throw new ApiError(resp.status, await parse(resp))
  if (raw) return resp
  return parse(resp)
}

export const get = (path, query, opts = {}) => call('GET', path, { ...opts, query })
export const post = (path, body, opts = {}) => call('POST', path, { ...opts, body })
export const put = (path, body, opts = {}) => call('PUT', path, { ...opts, body })
export const patch = (path, body, opts = {}) => call('PATCH', path, { ...opts, body })
export const del = (path, opts = {}) => call('DELETE', path, opts)

// A batch upload with progress: fetch cannot report upload progress, XMLHttpRequest can.
export async function upload(path, query, file, contentType, onProgress) {
  const token = await freshToken()
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', url(path, query))
    xhr.setRequestHeader('Authorization', `Bearer ${token}`)
    xhr.setRequestHeader('Content-Type', contentType)
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(Math.round((e.loaded / e.total) * 100))
    xhr.onload = () => {
      let body = xhr.responseText
      try {
        body = JSON.parse(body)
      } catch {
        /* a non-JSON answer is shown as text */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body)
      else reject(new ApiError(xhr.status, body))
    }
    xhr.onerror = () => reject(new ApiError(0, { message: '网络连接失败，请检查网络后重试。' }))
    xhr.send(file)
  })
}

export async function signOut() {
  try {
    if (session.accessToken) await post('/auth/logout')
  } finally {
    endSession('您已退出登录。')
  }
}

export const enc = (code) => encodeURIComponent(code)
