/**
 * Writing without Markdown: formatting commands, a toolbar for them, a live-preview mode that
 * hides the markup except on the lines being edited, and authorship colours on demand.
 *
 * The text stays Markdown (the one format of clauses, diffs and exports); these only type it.
 * The toolbar (templates/collab/editor_panel.html) is a WAI-ARIA toolbar: one tab stop, arrow
 * keys between buttons, each button labelled (translated by the server) with its shortcut.
 */
import { EditorSelection, StateEffect, StateField, RangeSetBuilder } from '@codemirror/state'
import { Decoration, EditorView, ViewPlugin, WidgetType } from '@codemirror/view'
import { syntaxTree } from '@codemirror/language'

// --- commands -------------------------------------------------------------------------------
// Each command does nothing on a read-only editor, as CodeMirror's own do: a keymap or a toolbar
// button runs it whatever the state, and the editor is read-only exactly when an edit could not
// reach the clause (a reader, a page not yet synced, a reader who lost the clause). Before the
// first sync a bold mark typed there would have been merged into the clause at a meaningless place.

/**
 * Wrap each selection in ``mark`` (``**`` or ``*``), or unwrap it when it is wrapped already.
 * An empty selection gets the marks with the cursor between them.
 *
 * @param {string} mark
 * @returns {(view: EditorView) => boolean}
 */
export function toggleInline (mark) {
  return (view) => {
    if (view.state.readOnly) return false
    const { state } = view
    const changes = state.changeByRange((range) => {
      const before = state.sliceDoc(range.from - mark.length, range.from)
      const after = state.sliceDoc(range.to, range.to + mark.length)
      if (before === mark && after === mark) {
        return {
          changes: [{ from: range.from - mark.length, to: range.from }, { from: range.to, to: range.to + mark.length }],
          range: EditorSelection.range(range.from - mark.length, range.to - mark.length)
        }
      }
      return {
        changes: [{ from: range.from, insert: mark }, { from: range.to, insert: mark }],
        range: EditorSelection.range(range.from + mark.length, range.to + mark.length)
      }
    })
    view.dispatch(state.update(changes, { scrollIntoView: true, userEvent: 'input.format' }))
    return true
  }
}

/**
 * The lines touched by the selection, each once.
 *
 * @param {import('@codemirror/state').EditorState} state
 */
function selectedLines (state) {
  const lines = new Map()
  for (const range of state.selection.ranges) {
    for (let pos = range.from; pos <= range.to;) {
      const line = state.doc.lineAt(pos)
      lines.set(line.number, line)
      pos = line.to + 1
    }
  }
  return [...lines.values()].sort((a, b) => a.from - b.from)
}

