// Drives the unmodified @bitrix24/b24jssdk against a webhook and prints one JSON object.
//
// Usage: node notify.mjs https://127.0.0.1:8000/rest/1/devtoken/
//    or: B24_WEBHOOK_URL=... node notify.mjs
// Over HTTPS with a private CA: NODE_EXTRA_CA_CERTS=<dir>/ca.pem node notify.mjs ...
//
// Optional: B24_RECIPIENT (user id to notify, default 2), B24_CLIENT_ID (default "jssdk"),
// B24_TAG (default "jssdk-build"): the kept notification's TAG; "<TAG>-running" is sent and then
// deleted by TAG, "<TAG>-system" tags the system notification.
// Every step's outcome (result, or the error the SDK raised) is one key of the printed object.
import { B24Hook, LoggerFactory } from '@bitrix24/b24jssdk'

const url = process.argv[2] || process.env.B24_WEBHOOK_URL
if (!url) {
  console.error('usage: node notify.mjs <webhook url>  (or set B24_WEBHOOK_URL)')
  process.exit(2)
}
const recipient = Number(process.env.B24_RECIPIENT || 2)
const clientId = process.env.B24_CLIENT_ID || 'jssdk'
const tag = process.env.B24_TAG || 'jssdk-build'

const b24 = B24Hook.fromWebhookUrl(url)
b24.setLogger(LoggerFactory.createNullLogger())

/** What a caught SDK error tells the caller. */
function describeError(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    code: error?.code ?? null,
    description: error?.description ?? error?.message ?? String(error),
    status: error?.status ?? null
  }
}

/** The payload of an AjaxResult (`{result, time}`), or the error it carries. */
function describeAjax(response) {
  if (!response.isSuccess) {
    const errors = [...response.errors.values()].map(describeError)
    return { ok: false, errors }
  }
  const data = response.getData()
  return { ok: true, result: data.result, time: data.time, status: response.getStatus() }
}

/** Run one step; a thrown error becomes part of the report instead of ending the run. */
async function step(run) {
  try {
    return await run()
  } catch (error) {
    return { ok: false, thrown: describeError(error) }
  }
}

const call = (method, params = {}) => b24.actions.v2.call.make({ method, params })
const report = { sdk_version: null }

const pkg = await import('@bitrix24/b24jssdk/package.json', { with: { type: 'json' } })
report.sdk_version = pkg.default.version
report.base_url = b24.getTargetOriginWithPath().get('v2') ?? null

report.personal = await step(async () => describeAjax(await call('im.notify.personal.add', {
  USER_ID: recipient,
  MESSAGE: 'Build #42 passed [b]green[/b]',
  TAG: tag,
  CLIENT_ID: clientId,
  ATTACH: [
    { MESSAGE: 'All 120 tests passed' },
    { LINK: { NAME: 'Open the build', LINK: 'https://ci.example.com/42' } }
  ]
})))

// A second tagged notification, to be deleted by its TAG at the end.
report.temporary = await step(async () => describeAjax(await call('im.notify.personal.add', {
  USER_ID: recipient,
  MESSAGE: 'Build #43 running',
  TAG: `${tag}-running`,
  CLIENT_ID: clientId
})))

report.system = await step(async () => describeAjax(await call('im.notify.system.add', {
  USER_ID: recipient,
  MESSAGE: 'Nightly backup done',
  TAG: `${tag}-system`,
  CLIENT_ID: clientId
})))

// The SDK's batch API, object form: the keys name the results; `halt: 0` keeps going past errors.
report.batch = await step(async () => {
  const response = await b24.actions.v2.batch.make({
    calls: {
      first: { method: 'im.notify.personal.add', params: { USER_ID: recipient, MESSAGE: 'batch one' } },
      broken: { method: 'im.notify.personal.add', params: { USER_ID: recipient } },
      clock: { method: 'server.time', params: {} },
      me: { method: 'user.current', params: {} }
    },
    options: { isHaltOnError: false, returnAjaxResult: true }
  })
  const items = {}
  for (const [key, item] of Object.entries(response.getData() ?? {})) {
    items[key] = describeAjax(item)
  }
  return {
    ok: response.isSuccess,
    keys: Object.keys(response.getData() ?? {}),
    items,
    errors: Object.fromEntries([...response.errors.entries()].map(
      ([key, error]) => [key, describeError(error)]))
  }
})

// The same batch as a plain call: what the wire answer holds (result / result_error by key).
report.batch_raw = await step(async () => describeAjax(await call('batch', {
  halt: 0,
  cmd: {
    first: `im.notify.personal.add?USER_ID=${recipient}&MESSAGE=raw%20one`,
    broken: `im.notify.personal.add?USER_ID=${recipient}`
  }
})))

report.server_time = await step(async () => describeAjax(await call('server.time')))
report.profile = await step(async () => describeAjax(await call('profile')))
report.user_current = await step(async () => describeAjax(await call('user.current')))

report.user_list = await step(async () => {
  const response = await b24.actions.v2.callList.make({ method: 'user.get', params: {}, idKey: 'ID' })
  if (!response.isSuccess) {
    return { ok: false, errors: [...response.errors.values()].map(describeError) }
  }
  return { ok: true, ids: response.getData().map((user) => Number(user.ID)) }
})

report.user_fetch = await step(async () => {
  const chunks = []
  for await (const chunk of b24.actions.v2.fetchList.make({
    method: 'user.get', params: { filter: { ACTIVE: true } }, idKey: 'ID'
  })) {
    chunks.push(chunk.map((user) => Number(user.ID)))
  }
  return { ok: true, chunks }
})

// Calls that must fail: the portal's error code has to reach the caller.
report.error_no_message = await step(async () => describeAjax(
  await call('im.notify.personal.add', { USER_ID: recipient })))
report.error_unknown_method = await step(async () => describeAjax(await call('im.notify.nosuch')))

report.delete_by_tag = await step(async () => describeAjax(
  await call('im.notify.delete', { TAG: `${tag}-running`, CLIENT_ID: clientId })))
report.delete_without_client_id = await step(async () => describeAjax(
  await call('im.notify.delete', { TAG: tag })))

report.stats = (() => {
  const stats = b24.getHttpClient('v2').getStats()
  return {
    totalRequests: stats.totalRequests,
    successfulRequests: stats.successfulRequests,
    failedRequests: stats.failedRequests
  }
})()

process.stdout.write(JSON.stringify(report) + '\n')
