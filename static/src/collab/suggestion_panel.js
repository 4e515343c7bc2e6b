/**
 * The list of a clause's pending suggestions beside its editor, with Accept / Reject per item and
 * in bulk, a preview of accepting (the resulting text's diff, rendered by the server), and the
 * Editing / Suggesting switch.
 *
 * The server is the source of truth: the list comes from GET <url> (authors' names and colours
 * from their accounts, never from the text) and decisions go to POST <url>/decide, which applies
 * them to the live text; the editors see the result through the clause's Y.Doc like any edit.
 * The page carries the list as it was when the page was made, so the authors of the suggestions
 * already there are named at first paint; an author first seen later (a suggestion arriving live)
 * is asked of the server at once, and is unnamed, never misnamed, until the answer.
 */
import { gettext } from '../i18n.js'

/** Re-read the list this long after the text last changed. */
const REFRESH_MS = 300
/** The server's colour for an author it cannot name (codedraft/collab/suggestions.py). */
const FALLBACK_COLOR = '#767676'
// What the list answers once this person may not see the clause: signed out, no role, gone.
const NO_LONGER_SHOWN = new Set([401, 403, 404])

/**
 * @typedef {{id: string, by: number, author: string, color: string, kind: string, inserted: string,
 *   deleted: string, start: number, mine: boolean}} Listed
 * @typedef {{suggestions: Listed[], may_decide: boolean}} ListAnswer
 * @typedef {{name: string, color: string}} Author
 */

export class SuggestionPanel {
  /**
   * @param {{root: HTMLElement | null, modeSwitch: HTMLElement | null, url: string, csrfToken: string,
   *   mayDecide: boolean, suggestOnly: boolean, initial?: ListAnswer | null}} options `initial`: the
   *   list as the page carries it
   */
  constructor ({ root, modeSwitch, url, csrfToken, mayDecide, suggestOnly, initial = null }) {
    this.root = root
    this.modeSwitch = modeSwitch
    this.url = url
    /** Whether the server stopped showing this clause to this person (see lostSight). */
    this.lost = false
    this.csrfToken = csrfToken
    this.mayDecide = mayDecide
    this.suggestOnly = suggestOnly
    /** Suggesting rather than editing (always, for people who may only suggest). */
    this.suggesting = suggestOnly
    /** @type {Listed[]} */
    this.items = []
    /** Whether the list has arrived once: until then "none pending" would be a guess. */
    this.loaded = false
    /** @type {Map<number, Author>} */
    this.authors = new Map()
    /** Authors asked of the server because a mark named them first: each is asked once. */
    this.asked = new Set()
    /** A look-up is on its way; another is owed once it is answered. */
    this.lookingUp = false
    this.lookUpAgain = false
    /** List requests sent, and the latest of them whose answer is shown. */
    this.requests = 0
    this.answered = 0
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null
    /** @type {(() => void) | null} */
    this.redraw = null
    /** @type {any} */
    this.ytext = null
    this.observer = () => this.schedule()
    this.build()
    this.wireModes()
    if (initial && typeof initial === 'object') this.show(initial)
  }

  /** @param {(() => void)} redraw asks the editor to redraw its marks (authors are known now) */
  attach (redraw) { this.redraw = redraw }

  detach () {
    this.redraw = null
    if (this.ytext) this.ytext.unobserve(this.observer)
    this.ytext = null
  }

  /** @param {any} ytext the clause's Y.Text: the list is read again after it changes */
  watch (ytext) {
    if (this.ytext) this.ytext.unobserve(this.observer)
    this.ytext = ytext
    ytext.observe(this.observer)
    this.schedule()
  }

  /**
   * Who made suggestions marked `by`: from the server's list, else `self` (the person at this
   * page, or someone present; a function is asked only when the list does not know `by`, since
   * marks are labelled on every redraw), else null while the server is asked (at once, not after
   * the list's usual delay).
   *
   * @param {number} by
   * @param {Author | null | (() => Author | null)} self
   * @returns {Author | null}
   */
  author (by, self) {
    const known = this.authors.get(by) || (typeof self === 'function' ? self() : self)
    if (known) return known
    this.lookUp(by)
    return null
  }

  /**
   * Ask the server for an author a mark names and the list does not. One look-up is in flight
   * at a time: the authors first seen while it travels are asked together by the next one.
   * (A text whose marks named thousands of unknown authors used to send a request for each.)
   *
   * @param {number} by
   */
  lookUp (by) {
    if (!this.url || this.asked.has(by)) return
    this.asked.add(by)
    this.lookUpAgain = true
    if (!this.lookingUp) this.lookUpOwed()
  }

  /** Read the list until no author first seen during a read is left unasked. */
  async lookUpOwed () {
    this.lookingUp = true
    if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
    while (this.lookUpAgain) {
      this.lookUpAgain = false
      await this.load()
    }
    this.lookingUp = false
  }

