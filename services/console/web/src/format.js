// How values are shown: every time in China time (Asia/Shanghai) whatever the browser's zone.
const TZ = 'Asia/Shanghai'

const dateTime = new Intl.DateTimeFormat('zh-CN', {
  timeZone: TZ,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  hour12: false,
})

export function fmtTime(value) {
  if (!value) return '—'
  const d = new Date(value)
  if (Number.isNaN(d.getTime())) return String(value)
  return dateTime.format(d)
}

// A calendar date ("2026-12-15") is a date in China already: show it without shifting zones.
export function fmtDate(value) {
  if (!value) return '—'
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(value))
  if (!m) return String(value)
  if (String(value).length > 10) {
    const parts = new Intl.DateTimeFormat('zh-CN', { timeZone: TZ, year: 'numeric', month: 'numeric', day: 'numeric' })
    return parts.format(new Date(value))
  }
  return `${Number(m[1])}年${Number(m[2])}月${Number(m[3])}日`
}

export function chinaToday() {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' })
  return parts.format(new Date())
}

export const PURPOSES = {
  administrative_basis: '行政依据',
  work_reference: '工作参考',
  data_verification: '数据校核',
  business_collaboration: '业务协同',
  other: '其他',
}

export const SHARE_TYPES = { unconditional: '无条件共享', conditional: '有条件共享', not_shared: '不予共享' }

export const ROLE_LABELS = {
  platform_admin: '平台管理机构',
  dept_admin: '部门管理员',
  dept_reviewer: '部门审核员',
  dept_system: '部门业务系统',
  auditor: '审计',
  federation_peer: '级联平台',
}

export const RESOURCE_STATES = {
  draft: '草稿',
  submitted: '待审核',
  returned: '已退回',
  published: '已发布',
  withdrawn: '已撤销',
}

export function list(values, labels) {
  if (!values || !values.length) return '—'
  return values.map((v) => (labels && labels[v]) || v).join('、')
}

export function mmss(ms) {
  const s = Math.ceil(ms / 1000)
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
}
