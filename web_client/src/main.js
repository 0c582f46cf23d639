// The page: read which document and engine the URL names, open a session for that engine,
// put CodeMirror on it, and keep the status panel current.
//
// URL: /?doc=<name>&engine=ot|crdt[&name=<your name>][&server=host:port]
// The page keeps its documents in the server's folder "docs": page name "notes" is the server's
// document "docs/notes" for both engines (ShareDB collection "docs", id "notes"; CRDT room
// "docs/notes"), so one name has one engine and the server can refuse the other.
// Without `engine`, the server is asked which engine the document already uses (a new document
// gets the engine chosen in the form, CRDT by default). `server` is for a page not served by the
// Weft server itself (e.g. dist/index.html opened from disk).

import { Compartment, EditorState } from '@codemirror/state'
import {
  EditorView, drawSelection, highlightActiveLine, highlightActiveLineGutter, keymap, lineNumbers
} from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { CrdtSession } from './crdt.js'
import { OtSession } from './ot.js'
import { renderBanner, renderStatus } from './status.js'

const ENGINES = ['crdt', 'ot']
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#800000']
const DOC_NAME = /^[\p{L}\p{N}._-]{1,100}$/u
const FOLDER = 'docs'

/** Where the Weft server is: the page's own origin unless ?server= says otherwise. */
function serverAddress (params) {
  const host = params.get('server') || location.host
  const secure = !params.get('server') && location.protocol === 'https:'
  return { http: `${secure ? 'https' : 'http'}://${host}`, ws: `${secure ? 'wss' : 'ws'}://${host}` }
}

/** Our name and colour: ?name= wins, else the one remembered in this browser, else a new one. */
function identity (params) {
  let name = (params.get('name') || '').trim().slice(0, 40)
  if (!name) {
    try {
      name = localStorage.getItem('weft-name') || ''
      if (!name) {
        name = `Guest ${Math.floor(100 + Math.random() * 900)}`
        localStorage.setItem('weft-name', name)
      }
    } catch {
      name = `Guest ${Math.floor(100 + Math.random() * 900)}`
    }
  }
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0
  return { name, colour: PALETTE[hash % PALETTE.length] }
}

function pageUrl (docName, engine, params) {
  const next = new URLSearchParams()
  next.set('doc', docName)
  if (engine) next.set('engine', engine)
  for (const keep of ['name', 'server']) if (params.get(keep)) next.set(keep, params.get(keep))
  return `?${next}`
}

/** The engine an existing document uses, or null if it does not exist (or nobody answers). */
async function engineOf (http, docName) {
  try {
    const response = await fetch(`${http}/api/docs/${encodeURIComponent(`${FOLDER}/${docName}`)}`)
    if (!response.ok) return null
    const info = await response.json()
    return ENGINES.includes(info.engine) ? info.engine : null
  } catch {
    return null
  }
}

/**
 * Fills the list of existing documents if the server offers one: GET /api/docs answering a list
 * (or {docs: [...]}) of server names or {name, engine}; only names in our folder are shown.
 */
async function listDocuments (http, params, list) {
  try {
    const response = await fetch(`${http}/api/docs`)
    if (!response.ok) return
    const body = await response.json()
    const docs = Array.isArray(body) ? body : body.docs
    if (!Array.isArray(docs) || docs.length === 0) return
    for (const doc of docs) {
      const serverName = typeof doc === 'string' ? doc : doc && doc.name
      if (typeof serverName !== 'string' || !serverName.startsWith(`${FOLDER}/`)) continue
      const name = serverName.slice(FOLDER.length + 1)
      const engine = typeof doc === 'object' && ENGINES.includes(doc.engine) ? doc.engine : null
      const link = document.createElement('a')
      link.href = pageUrl(name, engine, params)
      link.textContent = engine ? `${name} (${engine.toUpperCase()})` : name
      const item = document.createElement('li')
      item.append(link)
      list.append(item)
    }
    list.closest('section').hidden = false
  } catch {
    // No list: the form alone still opens or creates any document.
  }
}

