// Drives the unmodified @bitrix24/b24jssdk over stubbed CRM methods and prints one JSON object.
//
// Usage: NODE_EXTRA_CA_CERTS=<dir>/ca.pem node stubs.mjs https://127.0.0.1:8000/rest/1/devtoken/
// The portal must stub crm.deal.list (a list of deals) and crm.deal.get.
import { B24Hook, LoggerFactory } from '@bitrix24/b24jssdk'

const b24 = B24Hook.fromWebhookUrl(process.argv[2])
b24.setLogger(LoggerFactory.createNullLogger())

function errorsOf (response) {
  return [...response.errors.values()].map((error) => ({
    code: error?.code ?? null, description: error?.description ?? error?.message ?? String(error)
  }))
}

const report = {}

// callList pages by ID: order ID ASC, filter >ID the last id seen, start -1, until a short page.
const all = await b24.actions.v2.callList.make({
  method: 'crm.deal.list', params: { select: ['ID', 'TITLE'] }, idKey: 'ID'
})
report.call_list = all.isSuccess
  ? { ok: true, ids: all.getData().map((deal) => Number(deal.ID)), keys: Object.keys(all.getData()[0]) }
  : { ok: false, errors: errorsOf(all) }

const won = await b24.actions.v2.callList.make({
  method: 'crm.deal.list', params: { filter: { STAGE_ID: 'WON' } }, idKey: 'ID'
})
report.call_list_filtered = won.isSuccess
  ? { ok: true, ids: won.getData().map((deal) => Number(deal.ID)) }
  : { ok: false, errors: errorsOf(won) }

const chunks = []
for await (const chunk of b24.actions.v2.fetchList.make({
  method: 'crm.deal.list', params: { filter: { '>=OPPORTUNITY': 10000 } }, idKey: 'ID'
})) {
  chunks.push(chunk.map((deal) => Number(deal.ID)))
}
report.fetch_list = chunks

const deal = await b24.actions.v2.call.make({ method: 'crm.deal.get', params: { ID: 7 } })
report.deal = deal.isSuccess ? deal.getData().result : { errors: errorsOf(deal) }

console.log(JSON.stringify(report))
