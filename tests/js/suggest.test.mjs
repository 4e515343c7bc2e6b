import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { SUGGEST_DELETE, SUGGEST_INSERT, acceptedText, planSuggestion, spansOf, suggestionLabels } from '../../static/src/collab/suggest.js'

const ME = 7
const OTHER = 8

/** A clause with `text`, and `apply` to run a plan's Y operations on it. */
function clause (text) {
  const doc = new Y.Doc()
  const ytext = doc.getText('body')
  ytext.insert(0, text)
  return {
    ytext,
    apply (plan) {
      doc.transact(() => {
        for (const op of plan.yOps) {
          if (op.kind === 'delete') ytext.delete(op.at, op.length)
          else if (op.kind === 'format') ytext.format(op.at, op.length, op.attributes)
          else ytext.insert(op.at, op.text, op.attributes)
        }
      })
    }
  }
}

const accepted = (ytext) => acceptedText(ytext.toString(), spansOf(ytext))

test('typing in Suggesting mode inserts marked text and leaves the accepted text', () => {
  const c = clause('Publish a summary.')
  const at = 'Publish a '.length
  const plan = planSuggestion(spansOf(c.ytext), [{ fromA: at, toA: at, inserted: 'short ' }], ME)
  c.apply(plan)
  assert.equal(c.ytext.toString(), 'Publish a short summary.')
  assert.equal(accepted(c.ytext), 'Publish a summary.')
  assert.deepEqual(plan.editor, [{ from: at, insert: 'short ' }])
  const [, mark] = spansOf(c.ytext)
  assert.equal(mark.insert.by, ME)
  // Typing on continues the same suggestion.
  const more = planSuggestion(spansOf(c.ytext), [{ fromA: at + 6, toA: at + 6, inserted: 'x' }], ME)
  assert.equal(more.yOps[0].attributes[SUGGEST_INSERT].id, mark.insert.id)
})

test('deleting accepted text marks it; the editor keeps it; deleting own suggested text removes it', () => {
  const c = clause('Publish a summary.')
  const plan = planSuggestion(spansOf(c.ytext), [{ fromA: 8, toA: 10, inserted: '' }], ME)
  assert.deepEqual(plan.editor, [])
  c.apply(plan)
  assert.equal(c.ytext.toString(), 'Publish a summary.')
  assert.equal(spansOf(c.ytext)[1].del.by, ME)
  c.apply(planSuggestion(spansOf(c.ytext), [{ fromA: 0, toA: 0, inserted: 'Do ' }], ME))
  const withdraw = planSuggestion(spansOf(c.ytext), [{ fromA: 0, toA: 3, inserted: '' }], ME)
  assert.deepEqual(withdraw.editor, [{ from: 0, to: 3 }])
  c.apply(withdraw)
  assert.equal(c.ytext.toString(), 'Publish a summary.')
})

test('a replacement marks the old words and inserts the new after them', () => {
  const c = clause('Publish a summary.')
  const from = 'Publish a '.length
  const to = from + 'summary'.length
  const plan = planSuggestion(spansOf(c.ytext), [{ fromA: from, toA: to, inserted: 'list' }], ME)
  c.apply(plan)
  assert.equal(c.ytext.toString(), 'Publish a summarylist.')
  assert.equal(accepted(c.ytext), 'Publish a summary.')
  const spans = spansOf(c.ytext)
  assert.deepEqual(spans.map((s) => [c.ytext.toString().slice(s.from, s.to), Boolean(s.insert), Boolean(s.del)]),
    [['Publish a ', false, false], ['summary', false, true], ['list', true, false], ['.', false, false]])
})

test("another person's suggestion is left alone", () => {
  const c = clause('Publish a summary.')
  c.ytext.insert(0, 'Do ', { [SUGGEST_INSERT]: { id: 'o1', by: OTHER }, [SUGGEST_DELETE]: null })
  const plan = planSuggestion(spansOf(c.ytext), [{ fromA: 0, toA: 3, inserted: '' }], ME)
  assert.deepEqual(plan, { editor: [], yOps: [] })
})

test('ranges of the accepted text skip the suggested insertions the editor shows', async () => {
  const { acceptedRangesToEditor } = await import('../../static/src/collab/suggest.js')
  const c = clause('abcdef')
  c.ytext.insert(3, 'XY', { [SUGGEST_INSERT]: { id: 's', by: ME } })
  const spans = spansOf(c.ytext) // abc XY def
  assert.deepEqual(acceptedRangesToEditor([{ from: 0, to: 2, n: 1 }, { from: 2, to: 6, n: 2 }], spans),
    [{ from: 0, to: 2, n: 1 }, { from: 2, to: 3, n: 2 }, { from: 5, to: 8, n: 2 }])
})

test('a suggestion is named by its author once known, and says only what it is before', () => {
  const piotr = { name: 'Piotr Provider', color: '#00677d' }
  assert.deepEqual(suggestionLabels('insert', piotr), {
    title: 'Suggested insertion by Piotr Provider', who: 'Insertion by Piotr Provider', group: 'Suggestion by Piotr Provider'
  })
  assert.deepEqual(suggestionLabels('delete', piotr), {
    title: 'Suggested deletion by Piotr Provider', who: 'Deletion by Piotr Provider', group: 'Suggestion by Piotr Provider'
  })
  assert.deepEqual(suggestionLabels('insert', null), { title: 'Suggested insertion', who: 'Insertion', group: 'Suggestion' })
  assert.deepEqual(suggestionLabels('delete', null), { title: 'Suggested deletion', who: 'Deletion', group: 'Suggestion' })
})
