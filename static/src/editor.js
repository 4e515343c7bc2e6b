/**
 * Entry of the clause editor page: a CodeMirror 6 editor bound to the clause's Y.Doc, kept in
 * sync with the server by ClauseProvider over Socket.IO, with presence, a status indicator and a
 * live preview rendered by the server.
 *
 * Expects (see the report / README for the template contract):
 *   #clause-editor   data-clause-uid, data-readonly ("true"|"false"), data-user-id, data-user-name,
 *                    data-user-color, optional data-label, optional data-preview-url
 *   #suggestion-data optional <script type="application/json">: the pending suggestions as
 *                    GET data-suggestions-url answers them, when the page was made
 *   #clause-preview  optional; data-preview-url (takes precedence)
 *   #collab-status   optional; status text
 *   #presence-list   optional <ul>; who is here
 *   <meta name="csrf-token" content="...">  for the preview POST
 *   <meta name="csp-nonce" content="...">   optional; only used if the browser lacks adoptedStyleSheets
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { Compartment, EditorState, Prec } from '@codemirror/state'
import {
  EditorView,
  drawSelection,
  dropCursor,
  highlightActiveLine,
  highlightSpecialChars,
  keymap
} from '@codemirror/view'
import { defaultKeymap } from '@codemirror/commands'
import { LanguageSupport, defaultHighlightStyle, syntaxHighlighting } from '@codemirror/language'
import { markdownKeymap, markdownLanguage, pasteURLAsLink } from '@codemirror/lang-markdown'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'

import { ClauseProvider, DEFAULT_RESYNC_INTERVAL_MS, STATUS } from './collab/provider.js'
import { describeStatus } from './collab/status.js'
import { participants, presentAuthor, safeColor } from './collab/presence.js'
import { createPreviewer } from './collab/preview.js'
import { forgetOffline, guardUnsavedEdits, restoreOffline } from './collab/offline.js'
import { gettext } from './i18n.js'
import {
  authorshipField, authorshipMarks, insertLink, livePreview, setAuthorship, toggleInline, wireToolbar
} from './collab/toolbar.js'
import { acceptedRangesToEditor, acceptedText, refreshSuggestions, spansOf, suggestions } from './collab/suggest.js'
import { collabSocket, refusalOf } from './collab/socket.js'
import { SuggestionPanel } from './collab/suggestion_panel.js'
import { jsonBlock } from './page_data.js'

/** Saving/Saved flips on every keystroke; wait this long before showing it, so it does not flicker. */
const STATUS_SETTLE_MS = 400

/**
 * @typedef {object} EditorConfig
 * @property {string} clauseUid
 * @property {boolean} readonly
 * @property {number} userId the account id (the join ack's wins), -1 if the page does not say
 * @property {string} userName
 * @property {string} userColor
 * @property {string} label
 * @property {string} previewUrl
 * @property {boolean} livePreview markup hidden except on the lines being edited
 * @property {boolean} suggestOnly may only suggest (locked to Suggesting)
 * @property {boolean} mayDecide may accept and reject suggestions
 * @property {string} suggestionsUrl the list of pending suggestions (JSON), or ''
 * @property {any} suggestions that list as the page carries it, or null
 */

/**
 * Read the editor's configuration from the data attributes of #clause-editor.
 *
 * @param {HTMLElement} host
 * @param {HTMLElement | null} preview
 * @returns {EditorConfig}
 * @throws {Error} when data-clause-uid is missing.
 */
function readConfig (host, preview) {
  const clauseUid = host.dataset.clauseUid || ''
  if (!clauseUid) throw new Error('#clause-editor has no data-clause-uid')
  const userId = Number(host.dataset.userId)
  return {
    clauseUid,
    readonly: host.dataset.readonly === 'true',
    userId: host.dataset.userId && Number.isInteger(userId) ? userId : -1,
    userName: host.dataset.userName || gettext('Anonymous'),
    userColor: safeColor(host.dataset.userColor),
    label: host.dataset.label || gettext('Clause text'),
    previewUrl: (preview && preview.dataset.previewUrl) || host.dataset.previewUrl || '',
    livePreview: false,
    suggestOnly: host.dataset.suggestOnly === 'true',
    mayDecide: host.dataset.mayDecide === 'true',
    suggestionsUrl: host.dataset.suggestionsUrl || '',
    suggestions: jsonBlock('suggestion-data', host.ownerDocument)
  }
}

/**
 * @param {string} name
 * @returns {string} the content of <meta name="...">, or ''.
 */
