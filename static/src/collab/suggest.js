/**
 * Suggestion mode: what a person types or deletes while "Suggesting" becomes a suggestion in the
 * clause's Y.Text instead of an edit, and every pending suggestion is shown inline.
 *
 * The model (docs/realtime.md, "Suggestions"; the server's codedraft/collab/core.py checks it):
 *   - a suggested insertion is text with the attribute `suggestion: {id, by}`;
 *   - a suggested deletion is accepted text with the attribute `suggestion_delete: {id, by}`;
 *   - `by` is the account id the server gave us in the join ack; the server refuses anything else
 *     from a person who may only suggest.
 *
 * CodeMirror shows the Y.Text as it is (suggested insertions included); decorations underline
 * insertions and strike deletions, in the author's colour and with their name in the title (in a
 * neutral grey and without a name while the author is being looked up).
 * Every local change goes through `localChanges`, which writes to the Y.Text itself (so that
 * plain typing next to a suggestion does not inherit its mark, as Yjs would otherwise do) and,
 * in Suggesting mode, rewrites the change: deleted text stays, marked; inserted text is marked.
 */
import { Annotation, ChangeSet, EditorSelection, EditorState, Facet, StateEffect, StateField, Transaction } from '@codemirror/state'
import { Decoration, EditorView, ViewPlugin, showTooltip } from '@codemirror/view'
import { ySyncAnnotation, ySyncFacet } from 'y-codemirror.next'
import { gettext } from '../i18n.js'

export const SUGGEST_INSERT = 'suggestion'
export const SUGGEST_DELETE = 'suggestion_delete'
/** Inserting with these stops new text from taking the marks of the character before it. */
const PLAIN = Object.freeze({ [SUGGEST_INSERT]: null, [SUGGEST_DELETE]: null })
/** The colour of a suggestion whose author is still being looked up. */
const UNNAMED_COLOR = '#767676'

/**
 * How a suggestion is named in its mark's title and in its popover: "by <name>" once the author
 * is known, and nothing about the author before (unnamed, not misnamed).
 *
 * @param {'insert' | 'delete'} kind
 * @param {{name: string} | null} who
 */
export function suggestionLabels (kind, who) {
  if (!who) {
    return kind === 'insert'
      ? { title: gettext('Suggested insertion'), who: gettext('Insertion'), group: gettext('Suggestion') }
      : { title: gettext('Suggested deletion'), who: gettext('Deletion'), group: gettext('Suggestion') }
  }
  const name = who.name
  return kind === 'insert'
    ? {
        title: gettext('Suggested insertion by %(name)s', { name }),
        who: gettext('Insertion by %(name)s', { name }),
        group: gettext('Suggestion by %(name)s', { name })
      }
    : {
        title: gettext('Suggested deletion by %(name)s', { name }),
        who: gettext('Deletion by %(name)s', { name }),
        group: gettext('Suggestion by %(name)s', { name })
      }
}

/**
 * @typedef {{id: string, by: number}} Mark
 * @typedef {{from: number, to: number, insert: Mark | null, del: Mark | null}} Span
 * @typedef {{mode: () => 'editing' | 'suggesting', userId: () => number, author: (by: number) => {name: string, color: string} | null}} SuggestConfig
 * @typedef {{kind: 'delete' | 'format' | 'insert', at: number, length?: number, text?: string, attributes?: Record<string, any>}} YOp
 */

/** How the editor finds the mode, the user and author names (set by the editor page). */
export const suggestConfig = Facet.define({ combine: (values) => values[values.length - 1] })

/** The Y.Text operations a rewritten local transaction stands for (Y positions, in order). */
const yPlan = Annotation.define()
/** The suggestion marks changed without a text change (a remote mark, a decision): redraw. */
export const refreshSuggestions = StateEffect.define()

/**
 * @param {any} value
 * @returns {Mark | null}
 */
function markOf (value) {
  if (!value || typeof value !== 'object' || typeof value.id !== 'string') return null
  const by = Number(value.by)
  return Number.isInteger(by) ? { id: value.id, by } : { id: value.id, by: -1 }
}

/**
 * The Y.Text as spans of equal marks, in editor positions (UTF-16, as CodeMirror's).
 *
 * @param {import('yjs').Text} ytext
 * @returns {Span[]}
 */
export function spansOf (ytext) {
  /** @type {Span[]} */
  const spans = []
  let at = 0
  for (const op of ytext.toDelta()) {
    if (typeof op.insert !== 'string') continue
    const attributes = op.attributes || {}
    const span = { from: at, to: at + op.insert.length, insert: markOf(attributes[SUGGEST_INSERT]), del: markOf(attributes[SUGGEST_DELETE]) }
    at = span.to
    spans.push(span)
  }
  return spans
}

