// The status panel and the banner: what the connection is doing, in plain words.
//
// Reads a session's stats() (see src/ot.js and src/crdt.js) and renders them; knows nothing of
// either engine beyond the field names. data-* attributes carry the raw values for tests.

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  refused: 'Refused by the server'
}

const ENGINE_TEXT = {
  ot: 'OT — ShareDB text-unicode',
  crdt: 'CRDT — Yjs'
}

function plural (n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function formatBytes (n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

/** One line under the connection badge: what is waiting to be sent, if anything. */
function pendingText (stats) {
  if (stats.connection === 'refused') return ''
  if (stats.pending === 0) return stats.connection === 'connected' ? 'All edits saved' : 'No unsent edits'
  const edits = plural(stats.pending, stats.engine === 'ot' ? 'op' : 'edit')
  return stats.connection === 'connected' ? `Saving ${edits}…` : `${edits} waiting to be sent`
}

/** Fills `panel` (an element) from `stats`. */
export function renderStatus (panel, stats, user) {
  const set = (key, text, attrs = {}) => {
    const el = panel.querySelector(`[data-field="${key}"]`)
    if (!el) return
    el.textContent = text
    for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value))
  }
  set('connection', CONNECTION_TEXT[stats.connection] || stats.connection, {
    'data-connection': stats.connection
  })
  set('pending', pendingText(stats), { 'data-pending': stats.pending })
  set('engine', ENGINE_TEXT[stats.engine] || stats.engine, { 'data-engine': stats.engine })
  if (stats.engine === 'ot') {
    set('size-label', 'Version')
    set('size', stats.version === null || stats.version === undefined ? '—' : String(stats.version))
  } else {
    set('size-label', 'State size')
    set('size', formatBytes(stats.stateSize))
  }
  set('editors', String(stats.editors), { 'data-editors': stats.editors })
  set('latency', stats.latencyMs === null ? '—' : `${stats.latencyMs} ms`)
  set('user', user.name)
  const swatch = panel.querySelector('[data-field="swatch"]')
  if (swatch) swatch.style.backgroundColor = user.colour
}

/** Shows a refusal or an error above the editor; hides the banner when there is none. */
export function renderBanner (banner, stats, otherEngineLink) {
  const message = stats.refused !== null
    ? `This document cannot be opened with ${stats.engine.toUpperCase()}: ${stats.refused}`
    : stats.error
  banner.hidden = !message
  banner.dataset.kind = stats.refused !== null ? 'refused' : 'error'
  banner.textContent = message || ''
  if (message && stats.refused !== null && otherEngineLink) {
    banner.append(' ')
    banner.append(otherEngineLink)
  }
}