function metaContent (name) {
  const meta = document.querySelector(`meta[name="${name}"]`)
  return (meta && meta.getAttribute('content')) || ''
}

/** The toolbar's commands that write into the text (the others only change what is shown). */
const FORMAT_COMMANDS = new Set(['bold', 'italic', 'numbered', 'bullet', 'heading', 'link'])

/**
 * The editor extensions that depend on whether the clause may be edited. The content stays
 * focusable when read-only, so keyboard and screen-reader users can still read and select it.
 *
 * @param {boolean} readonly
 */
function editability (readonly) {
  return [
    EditorState.readOnly.of(readonly),
    EditorView.contentAttributes.of({ 'aria-readonly': String(readonly) })
  ]
}

/**
 * Markdown language support: what markdown() gives, minus its HTML-in-Markdown support.
 *
 * Why not markdown() itself: it always bundles the HTML, CSS and JavaScript parsers (about
 * 150 KiB minified) to highlight raw HTML, and CodeDraft renders raw HTML as text anyway (the
 * server's renderer has HTML off), so highlighting it as markup would mislead. GFM (tables,
 * strikethrough, autolinks) is kept.
 *
 * @returns {LanguageSupport}
 */
function clauseMarkdown () {
  return new LanguageSupport(markdownLanguage, [Prec.high(keymap.of(markdownKeymap)), pasteURLAsLink])
}

/**
 * This editor's own presence: the server stamps its own name, colour and account id over it
 * before anyone else sees it, but with the id here already this page folds its user's other tabs
 * into one "Here now" entry.
 *
 * @param {string} name
 * @param {string} color
 * @param {number} id -1 when the page does not say
 */
function localUser (name, color, id) {
  /** @type {{name: string, color: string, colorLight: string, id?: number}} */
  const user = { name, color, colorLight: `${color}33` }
  if (id >= 0) user.id = id
  return user
}

/**
 * Render the people present as <li><span class="presence-dot"></span><span class="presence-name">.
 * Colours go through the CSSOM (allowed under a strict CSP), names through textContent.
 *
 * @param {HTMLElement} list
 * @param {Awareness} awareness
 */
function renderPresence (list, awareness) {
  const items = participants(awareness.getStates(), awareness.clientID).map((person) => {
    const item = document.createElement('li')
    item.className = 'presence-item'
    const dot = document.createElement('span')
    dot.className = 'presence-dot'
    dot.setAttribute('aria-hidden', 'true')
    dot.style.backgroundColor = person.color
    const name = document.createElement('span')
    name.className = 'presence-name'
    name.textContent = person.isSelf ? gettext('%(name)s (you)', { name: person.name }) : person.name
    item.append(dot, name)
    return item
  })
  list.replaceChildren(...items)
}

/**
 * Show the provider's state in #collab-status (and as data-collab-status / data-unacked on the
 * editor host: hooks for end-to-end tests and CSS). Saving/Saved changes are settled for
 * STATUS_SETTLE_MS so that they do not flicker, nor chatter in a screen reader, on every key.
 *
 * @param {ClauseProvider} provider
 * @param {HTMLElement} host
 * @param {HTMLElement | null} statusEl
 * @param {string} notice shown until the next local edit (why the text was reloaded), or ''
 * @returns {() => void} stops the pending timer
 */
function bindStatus (provider, host, statusEl, notice) {
  if (statusEl) {
    if (!statusEl.hasAttribute('role')) statusEl.setAttribute('role', 'status')
    if (!statusEl.hasAttribute('aria-live')) statusEl.setAttribute('aria-live', 'polite')
  }
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null
  let shownState = ''
  let message = notice

  /** @param {{text: string, state: string}} view */
  function show (view) {
    shownState = view.state
    if (!statusEl) return
    if (statusEl.textContent !== view.text) statusEl.textContent = view.text
    statusEl.dataset.state = view.state
  }

  function refresh () {
    host.dataset.collabStatus = provider.status
    host.dataset.unacked = String(provider.unackedCount)
    const view = message
      ? { text: message, state: 'error' }
      : describeStatus({ status: provider.status, pending: provider.unackedCount, error: provider.lastError })
    const quiet = (/** @type {string} */ state) => state === 'saving' || state === 'saved'
    if (timer !== null) clearTimeout(timer)
    timer = null
    if (quiet(view.state) && quiet(shownState)) {
      timer = setTimeout(() => { timer = null; show(view) }, STATUS_SETTLE_MS)
    } else {
      show(view)
    }
  }

  provider.on('status', refresh)
  provider.on('pending', ({ count }) => {
    // The person is typing again: the note about the reload has been read.
    if (count > 0) message = ''
    refresh()
  })
  provider.on('error', refresh)
  refresh()
  return () => { if (timer !== null) clearTimeout(timer) }
}

