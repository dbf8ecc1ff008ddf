// Drives the stan-broker web console in headless Chromium.
//
// Starts target/debug/stan-broker (free ports, monitoring on), seeds it with
// target/debug/console_seed (a few channels with known payloads, 1,000 small channels, and a
// stalled durable subscription), then checks the pages as a user sees them. Screenshots go to
// screenshots/ (their paths are printed). Run through ./run.sh.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const BROKER = join(ROOT, 'target/debug/stan-broker');
const SEED = join(ROOT, 'target/debug/console_seed');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = join(HERE, 'screenshots');
const LOAD_CHANNELS = 1000;
const ORDERS = 30;

let broker; let seed; let context; let userDir;
let adminBroker; let adminSeed; let adminMonitorUrl = '';
const ADMIN_TOKEN = 'console-test-token';
let monitorUrl = '';
const consoleErrors = [];

// Resolves with the first stdout line of `child` that matches `re` (rejects on exit/timeout).
function waitForLine(child, re, what, ms = 30000) {
  return new Promise((resolveLine, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    const onData = (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        const m = line.match(re);
        if (m) { clearTimeout(timer); child.stdout.off('data', onData); resolveLine(m); return; }
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what}: process exited (${code})`)); });
  });
}

function seedLines() {
  const lines = [];
  for (let i = 1; i <= ORDERS; i++) lines.push(`orders\t{"order":${i},"item":"widget-${i}","qty":${i % 7 + 1}}`);
  for (let i = 1; i <= 5; i++) lines.push(`events.text\thello event ${i}`);
  lines.push('bin.data\thex:00ff10203040506070deadbeef');
  lines.push('bin.data\thex:0102030405');
  lines.push('bin.data\thex:cafebabe');
  lines.push('big.blob\trepeat:100000:abcdefgh');
  for (let i = 0; i < LOAD_CHANNELS; i++) lines.push(`load.${String(i).padStart(4, '0')}\tm${i}`);
  return lines.join('\n') + '\n';
}

// A page that records console errors and uncaught exceptions into `sink`.
async function newPage(sink) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') sink.push(`${m.text()} (${page.url()})`); });
  page.on('pageerror', (e) => sink.push(`uncaught: ${e.message} (${page.url()})`));
  return page;
}

async function shot(page, name, t, fullPage = true) {
  const path = join(SHOTS, name);
  await page.screenshot({ path, fullPage });
  t.diagnostic(`screenshot: ${path}`);
  return path;
}

// Starts the broker with extra flags; resolves with the process and its ready line.
async function startBroker(extra) {
  const proc = spawn(BROKER, ['-p', '0', '-m', '0', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stderr.resume();
  const m = await waitForLine(proc, /^STAN_BROKER_READY (.*)$/, 'the broker ready line');
  return { proc, ready: JSON.parse(m[1]) };
}

// Runs the seed program against `natsUrl`; resolves once it has published `lines`.
async function startSeed(natsUrl, lines) {
  const proc = spawn(SEED, [natsUrl], { stdio: ['pipe', 'pipe', 'inherit'] });
  const seeded = waitForLine(proc, /^seeded (\d+)$/, 'the seed program', 60000);
  proc.stdin.end(lines);
  await seeded;
  return proc;
}

async function stop(p) {
  if (p && p.exitCode === null && p.signalCode === null) {
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
  }
}

before(async () => {
  let ready;
  ({ proc: broker, ready } = await startBroker(['-mc', '0']));
  monitorUrl = ready.monitoring[0];
  seed = await startSeed(ready.nats[0], seedLines());
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  userDir = mkdtempSync(join(tmpdir(), 'console-test-chromium-'));
  context = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  if (context) await context.close();
  if (userDir) rmSync(userDir, { recursive: true, force: true });
  for (const p of [seed, broker, adminSeed, adminBroker]) await stop(p);
});

test('/console redirects to /console/', async () => {
  const page = await newPage(consoleErrors);
  const r = await page.goto(`${monitorUrl}/console`);
  assert.equal(new URL(page.url()).pathname, '/console/');
  assert.equal(r.status(), 200);
  await page.close();
});

test('overview shows the server, the store and live rates', async (t) => {
  const page = await newPage(consoleErrors);
  const started = performance.now();
  await page.goto(`${monitorUrl}/console/`);
  const cards = page.locator('#overview-cards');
  const channels = String(4 + LOAD_CHANNELS).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  await cards.getByText(channels, { exact: true }).waitFor();
  const elapsed = performance.now() - started;
  t.diagnostic(`overview with ${4 + LOAD_CHANNELS} channels loaded in ${elapsed.toFixed(0)} ms (reported, not asserted)`);
  const text = await cards.innerText();
  assert.match(text, /Cluster ID\s+test-cluster/);
  assert.match(text, /Store\s+MEMORY\n/);
  const total = (ORDERS + 5 + 3 + 1 + LOAD_CHANNELS).toLocaleString('en-US');
  assert.match(text, new RegExp(`Stored\\s+${total} msgs, `), 'every seeded message is stored');
  assert.match(text, /Clients\s+1\b/);
  assert.match(text, /Subscriptions\s+1\b/);
  // The rate needs two samples; the sparkline is drawn from the second one on.
  await page.locator('.legend .in').filter({ hasText: /^in [\d.,]+ msgs\/s$/ }).waitFor();
  await page.locator('svg.spark path.in').waitFor({ state: 'attached' });
  await shot(page, 'overview.png', t);
  await page.close();
});

test('channels table shows counts, filters and sorts', async (t) => {
  const page = await newPage(consoleErrors);
  const started = performance.now();
  await page.goto(`${monitorUrl}/console/#/channels`);
  const table = page.locator('table.channels');
  await table.locator('tbody tr').nth(4 + LOAD_CHANNELS - 1).waitFor();
  t.diagnostic(`channels table with ${4 + LOAD_CHANNELS} rows rendered in ${(performance.now() - started).toFixed(0)} ms (reported, not asserted)`);
  const row = (name) => table.locator('tbody tr').filter({ has: page.getByRole('link', { name, exact: true }) });
  const cells = async (name) => (await row(name).locator('td').allInnerTexts()).map((s) => s.trim());
  const orders = await cells('orders');
  assert.equal(orders[0], 'orders');
  assert.equal(orders[1], String(ORDERS), 'messages');
  assert.equal(orders[3], '1', 'first seq');
  assert.equal(orders[4], String(ORDERS), 'last seq');
  assert.equal(orders[5], '1', 'subscriptions');
  assert.equal((await cells('events.text'))[1], '5');
  assert.equal((await cells('bin.data'))[1], '3');
  assert.equal((await cells('load.0999'))[1], '1');

  await page.getByRole('searchbox', { name: 'filter' }).fill('bin');
  await page.getByText(`1 of ${4 + LOAD_CHANNELS}`).waitFor();
  assert.equal(await table.locator('tbody tr').count(), 1);
  await page.getByRole('searchbox', { name: 'filter' }).fill('');

  // Messages, descending: the fullest channel first.
  await table.locator('th', { hasText: 'Messages' }).click();
  assert.equal(await table.locator('th', { hasText: 'Messages' }).getAttribute('class'), 'sortable num sorted-desc');
  assert.equal((await table.locator('tbody tr').first().locator('td').first().innerText()).trim(), 'orders');
  await page.getByRole('searchbox', { name: 'filter' }).fill('o');
  await shot(page, 'channels.png', t);
  await page.close();
});

test('channel page: subscriptions and the message browser', async (t) => {
  const page = await newPage(consoleErrors);
  await page.goto(`${monitorUrl}/console/#/channels`);
  await page.getByRole('link', { name: 'orders', exact: true }).click();
  await page.locator('h1', { hasText: 'orders' }).waitFor();

  // The seed's durable holds two unacked messages with max in flight 2: stalled.
  const sub = page.locator('table.subs tbody tr').first();
  await sub.waitFor();
  const subText = await sub.innerText();
  assert.match(subText, /console-seed/);
  assert.match(subText, /durable audit/);
  assert.match(subText, /stalled/);

  const list = page.locator('#msg-list table.msgs tbody tr');
  await list.first().waitFor();
  assert.equal(await list.count(), 20);
  assert.equal(await list.first().getAttribute('data-seq'), '1');
  assert.equal((await list.first().locator('pre.payload').innerText()), '{"order":1,"item":"widget-1","qty":2}');

  await page.getByRole('button', { name: 'JSON' }).click();
  assert.match(await list.first().locator('pre.payload').innerText(), /^\{\n {2}"order": 1,\n {2}"item": "widget-1",/);
  await shot(page, 'channel-orders.png', t);
  await shot(page, 'console.png', t, false); // the one in docs/img/

  await page.locator('#msg-next').click();
  await page.locator('#msg-list tr[data-seq="21"]').waitFor();
  assert.equal(await list.count(), ORDERS - 20);
  assert.ok(await page.locator('#msg-next').isDisabled(), 'no page after the last');
  await page.locator('#msg-prev').click();
  await page.locator('#msg-list tr[data-seq="1"]').waitFor();

  await page.getByRole('spinbutton', { name: 'start sequence' }).fill('25');
  await page.locator('#msg-go-seq').click();
  await page.locator('#msg-list tr[data-seq="25"]').waitFor();
  assert.equal(await list.first().getAttribute('data-seq'), '25');

  // A time after every message: an empty page that says what is stored.
  await page.getByLabel('start time').fill('2100-01-01T00:00:00');
  await page.locator('#msg-go-time').click();
  await page.getByText(`(stored: 1–${ORDERS})`, { exact: false }).waitFor();
  await page.close();
});

test('message browser: hex view of binary payloads, truncated large payloads', async (t) => {
  const page = await newPage(consoleErrors);
  await page.goto(`${monitorUrl}/console/#/channel/bin.data`);
  const first = page.locator('#msg-list tr[data-seq="1"] pre.payload');
  await first.waitFor();
  await page.getByRole('button', { name: 'hex' }).click();
  assert.match(await first.innerText(), /^00000000 {2}00 ff 10 20 30 40 50 60 70 de ad be ef/);

  await page.goto(`${monitorUrl}/console/#/channel/big.blob`);
  const note = page.locator('#msg-list tr[data-seq="1"] .note');
  await note.waitFor();
  assert.equal(await note.innerText(), 'truncated: showing the first 64.0 KiB of 97.7 KiB');
  assert.equal((await page.locator('#msg-list tr[data-seq="1"] pre.payload').innerText()).length, 64 * 1024);
  await shot(page, 'channel-big-blob.png', t);
  await page.close();
});

test('clients page lists the client with its subscription', async (t) => {
  const page = await newPage(consoleErrors);
  await page.goto(`${monitorUrl}/console/#/clients`);
  const row = page.locator('table.clients tbody tr', { hasText: 'console-seed' });
  await row.waitFor();
  const text = await row.innerText();
  assert.match(text, /_INBOX\./, 'heartbeat inbox');
  assert.match(text, /\banswered\b/, 'heartbeat state of a live client');
  assert.doesNotMatch(text, /unanswered/);
  assert.match(text, /orders: durable audit, last sent 2, pending 2/);
  await shot(page, 'clients.png', t);
  await page.close();
});

test('an unknown channel shows the server\'s error message', async () => {
  const errors = []; // a 404 is logged by the browser as a failed resource: expected here
  const page = await newPage(errors);
  await page.goto(`${monitorUrl}/console/#/channel/no.such.channel`);
  await page.getByRole('alert').filter({ hasText: 'channel "no.such.channel" not found' }).waitFor();
  await page.getByRole('alert').filter({ hasText: 'Channel no.such.channel not found' }).waitFor();
  assert.ok(errors.every((e) => e.includes('404')), errors.join('\n'));
  await page.close();
});

test('admin actions: off by default, with the token delete a durable then the channel', async (t) => {
  // The main broker runs without the flag: no admin controls.
  const page0 = await newPage(consoleErrors);
  await page0.goto(`${monitorUrl}/console/#/channel/orders`);
  await page0.locator('table.subs tbody tr').first().waitFor();
  assert.equal(await page0.locator('#admin *').count(), 0);
  assert.equal(await page0.locator('button.delete-durable').count(), 0);
  await page0.close();

  let ready;
  ({ proc: adminBroker, ready } = await startBroker(['--console_admin_token', ADMIN_TOKEN]));
  adminMonitorUrl = ready.monitoring[0];
  adminSeed = await startSeed(ready.nats[0], 'audit.log\tline 1\naudit.log\tline 2\n');
  await stop(adminSeed); // closes its durable: now an offline durable
  const errors = []; // the refused request (401) is logged by the browser as a failed resource
  const page = await newPage(errors);
  page.on('dialog', (d) => d.accept());
  await page.goto(`${adminMonitorUrl}/console/#/channel/audit.log`);
  const del = page.locator('button.delete-durable');
  await del.waitFor();
  await page.getByLabel('admin token').fill('not-the-token');
  await del.click();
  await page.getByRole('alert').filter({ hasText: 'wrong admin token' }).waitFor();
  await page.getByLabel('admin token').fill(ADMIN_TOKEN);
  await del.click();
  await page.getByRole('status').filter({ hasText: 'Delete durable audit of console-seed: done.' }).waitFor();
  await page.getByText('No subscriptions.').waitFor();
  await shot(page, 'admin.png', t);
  await page.locator('#purge-channel').click();
  await page.getByRole('status').filter({ hasText: 'Purge every message of audit.log: done.' }).waitFor();
  // The page refreshes: no messages left, and the sequence goes on after the two purged.
  await page.locator('.card:has(.label:text-is("Messages")) .value:text-is("0")').waitFor();
  await page.locator('.card:has(.label:text-is("First sequence")) .value:text-is("3")').waitFor();
  await page.locator('#delete-channel').click();
  await page.waitForURL(/#\/channels$/);
  await page.locator('table.channels').getByText('no channels').waitFor();
  assert.ok(errors.every((e) => e.includes('401')), errors.join('\n'));
  await page.close();
});

test('no console errors on the pages above', () => {
  assert.deepEqual(consoleErrors, []);
});
