/**
 * Feedback on a clause, enhanced. Every form works without this script; with it:
 *  - selecting words in the clause text (reading view, #clause-text) or in the editor
 *    (window.codedraftEditor) fills the new comment's passage and its hidden offset fields;
 *  - commented passages are highlighted in the reading view; a highlight leads to its thread;
 *  - the feedback forms post in the background and the thread list refreshes;
 *  - new comments, replies and status changes arrive live: the page joins the clause room of
 *    the /collab namespace and re-fetches the thread list on every "feedback" event.
 *
 * Expects a `.fb-panel` with data-clause-uid and data-fragment-url holding `[data-fb-threads]`.
 */
import { collabSocket } from './collab/socket.js'
import { gettext } from './i18n.js'

/** Wait this long after an event before re-fetching, so a burst costs one request. */
const REFRESH_DELAY_MS = 150
/** Markdown marks the reading view does not show; stripped before looking for a passage. */
const MARKUP = /[*_`~#>|[\]\\]/g

/** @param {string} name */
function metaContent (name) {
  const meta = document.querySelector(`meta[name="${name}"]`)
  return (meta && meta.getAttribute('content')) || ''
}

/**
 * Plain text nodes of `root` with their offsets in its concatenated text.
 *
 * @param {Element} root
 * @returns {{nodes: {node: Text, start: number}[], text: string}}
 */
function textIndex (root) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT)
  const nodes = []
  let text = ''
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    nodes.push({ node: /** @type {Text} */ (node), start: text.length })
    text += node.nodeValue || ''
  }
  return { nodes, text }
}

/**
 * Collapse runs of whitespace, remembering where each kept character came from.
 *
 * @param {string} text
 * @returns {{flat: string, origin: number[]}}
 */
function flatten (text) {
  let flat = ''
  const origin = []
  for (let i = 0; i < text.length; i++) {
    const ch = /\s/.test(text[i]) ? ' ' : text[i]
    if (ch === ' ' && flat.endsWith(' ')) continue
    flat += ch
    origin.push(i)
  }
  return { flat, origin }
}

/**
 * Wrap `[start, end)` of the indexed text in <mark> elements (one per text node crossed).
 *
 * @param {{nodes: {node: Text, start: number}[]}} index
 * @param {number} start
 * @param {number} end
 * @param {string} commentId
 */
function markRange (index, start, end, commentId) {
  for (const { node, start: nodeStart } of [...index.nodes]) {
    const nodeEnd = nodeStart + (node.nodeValue || '').length
    if (nodeEnd <= start || nodeStart >= end) continue
    const from = Math.max(start, nodeStart) - nodeStart
    const to = Math.min(end, nodeEnd) - nodeStart
    const range = document.createRange()
    range.setStart(node, from)
    range.setEnd(node, to)
    const mark = document.createElement('mark')
    mark.className = 'fb-mark'
    mark.dataset.comment = commentId
    mark.title = gettext('Commented passage: show the thread')
    range.surroundContents(mark)
  }
}

/** Remove earlier highlights from `root`, restoring its text nodes. */
function clearMarks (root) {
  for (const mark of root.querySelectorAll('mark.fb-mark')) {
    mark.replaceWith(...mark.childNodes)
  }
  root.normalize()
}

/**
 * Highlight every thread's passage in the reading view.
 *
 * @param {HTMLElement} textRoot #clause-text
 * @param {HTMLElement} threads
 */
function highlight (textRoot, threads) {
  clearMarks(textRoot)
  for (const item of threads.querySelectorAll('li.fb-thread[data-passage]')) {
    const passage = (item.getAttribute('data-passage') || '').replace(MARKUP, '')
    const wanted = flatten(passage).flat.trim()
    if (!wanted) continue
    // Re-index for each passage: wrapping splits text nodes.
    const index = textIndex(textRoot)
    const { flat, origin } = flatten(index.text)
    const at = flat.indexOf(wanted)
    if (at < 0) continue
    const start = origin[at]
    const end = origin[at + wanted.length - 1] + 1
    markRange(index, start, end, item.getAttribute('data-comment') || '')
  }
}

/**
 * @param {HTMLElement} panel
 * @returns {{set: (fields: Record<string, string>) => void} | null}
 */
function newCommentFields (panel) {
  const form = panel.ownerDocument.querySelector('form[data-fb-new]')
  if (!form) return null
  return {
    set (fields) {
      for (const [name, value] of Object.entries(fields)) {
        const field = /** @type {HTMLInputElement | null} */ (form.elements.namedItem(name))
        if (field) field.value = value
      }
    }
  }
}

/**
 * Fill the passage fields from a selection in the reading view or in the editor.
 *
 * @param {HTMLElement} panel
 * @param {HTMLElement | null} textRoot
 */
function followSelection (panel, textRoot) {
  const fields = newCommentFields(panel)
  if (!fields) return
  const fromReadingView = () => {
    const selection = window.getSelection()
    if (!textRoot || !selection || selection.isCollapsed || selection.rangeCount === 0) return
    const range = selection.getRangeAt(0)
    if (!textRoot.contains(range.commonAncestorContainer)) return
    const quote = selection.toString().trim()
    if (!quote) return
    const before = document.createRange()
    before.setStart(textRoot, 0)
    before.setEnd(range.startContainer, range.startOffset)
    fields.set({ quote, unit: 'reading', start: String(before.toString().length), end: '' })
  }
  const fromEditor = () => {
    const handle = /** @type {any} */ (window).codedraftEditor
    const view = handle && handle.current && handle.current().view
    if (!view) return
    const { from, to } = view.state.selection.main
    if (from === to) return
    // CodeMirror counts UTF-16 units, as the server's offsets module expects for unit=utf16.
    fields.set({ quote: view.state.sliceDoc(from, to), unit: 'utf16', start: String(from), end: String(to) })
  }
  document.addEventListener('mouseup', (event) => {
    const target = /** @type {Element} */ (event.target)
    if (target.closest && target.closest('#clause-editor')) fromEditor()
    else fromReadingView()
  })
  document.addEventListener('keyup', (event) => {
    if (!event.shiftKey) return
    const target = /** @type {Element} */ (event.target)
    if (target.closest && target.closest('#clause-editor')) fromEditor()
    else fromReadingView()
  })
}

/**
 * @param {HTMLElement} panel
 */
function startPanel (panel) {
  const uid = panel.dataset.clauseUid || ''
  const url = panel.dataset.fragmentUrl || ''
  const threads = /** @type {HTMLElement | null} */ (panel.querySelector('[data-fb-threads]'))
  const live = panel.querySelector('[data-fb-live-status]')
  const textRoot = document.getElementById('clause-text')
  if (!uid || !url || !threads) return

  const say = (/** @type {string} */ message) => { if (live) live.textContent = message }
  const decorate = () => { if (textRoot) highlight(textRoot, threads) }

  let pending = null
  const refresh = () => {
    if (pending) clearTimeout(pending)
    pending = setTimeout(async () => {
      pending = null
      const response = await fetch(url, { credentials: 'same-origin', headers: { 'X-Requested-With': 'fetch' } })
      if (!response.ok) return
      // The server rendered this fragment with its one safe Markdown renderer, for this viewer.
      threads.innerHTML = await response.text()
      decorate()
    }, REFRESH_DELAY_MS)
  }

  // Post the feedback forms in the background; the thread list refreshes itself.
  document.addEventListener('submit', async (event) => {
    const form = event.target
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute('data-fb-form') || event.defaultPrevented) return
    event.preventDefault()
    const response = await fetch(form.action, {
      method: 'POST',
      body: new FormData(form),
      credentials: 'same-origin',
      headers: { 'X-Requested-With': 'fetch', 'X-CSRFToken': metaContent('csrf-token') }
    })
    if (response.status === 429) {
      say(gettext('Too many posts: wait %(seconds)s seconds and try again.', { seconds: response.headers.get('Retry-After') || '60' }))
      return
    }
    let answer = { ok: false, error: gettext('Something went wrong; reload the page.') }
    try { answer = await response.json() } catch (_) { /* an HTML error page */ }
    say(answer.ok ? answer.message : answer.error)
    if (answer.ok) {
      if (form.hasAttribute('data-fb-new')) form.reset()
      refresh()
    }
  })

  // A highlight leads to its thread.
  if (textRoot) {
    textRoot.addEventListener('click', (event) => {
      const mark = /** @type {Element} */ (event.target).closest('mark.fb-mark')
      if (!mark) return
      const item = document.getElementById(`comment-${mark.getAttribute('data-comment')}`)
      if (!item) return
      const details = item.querySelector('details')
      if (details) details.open = true
      item.scrollIntoView({ block: 'nearest' })
      const summary = item.querySelector('summary')
      if (summary) summary.focus()
    })
  }

  // The page's connection, shared with the editor where there is one. Joining a clause the
  // editor joined already is harmless (the server answers a fresh step 1, which the editor takes
  // as any other), and a page without an editor needs the join to hear anything at all.
  const socket = collabSocket(uid)
  const join = () => socket.emit('join', { clause: uid })
  socket.on('connect', join)
  if (socket.connected) join()
  socket.on('feedback', (/** @type {{clause?: string, kind?: string}} */ data) => {
    if (!data || data.clause !== uid) return
    say(gettext('New feedback activity.'))
    refresh()
  })
  // The room also carries the clause's co-editing frames ("y"): not ours to handle.

  followSelection(panel, textRoot)
  decorate()
}

function start () {
  for (const panel of document.querySelectorAll('.fb-panel[data-clause-uid]')) {
    startPanel(/** @type {HTMLElement} */ (panel))
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start, { once: true })
} else {
  start()
}