/**
 * Post the text to the server's renderer as it changes, and show the sanitised HTML it returns.
 *
 * @param {Y.Text} ytext
 * @param {HTMLElement} previewEl
 * @param {string} url
 * @returns {() => void} cancels a scheduled or running request
 */
function bindPreview (ytext, previewEl, url) {
  let lastText = ''
  const previewer = createPreviewer({
    url,
    csrfToken: metaContent('csrf-token'),
    onHtml (html) {
      // The server rendered with raw HTML off and sanitised the result: this is its one
      // rendering path, shared with the published pages.
      previewEl.innerHTML = html
      previewEl.dataset.previewState = 'ok'
    },
    onError () {
      previewEl.dataset.previewState = 'error'
    }
  })
  ytext.observe(() => {
    // The clause as accepted: pending suggested insertions are not (yet) part of it.
    const text = acceptedText(ytext.toString(), spansOf(ytext))
    if (text === lastText) return
    lastText = text
    previewer.schedule(text)
  })
  return () => previewer.cancel()
}

/** @type {SuggestionPanel | null} */
let pagePanel = null

/**
 * The page's suggestion panel (one for the page; each session of the clause attaches to it).
 *
 * @param {EditorConfig} config
 * @param {Y.Text} ytext
 * @returns {SuggestionPanel}
 */
function sessionPanel (config, ytext) {
  if (!pagePanel) {
    pagePanel = new SuggestionPanel({
      root: document.getElementById('suggestion-panel'),
      modeSwitch: document.getElementById('suggest-mode'),
      url: config.suggestionsUrl,
      csrfToken: metaContent('csrf-token'),
      mayDecide: config.mayDecide,
      suggestOnly: config.suggestOnly,
      initial: config.suggestions
    })
  }
  pagePanel.watch(ytext)
  return pagePanel
}

/**
 * @typedef {object} ClauseSession
 * @property {EditorView} view
 * @property {Y.Doc} ydoc
 * @property {ClauseProvider} provider
 * @property {Y.UndoManager} undoManager
 * @property {Awareness} awareness
 * @property {import('y-indexeddb').IndexeddbPersistence | null} persistence the offline copy, if kept
 * @property {(on: boolean) => void} setLivePreview
 * @property {() => void} destroy
 */

/**
 * @typedef {object} PageParts
 * @property {HTMLElement} host #clause-editor
 * @property {EditorConfig} config
 * @property {import('socket.io-client').Socket} socket shared by every session of the page
 * @property {HTMLElement | null} statusEl
 * @property {HTMLElement | null} presenceList
 * @property {HTMLElement | null} previewEl
 */

/**
 * One life of the clause in this page: a fresh Y.Doc (so a fresh Yjs client id), its provider,
 * undo manager and editor view.
 *
 * @param {PageParts} parts
 * @param {string} notice shown in the status until the next edit, or ''
 * @param {(reason: string) => void} onStale called when the server refused a local update
 * @param {Y.Doc} ydoc the clause document, already holding the offline copy if there is one
 * @param {import('y-indexeddb').IndexeddbPersistence | null} persistence
 * @returns {ClauseSession}
 */
