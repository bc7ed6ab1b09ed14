// test/browser/dashboard.mjs: drives Debian's chromium, headless, through
// the dashboard for test/t/045_dashboard_browser.pl.
//   node dashboard.mjs URL API_KEY SYMBOL CANDLES OUTDIR
// Prints one line per step (CANDLES n, READY, UPDATED ms, SCREENSHOT path,
// EXTERNAL url, CONSOLE text); after READY it waits for a line
// "INGESTED <price>" on stdin, then for the chart's last candle and the
// price table to show that price.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const [url, key, symbol, candles, outDir] = process.argv.slice(2);
const say = (line) => process.stdout.write(line + '\n');
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once('line', resolve));

const profile = fs.mkdtempSync(path.join(outDir, 'chromium-profile-'));
const context = await chromium.launchPersistentContext(profile, {
	executablePath: '/usr/bin/chromium',
	headless: true,
	viewport: { width: 1280, height: 800 },
	args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
		'--disable-component-update', '--disable-sync', '--no-first-run'],
});
let failed = false;
try {
	const page = context.pages()[0] || await context.newPage();
	const origin = new URL(url).host;
	page.on('request', (r) => { if (new URL(r.url()).host !== origin) say('EXTERNAL ' + r.url()); });
	page.on('console', (m) => { if (m.type() === 'error') say('CONSOLE ' + m.text()); });
	page.on('pageerror', (e) => say('CONSOLE ' + e.message));

	await page.goto(`${url}/?symbols=${symbol}`);
	await page.fill('#key', key);
	await page.click('#settings button[type=submit]');
	await page.waitForFunction((n) => document.getElementById('chart').dataset.candles === n,
		candles, { timeout: 15000 }).catch(() => {});
	say('CANDLES ' + await page.$eval('#chart', (el) => el.dataset.candles));
	await page.waitForFunction(() => document.getElementById('stream-state').textContent === 'live',
		null, { timeout: 15000 });
	await page.waitForSelector(`#latest tr[data-symbol="${symbol}"]`, { timeout: 15000 });
	say('READY');

	const price = (await nextLine()).split(' ')[1];
	const t0 = Date.now();
	await page.waitForFunction(({ p, s }) => {
		const row = document.querySelector(`#latest tr[data-symbol="${s}"] td.price`);
		return document.getElementById('chart').dataset.lastClose === p && row && row.textContent === p;
	}, { p: price, s: symbol }, { timeout: 5000, polling: 10 });
	say('UPDATED ' + (Date.now() - t0));
	say('CANDLES ' + await page.$eval('#chart', (el) => el.dataset.candles));
	await page.waitForTimeout(500);	// the row's flash fades
	const shot = path.join(outDir, 'dashboard.png');
	await page.screenshot({ path: shot, fullPage: true });
	say('SCREENSHOT ' + shot);
} catch (e) {
	say('ERROR ' + e.message.split('\n')[0]);
	failed = true;
} finally {
	await context.close();
	fs.rmSync(profile, { recursive: true, force: true });
	lines.close();
}
process.exit(failed ? 1 : 0);
