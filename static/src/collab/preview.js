/**
 * Live preview of a clause through the server's Markdown renderer (one rendering path: the
 * server renders and sanitises; the browser only inserts the result).
 */

/**
 * @typedef {object} PreviewOptions
 * @property {string} url where to POST {text}; answers {html}
 * @property {string} csrfToken sent as the X-CSRFToken header
 * @property {(html: string) => void} onHtml called with the server's (sanitised) HTML
 * @property {(error: Error) => void} [onError] called when a request fails
 * @property {number} [delay] debounce in milliseconds (300)
 * @property {typeof fetch} [fetchImpl] injectable for tests
 */

/**
 * Build a debounced previewer: call `schedule(text)` on every change; after `delay` ms without
 * a change it posts the latest text. Only the newest request's answer is shown: an older one
 * that arrives late is dropped, and an in-flight request is aborted when a newer one starts.
 *
 * @param {PreviewOptions} options
 * @returns {{schedule: (text: string) => void, flush: () => Promise<void>, cancel: () => void}}
 */
export function createPreviewer ({ url, csrfToken, onHtml, onError = () => {}, delay = 300, fetchImpl = globalThis.fetch }) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null
  /** @type {string | null} */
  let queuedText = null
  let generation = 0
  /** @type {AbortController | null} */
  let inFlight = null

  /**
   * Post `text` now and show the answer if it is still the newest.
   * @param {string} text
   * @returns {Promise<void>}
   */
  async function render (text) {
    const mine = ++generation
    if (inFlight) inFlight.abort()
    const controller = new AbortController()
    inFlight = controller
    try {
      const response = await fetchImpl(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRFToken': csrfToken },
        body: JSON.stringify({ text }),
        signal: controller.signal
      })
      if (!response.ok) throw new Error(`preview failed: HTTP ${response.status}`)
      const data = await response.json()
      if (!data || typeof data.html !== 'string') throw new Error('preview failed: no html in the answer')
      if (mine === generation) onHtml(data.html)
    } catch (err) {
      // An abort means a newer request replaced this one: not an error worth showing.
      if (mine === generation && !(err instanceof Error && err.name === 'AbortError')) {
        onError(err instanceof Error ? err : new Error(String(err)))
      }
    } finally {
      if (inFlight === controller) inFlight = null
    }
  }

  return {
    schedule (text) {
      queuedText = text
      if (timer !== null) clearTimeout(timer)
      timer = setTimeout(() => {
        timer = null
        const next = queuedText
        queuedText = null
        if (next !== null) render(next)
      }, delay)
    },
    /** Post the queued text now (if any) and wait for its answer. */
    async flush () {
      if (timer !== null) clearTimeout(timer)
      timer = null
      const next = queuedText
      queuedText = null
      if (next !== null) await render(next)
    },
    cancel () {
      if (timer !== null) clearTimeout(timer)
      timer = null
      queuedText = null
      generation++
      if (inFlight) inFlight.abort()
    }
  }
}
