import { launchChromium, spawnDaemon, publishEvent } from './support.mjs';
const d = await spawnDaemon();
const b = await launchChromium();
const p = await b.newPage();
const log = (...a) => console.log(Date.now() % 100000, ...a);
let n = 0; let gate; const gateP = new Promise(r => gate = r); let pageSide;
await p.routeWebSocket(/\/ws(\?|$)/, async (ws) => {
  n += 1; const k = n;
  log('route', k, ws.url());
  if (k === 2) { log('holding'); await gateP; log('released'); }
  const server = ws.connectToServer();
  pageSide = ws;
});
p.on('console', m => log('page:', m.text()));
await p.goto(d.consoleUrl);
await p.locator('#conn-status[data-state="connected"]').waitFor();
log('connected 1');
await pageSide.close({ code: 1012, reason: 'test' });
await p.locator('#conn-status[data-state="reconnecting"]').waitFor({timeout: 5000});
log('reconnecting visible');
await new Promise(r => setTimeout(r, 1500));
log('state during hold:', await p.locator('#conn-status').getAttribute('data-state'));
await publishEvent(d.mqttUrl, 'xs-d0009');
gate();
await p.locator('[data-device-id="xs-d0009"]').waitFor({timeout: 10000});
log('row appeared; state', await p.locator('#conn-status').getAttribute('data-state'), 'seq', await p.locator('#incidents').getAttribute('data-seq'));
await b.close(); console.log(await d.stop());
