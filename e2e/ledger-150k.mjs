// The ledger page against 150,000 elders: the demo district plus made-up elders from a
// registry file, then the times the server takes for the pages the ledger asks for (the
// first page, a search, a page deep in the list, a station's elders) and the time Chromium
// takes from opening /ledger to the first page shown. Not a test (node --test leaves it
// out by its name): a measurement, run by hand after `cargo build -p anxind`:
//   ANXIND_BIN=target/debug/anxind node e2e/ledger-150k.mjs [elders]

import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium, spawnDaemon } from './support.mjs';

const TOTAL = Number(process.argv[2] ?? 150_000);
const DEMO_ELDERS = 320;
const SURNAMES = '王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗';
const GIVEN = ['秀英', '桂兰', '德明', '志强', '凤英', '建国', '玉梅', '金花'];

function registry(n) {
  const elders = [];
  for (let i = 0; i < n; i += 1) {
    elders.push({
      id: `big-e${String(i).padStart(6, '0')}`,
      name: `${SURNAMES[i % SURNAMES.length]}${GIVEN[Math.floor(i / SURNAMES.length) % GIVEN.length]}`,
      address: `昆明市西山区测试街道 ${1 + (i % 400)} 号 ${1 + (i % 6)} 单元 ${100 + (i % 600)} 室`,
      home: { lat: 24.95 + (i % 1000) / 10000, lon: 102.6 + Math.floor(i / 1000) / 10000 },
      phone: `139${String(i).padStart(8, '0')}`,
      notes: '',
      profile: { station_id: `xs-s0${1 + (i % 8)}` },
    });
  }
  return { elders, devices: [], stations: [], responders: [] };
}

async function timed(label, fn) {
  const start = performance.now();
  const out = await fn();
  console.log(`${label}: ${(performance.now() - start).toFixed(0)} ms`);
  return out;
}

const dir = await mkdtemp(join(tmpdir(), 'anxin-150k-'));
const file = join(dir, 'registry.json');
await writeFile(file, JSON.stringify(registry(TOTAL - DEMO_ELDERS)));
const daemon = await timed(`anxind start with ${TOTAL} elders`, () =>
  spawnDaemon({ readyTimeoutMs: 600_000, extraArgs: ['--registry', file] }));
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(daemon.consoleUrl);
  await page.locator('#signin-user').fill('admin');
  await page.locator('#signin-password').fill('anxin-demo');
  await page.locator('#signin-submit').click();
  await page.waitForURL(/\/ledger/);
  await page.locator('#ledger-table[data-loaded="true"]').waitFor({ timeout: 120_000 });
  console.log(`first page: ${await page.locator('#ledger-status').textContent()}`);
  // The server's side, from the page (its cookie), each asked three times.
  for (const [label, query] of [
    ['first page', 'offset=0&limit=50'],
    ['search "德明"', `search=${encodeURIComponent('德明')}&limit=50`],
    ['search "e149"', 'search=e149&limit=50'],
    ['page at offset 140,000', 'offset=140000&limit=50'],
    ['station xs-s03', 'station=xs-s03&limit=50'],
  ]) {
    const ms = await page.evaluate(async (q) => {
      const times = [];
      for (let i = 0; i < 3; i += 1) {
        const start = performance.now();
        const res = await fetch(`/api/v1/admin/elders?${q}`);
        await res.json();
        times.push(Math.round(performance.now() - start));
      }
      return times;
    }, query);
    console.log(`GET elders ${label}: ${ms.join(', ')} ms`);
  }
  const opened = await timed('reload /ledger to the first page shown', async () => {
    await page.reload();
    await page.locator('#ledger-table[data-loaded="true"]').waitFor({ timeout: 120_000 });
  });
  void opened;
  await timed('search typed to its page shown', async () => {
    await page.locator('#ledger-search').fill('big-e123456');
    await page.locator('#ledger-status', { hasText: '共 1 条' }).waitFor({ timeout: 120_000 });
  });
} finally {
  await browser.close();
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
}