const LINE_MARKER = /^(\s*)(#{1,6}\s+|[-*+]\s+|\d{1,9}[.)]\s+)?/

/**
 * Give each selected line the block marker ``kind`` makes (``- `` bullet, ``1. `` numbered in
 * order, ``### `` heading), replacing any other marker; lines that already have it lose it.
 *
 * @param {'bullet' | 'numbered' | 'heading'} kind
 * @returns {(view: EditorView) => boolean}
 */
export function toggleBlock (kind) {
  return (view) => {
    if (view.state.readOnly) return false
    const lines = selectedLines(view.state)
    const markerOf = (/** @type {number} */ index) => kind === 'bullet' ? '- ' : kind === 'heading' ? '### ' : `${index + 1}. `
    const has = (/** @type {string} */ marker) => kind === 'bullet' ? /^[-*+]\s/.test(marker)
      : kind === 'heading' ? /^#{1,6}\s/.test(marker) : /^\d/.test(marker)
    const all = lines.every((line) => has((LINE_MARKER.exec(line.text) || ['', '', ''])[2] || ''))
    const changes = lines.map((line, index) => {
      const match = LINE_MARKER.exec(line.text) || ['', '', '']
      const indent = match[1] || ''
      const current = match[2] || ''
      const from = line.from + indent.length
      return { from, to: from + current.length, insert: all ? '' : markerOf(index) }
    })
    view.dispatch({ changes, userEvent: 'input.format', scrollIntoView: true })
    return true
  }
}

/**
 * Make the selection a link: ``[text](address)``; asks for the address (``ask``), refusing
 * anything but http(s), mailto and in-page addresses (the renderer would drop the others).
 *
 * @param {(question: string) => string | null} ask
 * @param {string} question
 * @returns {(view: EditorView) => boolean}
 */
export function insertLink (ask, question) {
  return (view) => {
    if (view.state.readOnly) return false
    const address = (ask(question) || '').trim()
    if (!address || !/^(https?:\/\/|mailto:|#)/i.test(address)) return true
    const { state } = view
    const changes = state.changeByRange((range) => {
      const text = state.sliceDoc(range.from, range.to) || address
      const insert = `[${text}](${address})`
      return { changes: { from: range.from, to: range.to, insert }, range: EditorSelection.range(range.from + 1, range.from + 1 + text.length) }
    })
    view.dispatch(state.update(changes, { userEvent: 'input.format', scrollIntoView: true }))
    return true
  }
}

// --- live preview -----------------------------------------------------------------------------

/** Markup hidden in live preview, by syntax node name. */
const HIDDEN = new Set(['EmphasisMark', 'HeaderMark', 'LinkMark', 'URL', 'CodeMark'])
const STYLED = { StrongEmphasis: 'cm-md-strong', Emphasis: 'cm-md-em', Link: 'cm-md-link' }

/** The lines holding a cursor or selection: their markup stays visible, to be edited. */
function activeLines (/** @type {import('@codemirror/state').EditorState} */ state) {
  const lines = new Set()
  for (const range of state.selection.ranges) {
    const first = state.doc.lineAt(range.from).number
    const last = state.doc.lineAt(range.to).number
    for (let n = first; n <= last; n++) lines.add(n)
  }
  return lines
}

class BulletWidget extends WidgetType {
  toDOM () {
    const span = document.createElement('span')
    span.className = 'cm-md-bullet'
    span.textContent = '•'
    return span
  }

  eq () { return true }
}

/**
 * Decorations of live preview: markup hidden and text styled, except on active lines.
 *
 * @param {EditorView} view
 */
function previewDecorations (view) {
  const { state } = view
  const active = activeLines(state)
  /** @type {{from: number, to: number, deco: Decoration}[]} */
  const found = []
  for (const { from, to } of view.visibleRanges) {
    syntaxTree(state).iterate({
      from,
      to,
      enter (node) {
        const name = node.name
        const heading = /^ATXHeading(\d)$/.exec(name)
        if (heading) {
          const line = state.doc.lineAt(node.from)
          found.push({ from: line.from, to: line.from, deco: Decoration.line({ class: `cm-md-h cm-md-h${heading[1]}` }) })
        }
        if (STYLED[name]) found.push({ from: node.from, to: node.to, deco: Decoration.mark({ class: STYLED[name] }) })
        const lineNumber = state.doc.lineAt(node.from).number
        if (active.has(lineNumber)) return
        if (HIDDEN.has(name) && node.to > node.from) {
          // A heading's marks take the space after them along.
          const end = name === 'HeaderMark' && state.sliceDoc(node.to, node.to + 1) === ' ' ? node.to + 1 : node.to
          found.push({ from: node.from, to: end, deco: Decoration.replace({}) })
        } else if (name === 'ListMark' && /^[-*+]$/.test(state.sliceDoc(node.from, node.to))) {
          found.push({ from: node.from, to: node.to, deco: Decoration.replace({ widget: new BulletWidget() }) })
        }
      }
    })
  }
  found.sort((a, b) => a.from - b.from || a.deco.startSide - b.deco.startSide)
  const builder = new RangeSetBuilder()
  for (const { from, to, deco } of found) builder.add(from, to, deco)
  return builder.finish()
}

/** Live preview: Markdown shown as formatted text; the markup reappears where the cursor is. */
export const livePreview = ViewPlugin.fromClass(class {
  constructor (/** @type {EditorView} */ view) { this.decorations = previewDecorations(view) }
  update (/** @type {import('@codemirror/view').ViewUpdate} */ update) {
    if (update.docChanged || update.selectionSet || update.viewportChanged) this.decorations = previewDecorations(update.view)
  }
}, { decorations: (plugin) => plugin.decorations })

// --- authorship -------------------------------------------------------------------------------

/** Replace the authorship marks: {from, to, author index, author name} in UTF-16 positions. */
export const setAuthorship = StateEffect.define()

/** Authorship marks, mapped through every later edit so they stay on their words. */
export const authorshipField = StateField.define({
  create () { return Decoration.none },
  update (marks, transaction) {
    marks = marks.map(transaction.changes)
    for (const effect of transaction.effects) {
      if (effect.is(setAuthorship)) {
        const builder = new RangeSetBuilder()
        for (const { from, to, index, name } of effect.value) {
          if (to > from) builder.add(from, to, Decoration.mark({ class: `cm-author cm-author-${index % 8}`, attributes: { title: name } }))
        }
        marks = builder.finish()
      }
    }
    return marks
  },
  provide: (field) => EditorView.decorations.from(field)
})

/**
 * Authorship marks from the server's blame passages (``{text, author}``, in text order), if
 * they describe exactly the text in the editor; null when the editor holds edits the server
 * has not stored yet (the colours would land on the wrong words).
 *
 * @param {{text: string, author: string}[]} passages
 * @param {string} current the editor's text
 * @returns {{marks: {from: number, to: number, index: number, name: string}[], authors: string[]} | null}
 */
export function authorshipMarks (passages, current) {
  if (passages.map((p) => p.text).join('') !== current) return null
  const authors = []
  const marks = []
  let position = 0
  for (const passage of passages) {
    let index = authors.indexOf(passage.author)
    if (index < 0) { index = authors.length; authors.push(passage.author) }
    // JavaScript string lengths are UTF-16 units, as CodeMirror counts.
    marks.push({ from: position, to: position + passage.text.length, index, name: passage.author })
    position += passage.text.length
  }
  return { marks, authors }
}

// --- the toolbar ------------------------------------------------------------------------------

/**
 * Wire the toolbar's buttons to the editor: commands, the live-preview and authorship toggles,
 * and the toolbar's keyboard pattern (one tab stop, arrows, Home, End).
 *
 * @param {HTMLElement} toolbar
 * @param {() => EditorView} currentView the view of the current session
 * @param {{setPreview: (on: boolean) => void, showAuthors: (on: boolean) => Promise<string>}} modes
 */
export function wireToolbar (toolbar, currentView, modes) {
  const buttons = /** @type {HTMLButtonElement[]} */ ([...toolbar.querySelectorAll('button')])
  const ask = (/** @type {string} */ question) => window.prompt(question)
  /** @type {Record<string, (view: EditorView) => boolean>} */
  const commands = {
    bold: toggleInline('**'),
    italic: toggleInline('*'),
    numbered: toggleBlock('numbered'),
    bullet: toggleBlock('bullet'),
    heading: toggleBlock('heading'),
    link: insertLink(ask, toolbar.dataset.linkQuestion || 'Address of the link (https://…)')
  }
  const status = toolbar.querySelector('[data-toolbar-status]')
  for (const button of buttons) {
    button.addEventListener('click', async () => {
      const name = button.dataset.command || ''
      const view = currentView()
      if (commands[name]) {
        commands[name](view)
        view.focus()
      } else if (name === 'preview' || name === 'authors') {
        const on = button.getAttribute('aria-pressed') !== 'true'
        button.setAttribute('aria-pressed', String(on))
        if (name === 'preview') modes.setPreview(on)
        else {
          const message = await modes.showAuthors(on)
          if (status) status.textContent = message
        }
      }
    })
  }
  buttons.forEach((button, index) => button.setAttribute('tabindex', index === 0 ? '0' : '-1'))
  toolbar.addEventListener('keydown', (event) => {
    const index = buttons.indexOf(/** @type {HTMLButtonElement} */ (event.target))
    if (index < 0) return
    const next = event.key === 'ArrowRight' ? index + 1 : event.key === 'ArrowLeft' ? index - 1
      : event.key === 'Home' ? 0 : event.key === 'End' ? buttons.length - 1 : null
    if (next === null) return
    const target = buttons[(next + buttons.length) % buttons.length]
    buttons.forEach((button) => button.setAttribute('tabindex', button === target ? '0' : '-1'))
    target.focus()
    event.preventDefault()
  })
  toolbar.hidden = false
  return commands
}