function openSession ({ host, config, socket, statusEl, presenceList, previewEl }, notice, onStale, ydoc, persistence) {
  const ytext = ydoc.getText('body')
  const awareness = new Awareness(ydoc)
  awareness.setLocalStateField('user', localUser(config.userName, config.userColor, config.userId))
  // The periodic step 1 brings edits whose broadcast between server processes was lost (issue 7).
  const provider = new ClauseProvider(socket, config.clauseUid, ydoc, {
    awareness, unloadTarget: window, resyncInterval: DEFAULT_RESYNC_INTERVAL_MS, refusal: refusalOf(socket)
  })

  // The list of pending suggestions beside the editor, and the mode switch (Editing / Suggesting).
  const panel = sessionPanel(config, ytext)

  // Track nothing by default: yCollab adds its own sync origin, so undo reverts only the edits
  // typed here, never a co-author's nor what arrived from the server.
  const undoManager = new Y.UndoManager(ytext, { trackedOrigins: new Set() })

  // Read-only until the server's text has arrived: typing into an empty editor before the first
  // sync would put the words at a meaningless position. After that, offline editing is allowed.
  let everSynced = false
  let readonly = config.readonly
  let suggestOnly = config.suggestOnly
  const editable = new Compartment()
  const previewMode = new Compartment()
  const isLocked = () => (readonly && !suggestOnly) || !everSynced
  // Suggestion mode: who we are (the account id from the page, then from the join ack) and the mode.
  let userId = config.userId
  const modeOf = () => (suggestOnly || panel.suggesting ? 'suggesting' : 'editing')

  const nonce = metaContent('csp-nonce')
  const linkQuestion = (document.getElementById('editor-toolbar') || host).dataset.linkQuestion || 'Address of the link'
  const formatting = keymap.of([
    { key: 'Mod-b', run: toggleInline('**') },
    { key: 'Mod-i', run: toggleInline('*') },
    { key: 'Mod-k', run: insertLink((question) => window.prompt(question), linkQuestion) }
  ])
  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      // The text comes only from the server's document through sync; never inserted here.
      doc: ytext.toString(),
      extensions: [
        editable.of(editability(isLocked())),
        highlightSpecialChars(),
        drawSelection(),
        dropCursor(),
        highlightActiveLine(),
        EditorView.lineWrapping,
        clauseMarkdown(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        formatting,
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
        previewMode.of(config.livePreview ? livePreview : []),
        authorshipField,
        yCollab(ytext, awareness, { undoManager }),
        suggestions({
          mode: modeOf,
          userId: () => userId,
          author: (by) => panel.author(by, () => by === userId
            ? { name: config.userName, color: config.userColor }
            : presentAuthor(awareness.getStates(), by))
        }, {
          mayAccept: () => panel.mayDecide,
          mayReject: (_id, by) => panel.mayDecide || by === userId,
          decide: (action, id) => { panel.decide(action, [id]) }
        }),
        EditorView.contentAttributes.of({ 'aria-label': config.label, 'aria-multiline': 'true', spellcheck: 'true' }),
        ...(nonce ? [EditorView.cspNonce.of(nonce)] : [])
      ]
    })
  })

  // The formatting buttons say when they would do nothing (the commands refuse a read-only
  // editor); aria-disabled, not disabled, so arrow keys still walk the whole toolbar.
  const formatButtons = [...document.querySelectorAll('#editor-toolbar button[data-command]')]
    .filter((button) => FORMAT_COMMANDS.has(button.getAttribute('data-command') || ''))
  function applyEditability () {
    view.dispatch({ effects: editable.reconfigure(editability(isLocked())) })
    host.dataset.editable = String(!isLocked())
    for (const button of formatButtons) button.setAttribute('aria-disabled', String(isLocked()))
  }
  host.dataset.editable = String(!isLocked())
  for (const button of formatButtons) button.setAttribute('aria-disabled', String(isLocked()))

  provider.on('joined', ({ readonly: ro, suggestOnly: so, user }) => {
    readonly = ro
    suggestOnly = so
    panel.setSuggestOnly(so)
    if (user && Number.isInteger(user.id)) userId = user.id
    if (user && user.name) {
      // The server's idea of who we are wins over the page's.
      const color = safeColor(user.color || config.userColor)
      awareness.setLocalStateField('user', localUser(user.name, color, userId))
    }
    applyEditability()
  })
  provider.on('role', ({ readonly: ro, suggestOnly: so, removed }) => {
    readonly = ro
    suggestOnly = so
    if (removed) panel.lostSight()
    else panel.setSuggestOnly(so)
    applyEditability()
  })
  provider.on('synced', ({ synced }) => {
    if (synced && !everSynced) { everSynced = true; applyEditability() }
  })
  provider.on('pending', ({ count }) => { if (count === 0) panel.editsStored() })
  let stale = false
  provider.on('rejected', ({ error }) => {
    if (stale) return
    stale = true
    // Start over after the provider has finished handling this acknowledgement.
    queueMicrotask(() => onStale(error))
  })

  panel.attach(() => view.dispatch({ effects: refreshSuggestions.of(null) }))
  const stopStatus = bindStatus(provider, host, statusEl, notice)
  const onPresence = () => { if (presenceList) renderPresence(presenceList, awareness) }
  awareness.on('change', onPresence)
  onPresence()
  const stopPreview = previewEl && config.previewUrl ? bindPreview(ytext, previewEl, config.previewUrl) : () => {}

  return {
    view,
    ydoc,
    provider,
    undoManager,
    awareness,
    persistence,
    setLivePreview (on) {
      config.livePreview = on
      view.dispatch({ effects: previewMode.reconfigure(on ? livePreview : []) })
    },
    destroy () {
      panel.detach()
      stopStatus()
      if (persistence) persistence.destroy()
      stopPreview()
      awareness.off('change', onPresence)
      view.destroy()
      provider.destroy()
      undoManager.destroy()
      awareness.destroy()
      ydoc.destroy()
    }
  }
}