/**
 * The accepted text of spans over `text`: suggested insertions left out.
 *
 * @param {string} text
 * @param {Span[]} spans
 */
export function acceptedText (text, spans) {
  return spans.filter((s) => !s.insert).map((s) => text.slice(s.from, s.to)).join('')
}

let counter = 0
/** A new suggestion id: unique enough per browser and matching the server's [A-Za-z0-9_.:-]{1,64}. */
export function newSuggestionId () {
  counter += 1
  return `s${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${counter}`
}

/**
 * The spans overlapping [from, to), cut to it.
 *
 * @param {Span[]} spans
 * @param {number} from
 * @param {number} to
 * @returns {Span[]}
 */
function within (spans, from, to) {
  return spans.filter((s) => s.to > from && s.from < to)
    .map((s) => ({ ...s, from: Math.max(s.from, from), to: Math.min(s.to, to) }))
}

/**
 * Turn a local change of the editor into what Suggesting makes of it.
 *
 * Deleting someone else's text marks it; deleting your own suggested text removes it; deleting
 * another's suggestion does nothing. Typed text is inserted after the passage it replaces, as
 * your suggestion (continuing the suggestion right before it when that is yours).
 *
 * @param {Span[]} spans the Y.Text before the change
 * @param {{fromA: number, toA: number, inserted: string}[]} changes in ascending order
 * @param {number} me
 * @returns {{editor: {from: number, to?: number, insert?: string}[], yOps: YOp[]}}
 */
export function planSuggestion (spans, changes, me) {
  /** @type {{from: number, to?: number, insert?: string}[]} */
  const editor = []
  /** @type {YOp[]} */
  const yOps = []
  let shift = 0 // how far Y positions have moved from the start document's, by earlier changes
  for (const { fromA, toA, inserted } of changes) {
    /** @type {YOp[]} */
    const here = []
    let removed = 0
    const touched = within(spans, fromA, toA)
    for (const span of touched) {
      if (span.insert) {
        if (span.insert.by === me) {
          here.push({ kind: 'delete', at: span.from, length: span.to - span.from })
          editor.push({ from: span.from, to: span.to })
          removed += span.to - span.from
        }
      } else if (!span.del) {
        const before = spans.find((s) => s.to === span.from && s.del && s.del.by === me)
        const id = (before && before.del && before.del.id) || (touched.find((s) => s.del && s.del.by === me)?.del?.id) || newSuggestionId()
        here.push({ kind: 'format', at: span.from, length: span.to - span.from, attributes: { [SUGGEST_DELETE]: { id, by: me } } })
      }
    }
    if (inserted) {
      const previous = spans.find((s) => s.to === toA && s.from < toA)
      const id = previous && previous.insert && previous.insert.by === me ? previous.insert.id : newSuggestionId()
      here.push({ kind: 'insert', at: toA, text: inserted, attributes: { [SUGGEST_INSERT]: { id, by: me }, [SUGGEST_DELETE]: null } })
      editor.push({ from: toA, insert: inserted })
    }
    // Right to left within the change: each step leaves the positions of the ones before it.
    here.sort((a, b) => b.at - a.at || (a.kind === 'insert' ? -1 : 1))
    for (const op of here) yOps.push({ ...op, at: op.at + shift })
    shift += inserted.length - removed
  }
  return { editor, yOps }
}

/**
 * The Y operations of a plain edit (Editing mode): as y-codemirror.next would make them, except
 * that inserted text is explicitly unmarked.
 *
 * @param {{fromA: number, toA: number, inserted: string}[]} changes
 * @returns {YOp[]}
 */
function planPlain (changes) {
  /** @type {YOp[]} */
  const yOps = []
  let shift = 0
  for (const { fromA, toA, inserted } of changes) {
    if (toA > fromA) yOps.push({ kind: 'delete', at: fromA + shift, length: toA - fromA })
    if (inserted) yOps.push({ kind: 'insert', at: fromA + shift, text: inserted, attributes: PLAIN })
    shift += inserted.length - (toA - fromA)
  }
  return yOps
}

function changeList (/** @type {import('@codemirror/state').Transaction} */ tr) {
  /** @type {{fromA: number, toA: number, inserted: string}[]} */
  const changes = []
  tr.changes.iterChanges((fromA, toA, _fromB, _toB, inserted) => {
    changes.push({ fromA, toA, inserted: inserted.sliceString(0, inserted.length, '\n') })
  })
  return changes
}

/**
 * @param {import('@codemirror/state').Transaction} tr
 */
