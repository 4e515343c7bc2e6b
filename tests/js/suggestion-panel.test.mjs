import { mock, test } from 'node:test'
import assert from 'node:assert/strict'
import { SuggestionPanel } from '../../static/src/collab/suggestion_panel.js'

const PIOTR = 5
const SAM = 8

/** @param {number} by @param {string} author @param {string} color */
function listed (by, author, color) {
  return { id: `s-${by}`, by, author, color, kind: 'insert', inserted: 'new ', deleted: '', start: 0, mine: false }
}

/**
 * A stand-in for fetch: every request waits until the test answers it.
 *
 * @returns {{requests: {url: string, answer: (data: any) => void}[], restore: () => void}}
 */
function heldFetch () {
  const requests = []
  const original = globalThis.fetch
  globalThis.fetch = (url) => new Promise((resolve) => {
    requests.push({ url: String(url), answer: (data) => resolve({ ok: true, status: 200, json: async () => data }) })
  })
  return { requests, restore: () => { globalThis.fetch = original } }
}

/**
 * Run `body` with fetch replaced by heldFetch(), and fetch put back whatever happens.
 *
 * @param {(fetched: ReturnType<typeof heldFetch>) => any} body
 */
async function withHeldFetch (body) {
  const fetched = heldFetch()
  try {
    await body(fetched)
  } finally {
    fetched.restore()
  }
}

/** A headless panel (no DOM: no list nor switch to draw), and a promise of its next redraw. */
function panel (initial = null) {
  const made = new SuggestionPanel({
    root: null, modeSwitch: null, url: '/codes/c/clauses/u/suggestions', csrfToken: 't', mayDecide: true, suggestOnly: false, initial
  })
  let redrawn = () => {}
  made.attach(() => redrawn())
  return { panel: made, nextRedraw: () => new Promise((resolve) => { redrawn = resolve }) }
}

test('the list the page carries names its authors from the start, without asking the server', () => withHeldFetch(async (fetched) => {
  const { panel: shown } = panel({ suggestions: [listed(PIOTR, 'Piotr Provider', '#00677d')], may_decide: true })
  assert.deepEqual(shown.author(PIOTR, null), { name: 'Piotr Provider', color: '#00677d' })
  assert.equal(shown.items.length, 1)
  assert.equal(shown.loaded, true)
  assert.equal(fetched.requests.length, 0)
}))

test('an author first seen in a mark is unnamed, asked of the server at once and once, then named', () => withHeldFetch(async (fetched) => {
  const { panel: shown, nextRedraw } = panel({ suggestions: [], may_decide: true })
  // Unnamed (the marks then say what the suggestion is, not who made it), never misnamed.
  assert.equal(shown.author(SAM, null), null)
  // Asked at once (not after the list's refresh delay), and only once however often it is drawn.
  assert.equal(fetched.requests.length, 1)
  assert.equal(shown.author(SAM, null), null)
  assert.equal(fetched.requests.length, 1)
  const redraw = nextRedraw()
  fetched.requests[0].answer({ suggestions: [listed(SAM, 'Sam Second', '#8a3ffc')], may_decide: true })
  await redraw
  assert.deepEqual(shown.author(SAM, null), { name: 'Sam Second', color: '#8a3ffc' })
  // The person at the page is known without asking.
  assert.deepEqual(shown.author(99, { name: 'Me', color: '#123456' }), { name: 'Me', color: '#123456' })
  assert.equal(fetched.requests.length, 1)
}))

test('an older answer arriving after a newer one is not shown', () => withHeldFetch(async (fetched) => {
  const { panel: shown, nextRedraw } = panel({ suggestions: [], may_decide: true })
  const older = shown.load()
  const newer = shown.load()
  const redraw = nextRedraw()
  fetched.requests[1].answer({ suggestions: [listed(SAM, 'Sam Second', '#8a3ffc')], may_decide: true })
  await redraw
  fetched.requests[0].answer({ suggestions: [], may_decide: true })
  await Promise.all([older, newer])
  assert.deepEqual(shown.items.map((item) => item.by), [SAM])
}))

test('once this page\'s edits are all stored, the list is read again (a read while they travelled may miss some)', () => withHeldFetch((fetched) => {
  mock.timers.enable({ apis: ['setTimeout'] })
  try {
    const { panel: shown } = panel({ suggestions: [], may_decide: true })
    shown.editsStored()
    assert.equal(fetched.requests.length, 0, 'read after the refresh delay, not at once')
    mock.timers.tick(300)
    assert.equal(fetched.requests.length, 1)
    assert.equal(fetched.requests[0].url, '/codes/c/clauses/u/suggestions')
  } finally {
    mock.timers.reset()
  }
}))

test('marks naming many unknown authors are looked up one request at a time, not one request each', () => withHeldFetch(async (fetched) => {
  const { panel: shown, nextRedraw } = panel({ suggestions: [], may_decide: true })
  for (let by = 1000; by < 1500; by++) assert.equal(shown.author(by, null), null)
  assert.equal(fetched.requests.length, 1, 'one look-up in flight for the first unknown author')
  let redraw = nextRedraw()
  fetched.requests[0].answer({ suggestions: [listed(1000, 'First Author', '#8a3ffc')], may_decide: true })
  await redraw
  // The 499 authors first seen while it travelled are asked by one more request, not 499.
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(fetched.requests.length, 2)
  redraw = nextRedraw()
  fetched.requests[1].answer({ suggestions: [listed(1001, 'Second Author', '#00677d')], may_decide: true })
  await redraw
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(fetched.requests.length, 2, 'nothing is asked twice')
  assert.deepEqual(shown.author(1001, null), { name: 'Second Author', color: '#00677d' })
  assert.equal(shown.author(1499, null), null)
  assert.equal(fetched.requests.length, 2)
}))

test('rejecting only one\'s own suggestions is said as withdrawing them; rejecting anyone else\'s is not', () => withHeldFetch(async (fetched) => {
  const own = { ...listed(PIOTR, 'Piotr Provider', '#00677d'), id: 's-own', mine: true }
  const other = listed(SAM, 'Sam Second', '#8a3ffc')
  const said = []
  const { panel: shown } = panel({ suggestions: [own, other], may_decide: true })
  shown.status = { set textContent (message) { said.push(message) } }
  const decisions = [
    shown.decide('reject', ['s-own']),
    shown.decide('reject', ['s-own', other.id]),
    shown.decide('reject', [other.id]),
    shown.decide('reject', 'all')
  ]
  assert.equal(fetched.requests.length, 4)
  for (const request of fetched.requests) request.answer({ ok: true, suggestions: [own, other], may_decide: true })
  await Promise.all(decisions)
  assert.deepEqual(said, ['Withdrawn.', 'Rejected.', 'Rejected.', 'Rejected.'])
}))

test('a list the server no longer shows (the role was taken away) empties and stops asking', async () => {
  const original = globalThis.fetch
  const asked = []
  globalThis.fetch = async (url) => { asked.push(String(url)); return { ok: false, status: 403, json: async () => ({}) } }
  try {
    const { panel: shown } = panel({ suggestions: [listed(PIOTR, 'Piotr Provider', '#00677d')], may_decide: true })
    await shown.load()
    assert.equal(asked.length, 1)
    assert.deepEqual(shown.items, [])
    assert.equal(shown.mayDecide, false)
    shown.schedule()
    shown.lookUp(SAM)
    assert.equal(shown.timer, null)
    assert.equal(asked.length, 1)
  } finally {
    globalThis.fetch = original
  }
})