/**
 * Start the clause editor on the page, if the page has one.
 *
 * When the server refuses a local update, the local replica can never be merged again (all
 * later local updates depend on the refused one), so the session is replaced by a fresh one
 * loaded from the server, and the status says why.
 *
 * @param {Document} [doc]
 * @returns {{current: () => ClauseSession} | null} null when the page has no #clause-editor.
 * @throws {Error} when #clause-editor lacks data-clause-uid.
 */
export function startClauseEditor (doc = document) {
  const host = doc.getElementById('clause-editor')
  if (!host) return null
  const previewEl = doc.getElementById('clause-preview')
  const presenceList = doc.getElementById('presence-list')
  if (presenceList && !presenceList.hasAttribute('aria-label') && !presenceList.hasAttribute('aria-labelledby')) {
    presenceList.setAttribute('aria-label', gettext('People editing this clause'))
  }
  const config = readConfig(host, previewEl)
  const parts = {
    host,
    config,
    socket: collabSocket(config.clauseUid),
    statusEl: doc.getElementById('collab-status'),
    presenceList,
    previewEl
  }

  /** @type {ClauseSession | undefined} */
  let session
  /** @param {string} notice */
  const open = async (notice) => {
    const ydoc = new Y.Doc()
    // People who may edit or suggest keep an offline copy (a reader has nothing of their own to
    // keep); a suggester's copy holds only their suggestions, which the server checks as it would
    // live ones.
    const keepsCopy = !parts.config.readonly || parts.config.suggestOnly
    const persistence = keepsCopy ? await restoreOffline(ydoc, parts.config.clauseUid) : null
    session = openSession(parts, notice, async (reason) => {
      const stale = /** @type {ClauseSession} */ (session)
      const hadFocus = stale.view.hasFocus
      const copy = stale.persistence
      stale.destroy()
      // The refused update is in the stored copy too: loading it again would be refused again.
      await forgetOffline(copy)
      await open(gettext('Not saved: %(reason)s. The text was reloaded from the server.', { reason }))
      if (hadFocus && session) session.view.focus()
    }, ydoc, persistence)
    host.dataset.offlineCopy = String(Boolean(persistence))
    return session
  }
  guardUnsavedEdits(window, () => Boolean(session && session.provider.unackedCount > 0))
  const toolbar = doc.getElementById('editor-toolbar')
  if (toolbar) {
    wireToolbar(toolbar, () => /** @type {ClauseSession} */ (session).view, {
      setPreview (on) { if (session) session.setLivePreview(on) },
      async showAuthors (on) {
        const view = /** @type {ClauseSession} */ (session).view
        const button = toolbar.querySelector('[data-command="authors"]')
        if (!on || !button) {
          view.dispatch({ effects: setAuthorship.of([]) })
          return ''
        }
        try {
          const response = await fetch(button.getAttribute('data-authors-url') || '', { credentials: 'same-origin' })
          if (!response.ok) throw new Error(`HTTP ${response.status}`)
          // Authors are known for the accepted text; the editor also shows pending suggestions.
          const spans = spansOf(/** @type {ClauseSession} */ (session).ydoc.getText('body'))
          const marks = authorshipMarks((await response.json()).passages, acceptedText(view.state.doc.toString(), spans))
          if (!marks) return button.getAttribute('data-stale') || ''
          view.dispatch({ effects: setAuthorship.of(acceptedRangesToEditor(marks.marks, spans)) })
          return `${button.getAttribute('data-shown') || ''} ${marks.authors.map((name, i) => `${i + 1}: ${name}`).join(', ')}`
        } catch (err) {
          return button.getAttribute('data-failed') || ''
        }
      }
    })
  }

  const handle = { current: () => /** @type {ClauseSession} */ (session) }
  // A handle for end-to-end tests and debugging in the console, once the clause is open.
  open('').then(() => { window.codedraftEditor = handle })
  return handle
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', () => startClauseEditor(), { once: true })
} else {
  startClauseEditor()
}