  /** @param {boolean} on */
  setSuggestOnly (on) {
    this.suggestOnly = on
    if (on) this.suggesting = true
    this.showMode()
  }

  /**
   * This page's edits are all stored (acknowledged): read the list again. A read while they were
   * still on their way is answered with what the server had then, and it could miss the last of
   * them (the reviewer's own list lagged one keystroke behind the chair's).
   */
  editsStored () { this.schedule() }

  schedule () {
    if (!this.url) return
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => { this.timer = null; this.load() }, REFRESH_MS)
  }

  async load () {
    const request = ++this.requests
    try {
      const response = await fetch(this.url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      if (NO_LONGER_SHOWN.has(response.status)) return this.lostSight()
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      this.showAnswer(request, await response.json())
    } catch (err) {
      this.say(gettext('The suggestions could not be loaded.'))
    }
  }

  /**
   * The server no longer shows this clause to this person (their role was taken away, their
   * login ended, the clause is gone): the list empties and stops asking, and says why, rather
   * than "could not be loaded" after every edit the others make.
   */
  lostSight () {
    this.lost = true
    this.url = null
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.show({ suggestions: [], may_decide: false })
    this.showMode()
    this.say(gettext('You can no longer see the suggestions of this clause.'))
  }

  /**
   * Show the answer to list request number `request`, unless a later request's answer is shown
   * already: requests overlap (a look-up beside a refresh, a decision beside both), and an older
   * answer would bring back what has changed since.
   *
   * @param {number} request
   * @param {ListAnswer} data
   */
  showAnswer (request, data) {
    if (request < this.answered) return
    this.answered = request
    this.show(data)
  }

  /** @param {ListAnswer} data */
  show (data) {
    this.items = Array.isArray(data.suggestions) ? data.suggestions : []
    this.loaded = true
    this.mayDecide = data.may_decide === true
    for (const item of this.items) this.authors.set(item.by, { name: item.author, color: item.color || FALLBACK_COLOR })
    this.render()
    if (this.redraw) this.redraw()
  }

  /** @param {string} message */
  say (message) {
    if (this.status) this.status.textContent = message
  }

  /**
   * Accept or reject suggestions by id (or every pending one with ids 'all').
   *
   * @param {'accept' | 'reject'} action
   * @param {string[] | 'all'} ids
   */
  async decide (action, ids) {
    const body = new URLSearchParams()
    if (ids === 'all') body.set('all', action)
    else for (const id of ids) body.append(action, id)
    const request = ++this.requests
    // Rejecting only one's own suggestions is withdrawing them, and is said so; read before the
    // answer replaces the list.
    const withdrawing = action === 'reject' && ids !== 'all' && ids.length > 0 &&
      ids.every((id) => this.items.some((item) => item.id === id && item.mine))
    try {
      const response = await fetch(`${this.url}/decide`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRFToken': this.csrfToken, 'X-Requested-With': 'fetch', Accept: 'application/json' },
        body
      })
      const data = await response.json().catch(() => ({}))
      if (!response.ok || !data.ok) throw new Error(data.error || `HTTP ${response.status}`)
      this.showAnswer(request, data)
      this.say(action === 'accept' ? gettext('Accepted.') : withdrawing ? gettext('Withdrawn.') : gettext('Rejected.'))
      this.hidePreview()
    } catch (err) {
      this.say(gettext('The decision was not saved: %(reason)s', { reason: err instanceof Error ? err.message : String(err) }))
    }
  }

  /** @param {string[]} ids accepting these; the server renders the diff */
  async preview (ids) {
    const query = new URLSearchParams()
    for (const id of ids) query.append('accept', id)
    try {
      const response = await fetch(`${this.url}/preview?${query}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      const data = await response.json().catch(() => ({}))
      if (!response.ok || !data.ok) throw new Error(data.error || `HTTP ${response.status}`)
      if (!this.previewBox) return
      // Sanitised by the server: its one rendering path for diffs (redlines, amendment previews).
      this.previewBody.innerHTML = data.diff_html
      this.previewText.textContent = data.after
      this.previewBox.hidden = false
      this.previewBox.dataset.ids = ids.join(' ')
    } catch (err) {
      this.say(gettext('The preview could not be loaded.'))
    }
  }

  hidePreview () {
    if (this.previewBox) this.previewBox.hidden = true
  }

  // --- DOM ------------------------------------------------------------------------------------

  build () {
    const root = this.root
    if (!root) return
    this.status = document.createElement('p')
    this.status.className = 'meta'
    this.status.setAttribute('role', 'status')
    this.status.setAttribute('aria-live', 'polite')
    this.bulk = document.createElement('div')
    this.bulk.className = 'suggestion-bulk'
    this.list = document.createElement('ol')
    this.list.className = 'suggestion-list'
    this.previewBox = document.createElement('div')
    this.previewBox.className = 'suggestion-preview'
    this.previewBox.hidden = true
    this.previewBox.setAttribute('role', 'region')
    this.previewBox.setAttribute('aria-label', gettext('Preview of accepting'))
    const heading = document.createElement('h4')
    heading.textContent = gettext('If accepted: changes')
    this.previewBody = document.createElement('div')
    this.previewBody.className = 'redline suggestion-diff'
    const resultHeading = document.createElement('h4')
    resultHeading.textContent = gettext('If accepted: the clause reads')
    this.previewText = document.createElement('pre')
    this.previewText.className = 'suggestion-result'
    const confirm = button(gettext('Accept these'), () => {
      const ids = (this.previewBox?.dataset.ids || '').split(' ').filter(Boolean)
      if (ids.length) this.decide('accept', ids)
    })
    confirm.dataset.action = 'confirm-accept'
    const close = button(gettext('Close preview'), () => this.hidePreview())
    this.previewBox.append(heading, this.previewBody, resultHeading, this.previewText, confirm, close)
    root.append(this.status, this.bulk, this.list, this.previewBox)
    root.hidden = false
    this.render()
  }

  render () {
    if (!this.list || !this.bulk || !this.root) return
    this.root.dataset.count = String(this.items.length)
    this.bulk.replaceChildren()
    if (this.items.length && this.mayDecide) {
      const ids = this.items.map((item) => item.id)
      this.bulk.append(
        withAction(button(gettext('Preview accepting all'), () => this.preview(ids)), 'preview-all'),
        withAction(button(gettext('Accept all'), () => this.decide('accept', 'all')), 'accept-all'),
        withAction(button(gettext('Reject all'), () => this.decide('reject', 'all')), 'reject-all'))
    }
    const rows = this.items.map((item) => {
      const row = document.createElement('li')
      row.className = 'suggestion-item'
      row.dataset.suggestionId = item.id
      const dot = document.createElement('span')
      dot.className = 'presence-dot'
      dot.setAttribute('aria-hidden', 'true')
      dot.style.backgroundColor = item.color || FALLBACK_COLOR
      const what = document.createElement('span')
      what.className = 'suggestion-what'
      what.textContent = describe(item)
      row.append(dot, what)
      if (this.mayDecide) {
        row.append(
          withAction(button(gettext('Preview'), () => this.preview([item.id])), 'preview'),
          withAction(button(gettext('Accept'), () => this.decide('accept', [item.id])), 'accept'),
          withAction(button(gettext('Reject'), () => this.decide('reject', [item.id])), 'reject'))
      } else if (item.mine) {
        row.append(withAction(button(gettext('Withdraw'), () => this.decide('reject', [item.id])), 'reject'))
      }
      return row
    })
    if (!rows.length && !this.lost) { // once lost, the status line says why the list is empty
      const empty = document.createElement('li')
      empty.className = 'meta suggestion-none'
      empty.textContent = this.loaded || !this.url ? gettext('No pending suggestions.') : gettext('Loading suggestions…')
      rows.push(empty)
    }
    this.list.replaceChildren(...rows)
  }

  wireModes () {
    const group = this.modeSwitch
    if (!group) return
    group.hidden = false
    for (const b of /** @type {HTMLButtonElement[]} */ ([...group.querySelectorAll('button[data-mode]')])) {
      b.addEventListener('click', () => {
        if (this.suggestOnly) return
        this.suggesting = b.dataset.mode === 'suggesting'
        this.showMode()
      })
    }
    this.showMode()
  }

  showMode () {
    const group = this.modeSwitch
    if (!group) return
    for (const b of /** @type {HTMLButtonElement[]} */ ([...group.querySelectorAll('button[data-mode]')])) {
      const on = (b.dataset.mode === 'suggesting') === this.suggesting
      b.setAttribute('aria-pressed', String(on))
      // Once the clause is no longer shown (lostSight), neither mode can be chosen.
      b.disabled = this.lost || (b.dataset.mode === 'editing' && this.suggestOnly)
    }
    group.dataset.mode = this.suggesting ? 'suggesting' : 'editing'
    const host = document.getElementById('clause-editor')
    if (host) host.dataset.mode = this.suggesting ? 'suggesting' : 'editing'
  }
}

/** @param {Listed} item */
export function describe (item) {
  const name = item.author
  if (item.inserted && item.deleted) {
    return gettext('%(name)s: replace “%(old)s” with “%(new)s”', { name, old: item.deleted, new: item.inserted })
  }
  if (item.inserted) return gettext('%(name)s: insert “%(new)s”', { name, new: item.inserted })
  return gettext('%(name)s: delete “%(old)s”', { name, old: item.deleted })
}

/**
 * @param {string} text
 * @param {() => void} onClick
 */
function button (text, onClick) {
  const b = document.createElement('button')
  b.type = 'button'
  b.textContent = text
  b.addEventListener('click', onClick)
  return b
}

/**
 * @param {HTMLButtonElement} b
 * @param {string} action
 */
function withAction (b, action) {
  b.dataset.action = action
  return b
}