function setUpForm (params, docName, engine) {
  const form = document.getElementById('open-form')
  const nameInput = form.elements.namedItem('doc')
  const engineInput = form.elements.namedItem('engine')
  nameInput.value = docName || ''
  engineInput.value = engine || 'crdt'
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const name = nameInput.value.trim()
    if (!DOC_NAME.test(name)) {
      nameInput.setCustomValidity('Use letters, digits, ".", "_" or "-" (at most 100).')
      nameInput.reportValidity()
      return
    }
    const chosen = engineInput.value
    location.search = pageUrl(name, chosen === 'auto' ? null : chosen, params)
  })
  nameInput.addEventListener('input', () => nameInput.setCustomValidity(''))
}

function createEditor (session, parent) {
  const editable = new Compartment()
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: '',
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        EditorView.lineWrapping,
        keymap.of(defaultKeymap),
        editable.of(EditorView.editable.of(false)),
        session.extensions()
      ]
    })
  })
  let wasEditable = false
  const syncEditable = () => {
    if (session.editable === wasEditable) return
    wasEditable = session.editable
    view.dispatch({ effects: editable.reconfigure(EditorView.editable.of(wasEditable)) })
  }
  return { view, syncEditable }
}

async function main () {
  const params = new URLSearchParams(location.search)
  const server = serverAddress(params)
  const user = identity(params)
  const docName = params.get('doc')
  let engine = params.get('engine')
  setUpForm(params, docName, engine)

  if (docName !== null && !DOC_NAME.test(docName)) {
    const banner = document.getElementById('banner')
    banner.textContent = `"${docName}" is not a document name here: use letters, digits, ".", "_" ` +
      'or "-" (at most 100).'
    banner.hidden = false
  }
  if (!docName || !DOC_NAME.test(docName)) {
    document.body.dataset.page = 'picker'
    await listDocuments(server.http, params, document.getElementById('doc-list'))
    return
  }
  document.body.dataset.page = 'editor'
  document.title = `${docName} — Weft`
  document.getElementById('doc-title').textContent = docName

  if (!ENGINES.includes(engine)) {
    engine = (await engineOf(server.http, docName)) || 'crdt'
    history.replaceState(null, '', pageUrl(docName, engine, params))
    document.getElementById('open-form').elements.namedItem('engine').value = engine
  }

  const session = engine === 'ot'
    ? new OtSession({ url: `${server.ws}/ot`, collection: FOLDER, id: docName, user })
    : new CrdtSession({ url: `${server.ws}/crdt`, room: `${FOLDER}/${docName}`, user })
  const { view, syncEditable } = createEditor(session, document.getElementById('editor'))
  session.attach(view)

  const panel = document.getElementById('status')
  const banner = document.getElementById('banner')
  const otherLink = document.createElement('a')
  otherLink.href = pageUrl(docName, null, params)
  otherLink.textContent = 'Open it with the engine it was created with.'

  // Editability follows the session at once (after the current editor update, if any); the
  // panel is redrawn at most once per frame.
  let queued = false
  const refresh = () => {
    queueMicrotask(syncEditable)
    if (queued) return
    queued = true
    requestAnimationFrame(() => {
      queued = false
      const stats = session.stats()
      renderStatus(panel, stats, user)
      renderBanner(banner, stats, otherLink)
    })
  }
  session.onChange = refresh
  setInterval(refresh, 1000)
  refresh()

  window.addEventListener('offline', () => session.setOnline(false))
  window.addEventListener('online', () => session.setOnline(true))
  if (navigator.onLine === false) session.setOnline(false)

  // A small read-only handle for tests and for poking around in the console.
  window.weft = {
    engine,
    user,
    text: () => view.state.doc.toString(),
    stats: () => session.stats(),
    view
  }
}

main()
