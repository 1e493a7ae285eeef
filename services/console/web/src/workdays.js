// Working days left until a due date, counted by the console service with the platform's calendar
// (govshare_common.workdays) so the rule stays in one place. Asked in batches: one call per table render.
import { ref, watch } from 'vue'
import { get } from './api.js'

const pending = new Map() // due -> [ref]
let timer = null

function flush() {
  timer = null
  const batch = new Map(pending)
  pending.clear()
  get('/console/api/working-days', { until: [...batch.keys()] })
    .then((r) => {
      for (const [due, refs] of batch) refs.forEach((x) => (x.value = r.days[due] ?? null))
    })
    .catch(() => {
      for (const refs of batch.values()) refs.forEach((x) => (x.value = null))
    })
}

export function workingDaysLeft(source) {
  const left = ref(null)
  watch(
    source,
    (due) => {
      left.value = null
      if (!due) return
      const key = String(due).slice(0, 10)
      if (!pending.has(key)) pending.set(key, [])
      pending.get(key).push(left)
      timer = timer || setTimeout(flush, 0)
    },
    { immediate: true },
  )
  return left
}