function rewrite (tr) {
  if (!tr.docChanged || tr.annotation(ySyncAnnotation) || tr.annotation(yPlan)) return tr
  const state = tr.startState
  const sync = state.facet(ySyncFacet)
  const config = state.facet(suggestConfig)
  if (!sync || !config) return tr
  const changes = changeList(tr)
  if (config.mode() !== 'suggesting') {
    return [tr, { annotations: [ySyncAnnotation.of(sync), yPlan.of(planPlain(changes))] }]
  }
  const plan = planSuggestion(spansOf(sync.ytext), changes, config.userId())
  const set = ChangeSet.of(plan.editor, state.doc.length)
  const head = state.selection.main.head
  const last = changes[changes.length - 1]
  let cursor
  if (last.inserted) cursor = set.mapPos(last.toA, 1)
  else cursor = head === last.toA ? set.mapPos(last.fromA, -1) : set.mapPos(last.toA, 1)
  return {
    changes: set,
    selection: EditorSelection.cursor(cursor),
    annotations: [ySyncAnnotation.of(sync), yPlan.of(plan.yOps)],
    userEvent: tr.annotation(Transaction.userEvent) || 'input',
    scrollIntoView: true
  }
}

/** Writes the Y plan of each rewritten transaction, with the sync plugin's origin (undo tracks it). */
const applyPlan = ViewPlugin.fromClass(class {
  /** @param {import('@codemirror/view').ViewUpdate} update */
  update (update) {
    for (const tr of update.transactions) {
      const plan = tr.annotation(yPlan)
      if (!plan || plan.length === 0) continue
      const sync = update.state.facet(ySyncFacet)
      const ytext = sync.ytext
      ytext.doc.transact(() => {
        for (const op of /** @type {YOp[]} */ (plan)) {
          if (op.kind === 'delete') ytext.delete(op.at, op.length || 0)
          else if (op.kind === 'format') ytext.format(op.at, op.length || 0, op.attributes || {})
          else ytext.insert(op.at, op.text || '', op.attributes || {})
        }
      }, sync)
    }
  }
})

// --- showing suggestions ------------------------------------------------------------------------

/**
 * @param {Span[]} spans
 * @param {SuggestConfig} config
 */
function decorationsOf (spans, config) {
  const marks = []
  for (const span of spans) {
    const mark = span.insert || span.del
    if (!mark || span.to <= span.from) continue
    const kind = span.insert ? 'insert' : 'delete'
    const who = config.author(mark.by)
    const title = suggestionLabels(kind, who).title
    const color = who ? who.color : UNNAMED_COLOR
    marks.push(Decoration.mark({
      class: `cm-suggestion cm-suggestion-${kind}`,
      attributes: {
        title,
        'aria-label': title,
        'data-suggestion-id': mark.id,
        'data-suggestion-kind': kind,
        'data-suggestion-by': String(mark.by),
        'data-author-known': String(Boolean(who)),
        style: kind === 'insert'
          ? `text-decoration-color: ${color}; background-color: ${color}22`
          : `text-decoration-color: ${color}; color: ${color}`
      }
    }).range(span.from, span.to))
  }
  return Decoration.set(marks, true)
}

/**
 * The decorations of the suggestions, rebuilt from the Y.Text when it changes.
 */
const suggestionMarks = StateField.define({
  create: () => Decoration.none,
  update (value, tr) {
    const sync = tr.state.facet(ySyncFacet)
    const config = tr.state.facet(suggestConfig)
    if (sync && config && (tr.effects.some((e) => e.is(refreshSuggestions)) || tr.docChanged)) {
      const spans = spansOf(sync.ytext)
      // The Y.Text is written after a local change reaches the editor: keep the old marks mapped
      // until the refresh that follows it.
      const length = spans.length ? spans[spans.length - 1].to : 0
      if (length === tr.state.doc.length) return decorationsOf(spans, config)
    }
    return value.map(tr.changes)
  },
  provide: (field) => EditorView.decorations.from(field)
})

/** Redraws the marks whenever the Y.Text changes (a mark alone changes no text). */
const redrawOnChange = ViewPlugin.fromClass(class {
  /** @param {EditorView} view */
  constructor (view) {
    this.view = view
    this.scheduled = false
    this.ytext = view.state.facet(ySyncFacet).ytext
    this.observer = () => {
      if (this.scheduled) return
      this.scheduled = true
      queueMicrotask(() => {
        this.scheduled = false
        if (this.view.dom.isConnected) this.view.dispatch({ effects: refreshSuggestions.of(null) })
      })
    }
    this.ytext.observe(this.observer)
  }

  destroy () { this.ytext.unobserve(this.observer) }
})

/**
 * @typedef {{id: string, by: number, kind: string, from: number, to: number}} SuggestionAt
 */

/**
 * The suggestion under the cursor, if any.
 *
 * @param {import('@codemirror/state').EditorState} state
 * @returns {SuggestionAt | null}
 */
