import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPreviewer } from '../../static/src/collab/preview.js'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A fetch stand-in that records requests and answers {html} after `delayFor(text)` ms.
 * @param {(text: string) => number} delayFor
 */
function fakeFetch (delayFor = () => 0, status = 200) {
  const calls = []
  const impl = async (url, init) => {
    const { text } = JSON.parse(init.body)
    calls.push({ url, init, text })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(resolve, delayFor(text))
      init.signal.addEventListener('abort', () => {
        clearTimeout(timer)
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))
      })
    })
    return { ok: status === 200, status, json: async () => ({ html: `<p>${text}</p>` }) }
  }
  return { impl, calls }
}

test('changes are debounced into one POST of the latest text, with the CSRF token', async () => {
  const { impl, calls } = fakeFetch()
  const shown = []
  const previewer = createPreviewer({ url: '/clauses/c1/preview', csrfToken: 't0k', onHtml: (h) => shown.push(h), delay: 30, fetchImpl: impl })
  previewer.schedule('S')
  previewer.schedule('Sh')
  previewer.schedule('Shall')
  await sleep(10)
  assert.equal(calls.length, 0, 'nothing is sent before the pause')
  await sleep(80)
  assert.equal(calls.length, 1)
  assert.equal(calls[0].url, '/clauses/c1/preview')
  assert.equal(calls[0].init.method, 'POST')
  assert.equal(calls[0].init.headers['X-CSRFToken'], 't0k')
  assert.equal(calls[0].init.headers['Content-Type'], 'application/json')
  assert.deepEqual(shown, ['<p>Shall</p>'])
})

test('a slow older answer never overwrites a newer one', async () => {
  const { impl, calls } = fakeFetch((text) => (text === 'old' ? 60 : 5))
  const shown = []
  const errors = []
  const previewer = createPreviewer({ url: '/p', csrfToken: '', onHtml: (h) => shown.push(h), onError: (e) => errors.push(e), delay: 1, fetchImpl: impl })
  previewer.schedule('old')
  await sleep(10) // 'old' is in flight
  previewer.schedule('new')
  await sleep(100)
  assert.deepEqual(calls.map((c) => c.text), ['old', 'new'])
  assert.deepEqual(shown, ['<p>new</p>'])
  assert.deepEqual(errors, [], 'the aborted request is not an error')
})

test('a failing render is reported and shows nothing', async () => {
  const { impl } = fakeFetch(() => 0, 500)
  const shown = []
  const errors = []
  const previewer = createPreviewer({ url: '/p', csrfToken: '', onHtml: (h) => shown.push(h), onError: (e) => errors.push(e.message), fetchImpl: impl })
  previewer.schedule('text')
  await previewer.flush()
  assert.deepEqual(shown, [])
  assert.deepEqual(errors, ['preview failed: HTTP 500'])
})
