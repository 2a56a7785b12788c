/** epoch seconds as a local date and time (today: the time alone) */
export function localTime (sec: number | undefined): string {
  if (typeof sec !== 'number') return ''
  const d = new Date(sec * 1000)
  const today = new Date().toDateString() === d.toDateString()
  return today ? d.toLocaleTimeString() : d.toLocaleString()
}

export function duration (ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}

export const percent = (x: number): string => `${Math.round(x * 10) / 10}%`

const HEATERS: Record<string, string> = { T: 'Hotend', B: 'Bed', C: 'Chamber' }
export const heaterName = (k: string): string => HEATERS[k] ?? (/^T\d+$/.test(k) ? `Hotend ${k.slice(1)}` : k)
