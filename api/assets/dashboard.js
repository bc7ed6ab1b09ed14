/*
 * api/assets/dashboard.js
 *	The dashboard (GET /): a client of the public REST and stream
 *	endpoints only, like any other.
 *
 * The API key typed in stays in this tab (sessionStorage) and goes in the
 * X-API-Key header; the price stream is an EventSource, which cannot send
 * headers, opened with a single-use token from POST /stream/token. After
 * any break (an error, a "reconnect" event at a server's shutdown) the
 * page takes a new token and resumes with since=<last event id>.
 * Candles are the symbol's one-minute bars (GET /prices/bars), drawn by
 * TradingView's lightweight-charts; each streamed price moves the last
 * one, or opens the next minute's.
 */
'use strict';

(function () {
	var LC = window.LightweightCharts;
	var $ = function (id) { return document.getElementById(id); };
	var HISTORY_HOURS = 6;
	var state = {
		key: sessionStorage.getItem('md_key') || '',
		symbols: [],
		chartSymbol: '',
		candles: [],
		source: null,
		lastId: null,
		retry: null,
		jobs: JSON.parse(sessionStorage.getItem('md_jobs') || '[]')
	};
	var chart, series;

	function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }

	async function api(path, opts) {
		opts = opts || {};
		var headers = Object.assign({}, opts.headers || {});
		if (state.key)
			headers['X-API-Key'] = state.key;
		var r = await fetch(path, Object.assign({}, opts, { headers: headers }));
		var body = await r.json().catch(function () { return null; });
		if (!r.ok)
			throw new Error((body && body.error && body.error.message) || ('HTTP ' + r.status));
		return body;
	}

	function cell(row, text, cls) {
		var td = document.createElement('td');
		td.textContent = text == null ? '' : String(text);
		if (cls)
			td.className = cls;
		row.appendChild(td);
		return td;
	}

	/* Candles ------------------------------------------------------------ */

	function minute(iso) { return Math.floor(Date.parse(iso) / 60000) * 60; }

	/* A price into the candles; the candle it moved, or null (too old). */
	function addPrice(candles, iso, price) {
		var t = minute(iso), last = candles[candles.length - 1];
		if (last && last.time === t) {
			last.high = Math.max(last.high, price);
			last.low = Math.min(last.low, price);
			last.close = price;
			return last;
		}
		if (last && t < last.time)
			return null;
		var c = { time: t, open: price, high: price, low: price, close: price };
		candles.push(c);
		return c;
	}

	function chartMoved() {
		var el = $('chart'), last = state.candles[state.candles.length - 1];
		el.dataset.candles = String(state.candles.length);
		el.dataset.lastClose = last ? String(last.close) : '';
		el.dataset.lastTime = last ? String(last.time) : '';
	}

	/* the symbol's one-minute bars (GET /prices/bars), page by page */
	async function loadCandles(symbol) {
		var to = new Date(), from = new Date(to - HISTORY_HOURS * 3600000);
		var candles = [], next = from.toISOString(), page;
		for (var i = 0; next && i < 20; i++) {
			page = await api('/prices/bars?symbol=' + encodeURIComponent(symbol) +
			    '&interval=1m&from=' + encodeURIComponent(next) +
			    '&to=' + encodeURIComponent(to.toISOString()) + '&limit=1000');
			page.bars.forEach(function (b) {
				var t = minute(b.bucket), last = candles[candles.length - 1];
				var c = { time: t, open: Number(b.open), high: Number(b.high),
				    low: Number(b.low), close: Number(b.close) };
				if (last && last.time === t)
					candles[candles.length - 1] = c;
				else if (!last || t > last.time)
					candles.push(c);
			});
			next = page.next_from;
		}
		if (symbol !== state.chartSymbol)
			return;
		state.candles = candles;
		series.setData(candles.map(function (c) { return Object.assign({}, c); }));
		chart.timeScale().fitContent();
		chartMoved();
	}

	/* Latest prices ------------------------------------------------------ */

	function showPrice(p) {
		var body = $('latest').tBodies[0], row = null;
		for (var i = 0; i < body.rows.length; i++)
			if (body.rows[i].dataset.symbol === p.symbol)
				row = body.rows[i];
		if (!row) {
			row = document.createElement('tr');
			row.dataset.symbol = p.symbol;
			body.appendChild(row);
		}
		row.textContent = '';
		cell(row, p.symbol);
		cell(row, p.price, 'num price');
		cell(row, p.timestamp);
		cell(row, p.source || p.provider);
		row.className = 'flash';
		setTimeout(function () { row.className = ''; }, 400);
	}

	async function loadLatest() {
		await Promise.all(state.symbols.map(function (s) {
			return api('/prices/latest?symbol=' + encodeURIComponent(s))
			    .then(showPrice).catch(function () { /* no price yet */ });
		}));
	}

	/* The stream --------------------------------------------------------- */

	function setStreamState(text, cls) {
		$('stream-state').textContent = text;
		$('stream-state').className = 'state ' + (cls || '');
	}

	function onPrice(ev) {
		var p = JSON.parse(ev.data);
		state.lastId = ev.lastEventId || state.lastId;
		showPrice(p);
		if (p.symbol === state.chartSymbol) {
			var c = addPrice(state.candles, p.timestamp, Number(p.price));
			if (c) {
				series.update(Object.assign({}, c));
				chartMoved();
			}
		}
	}

	function reconnectSoon() {
		if (state.source)
			state.source.close();
		state.source = null;
		setStreamState('reconnecting', 'down');
		clearTimeout(state.retry);
		state.retry = setTimeout(connect, 1000);
	}

	async function connect() {
		if (state.source)
			state.source.close();
		state.source = null;
		if (!state.symbols.length)
			return;
		var tok;
		try {
			tok = await api('/stream/token', { method: 'POST' });
		} catch (e) {
			showError(e);
			return reconnectSoon();
		}
		var url = '/prices/stream?symbols=' + encodeURIComponent(state.symbols.join(',')) +
		    '&token=' + tok.token;
		if (state.lastId)
			url += '&since=' + encodeURIComponent(state.lastId);
		var es = new EventSource(url);
		state.source = es;
		es.onopen = function () { setStreamState('live', 'live'); showError(null); };
		es.addEventListener('price', onPrice);
		es.addEventListener('status', function (ev) {
			var s = JSON.parse(ev.data);
			setStreamState(s.redis === 'down' ? 'live, Redis down' : 'live', s.redis === 'down' ? 'down' : 'live');
		});
		es.addEventListener('reconnect', reconnectSoon);
		es.addEventListener('close', reconnectSoon);
		/* the token is spent: EventSource's own retry would be refused */
		es.onerror = function () { if (state.source === es) reconnectSoon(); };
	}

	/* Health and jobs ------------------------------------------------------ */

	async function loadReady() {
		var r = await fetch('/health/ready');
		var ready = await r.json().catch(function () { return null; });
		if (!ready)
			return;
		$('ready-status').textContent = ready.status || '';
		var body = $('providers').tBodies[0];
		body.textContent = '';
		(ready.providers || []).forEach(function (p) {
			var row = document.createElement('tr');
			cell(row, p.provider || p.name);
			cell(row, p.state || p.status);
			cell(row, p.p50_latency_ms, 'num');
			cell(row, p.last_error_class || '');
			body.appendChild(row);
		});
	}

	async function loadJobs() {
		var body = $('jobs').tBodies[0];
		var rows = await Promise.all(state.jobs.map(function (id) {
			return api('/prices/poll/' + encodeURIComponent(id)).catch(function (e) {
				return { job_id: id, status: e.message };
			});
		}));
		body.textContent = '';
		rows.forEach(function (j) {
			var row = document.createElement('tr'), run = (j.runs || [])[0];
			cell(row, j.job_id);
			cell(row, j.config ? j.config.symbols.join(',') : '');
			cell(row, j.config ? j.config.interval + ' s' : '');
			cell(row, j.last_run_at || '');
			cell(row, run ? run.status + ' (' + run.symbols_ok + ' ok, ' + run.symbols_failed + ' failed)' : j.status);
			body.appendChild(row);
		});
	}

	/* Set-up ----------------------------------------------------------------- */

	function chooseChart(symbol) {
		state.chartSymbol = symbol;
		state.candles = [];
		series.setData([]);
		chartMoved();
		loadCandles(symbol).catch(showError);
	}

	function apply() {
		state.key = $('key').value.trim();
		sessionStorage.setItem('md_key', state.key);
		state.symbols = $('symbols').value.split(',').map(function (s) { return s.trim().toUpperCase(); })
		    .filter(function (s) { return s; });
		var url = new URL(location.href);
		url.searchParams.set('symbols', state.symbols.join(','));
		history.replaceState(null, '', url);
		var sel = $('chart-symbol');
		sel.textContent = '';
		state.symbols.forEach(function (s) {
			var o = document.createElement('option');
			o.value = o.textContent = s;
			sel.appendChild(o);
		});
		$('latest').tBodies[0].textContent = '';
		state.lastId = null;
		if (state.symbols.length)
			chooseChart(state.symbols[0]);
		loadLatest().catch(showError);
		connect();
	}

	function init() {
		chart = LC.createChart($('chart'), {
			grid: { vertLines: { color: '#1f2830' }, horzLines: { color: '#1f2830' } },
			timeScale: { timeVisible: true, secondsVisible: false },
			/* its logo injects a <style>, which our CSP refuses: the
			 * page credits TradingView in its footer instead */
			layout: { background: { color: '#0f1419' }, textColor: '#d8dee4', attributionLogo: false },
			autoSize: true
		});
		series = chart.addSeries(LC.CandlestickSeries, {});
		var params = new URL(location.href).searchParams;
		$('key').value = state.key;
		$('symbols').value = params.get('symbols') || 'AAPL,MSFT';
		$('settings').addEventListener('submit', function (e) { e.preventDefault(); apply(); });
		$('chart-symbol').addEventListener('change', function (e) { chooseChart(e.target.value); });
		$('job-form').addEventListener('submit', function (e) {
			e.preventDefault();
			var id = $('job-id').value.trim();
			if (id && state.jobs.indexOf(id) < 0)
				state.jobs.push(id);
			sessionStorage.setItem('md_jobs', JSON.stringify(state.jobs));
			loadJobs().catch(showError);
		});
		loadReady().catch(showError);
		setInterval(function () { loadReady().catch(showError); loadJobs().catch(showError); }, 5000);
		if (state.key)
			apply();
	}

	init();
})();