export function suggestionAt (state) {
  const sync = state.facet(ySyncFacet)
  if (!sync) return null
  const head = state.selection.main.head
  const spans = spansOf(sync.ytext)
  const span = spans.find((s) => (s.insert || s.del) && s.from <= head && head <= s.to && s.to > s.from)
  if (!span) return null
  const mark = /** @type {Mark} */ (span.insert || span.del)
  const same = spans.filter((s) => (s.insert || s.del)?.id === mark.id)
  return { id: mark.id, by: mark.by, kind: span.insert ? 'insert' : 'delete', from: same[0].from, to: same[same.length - 1].to }
}

/**
 * @typedef {object} Decisions
 * @property {(id: string) => boolean} mayAccept
 * @property {(id: string, by: number) => boolean} mayReject
 * @property {(action: 'accept' | 'reject', id: string) => void} decide
 */

/** How the inline buttons decide (set by the editor page). */
export const suggestionDecisions = Facet.define({ combine: (values) => values[values.length - 1] || null })

/**
 * A small popover at the suggestion under the cursor: who suggested it, Accept and Reject (or
 * Withdraw, for one's own).
 */
const inlineActions = StateField.define({
  create: (state) => tooltipFor(state),
  update (value, tr) {
    if (!tr.docChanged && !tr.selection && !tr.effects.some((e) => e.is(refreshSuggestions))) return value
    return tooltipFor(tr.state)
  },
  provide: (field) => showTooltip.from(field)
})

/** @param {import('@codemirror/state').EditorState} state */
function tooltipFor (state) {
  const decisions = state.facet(suggestionDecisions)
  const config = state.facet(suggestConfig)
  if (!decisions || !config) return null
  const found = suggestionAt(state)
  if (!found) return null
  const mine = found.by === config.userId()
  const accept = decisions.mayAccept(found.id)
  const reject = decisions.mayReject(found.id, found.by)
  if (!accept && !reject) return null
  return {
    pos: found.to,
    above: false,
    arrow: false,
    /** @param {EditorView} view */
    create (view) {
      const dom = document.createElement('div')
      dom.className = 'cm-suggestion-actions'
      dom.setAttribute('role', 'group')
      // Reached with Tab from the caret; Escape goes back to the text.
      dom.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); view.focus() } })
      const labels = suggestionLabels(found.kind === 'insert' ? 'insert' : 'delete', config.author(found.by))
      dom.setAttribute('aria-label', labels.group)
      const label = document.createElement('span')
      label.className = 'cm-suggestion-who'
      label.textContent = labels.who
      dom.append(label)
      /** @param {string} text @param {'accept' | 'reject'} action */
      const button = (text, action) => {
        const b = document.createElement('button')
        b.type = 'button'
        b.textContent = text
        b.dataset.suggestionAction = action
        b.addEventListener('mousedown', (e) => e.preventDefault()) // keep the editor's selection
        b.addEventListener('click', () => {
          // A keyboard user would be left on a button that the decision removes: back to the text.
          const focused = dom.contains(document.activeElement)
          decisions.decide(action, found.id)
          if (focused) view.focus()
        })
        dom.append(b)
      }
      if (accept) button(gettext('Accept'), 'accept')
      if (reject) button(mine && !accept ? gettext('Withdraw') : gettext('Reject'), 'reject')
      return { dom }
    }
  }
}

/**
 * Everything suggestion mode adds to the editor.
 *
 * @param {SuggestConfig} config
 * @param {Decisions} decisions
 */
export function suggestions (config, decisions) {
  return [
    suggestConfig.of(config),
    suggestionDecisions.of(decisions),
    // Every local change, rewritten for the mode and annotated with its Y plan, so that
    // y-codemirror.next leaves it to applyPlan.
    EditorState.transactionFilter.of(rewrite),
    applyPlan,
    suggestionMarks,
    redrawOnChange,
    inlineActions
  ]
}

/**
 * Ranges of the accepted text as ranges of the editor's text (which also shows the pending
 * suggested insertions, skipped here): a range interrupted by a suggestion becomes two.
 *
 * @template {{from: number, to: number}} R
 * @param {R[]} ranges in the accepted text, ascending
 * @param {Span[]} spans the Y.Text's spans
 * @returns {R[]}
 */
export function acceptedRangesToEditor (ranges, spans) {
  const accepted = spans.filter((s) => !s.insert)
  /** @type {R[]} */
  const placed = []
  let before = 0 // accepted characters in the spans already passed
  let index = 0
  for (const range of ranges) {
    while (index < accepted.length && before + (accepted[index].to - accepted[index].from) <= range.from) {
      before += accepted[index].to - accepted[index].from
      index++
    }
    let at = before
    for (let i = index; i < accepted.length && at < range.to; i++) {
      const span = accepted[i]
      const length = span.to - span.from
      const from = Math.max(range.from, at)
      const to = Math.min(range.to, at + length)
      if (to > from) placed.push({ ...range, from: span.from + (from - at), to: span.from + (to - at) })
      at += length
    }
  }
  return placed
}
