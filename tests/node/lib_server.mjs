// lib_server.mjs: helpers for the `lmc serve` tests (test_server*.mjs):
// train a tiny GPT-2 on GPT-2's tokenizer, start and stop servers, raw HTTP
// requests, server-sent event parsing, percentiles, RSS; greedy continuations
// of lmc and llama.cpp (test_gguf.mjs, test_moe.mjs).
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import gpt2 from 'gpt-3-encoder';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const LMC = process.env.LMC || path.join(ROOT, 'build/lmc');
export const TOK = path.join(here, 'node_modules/gpt-3-encoder');

// check(name, fn): runs one named test, printing ok or FAIL (with the
// stack) and its time; failures() counts those that failed.
let failed = 0;
export async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}
export const failures = () => failed;

export function tmpdir() {
  return fs.mkdtempSync(path.join(process.env.TMPDIR || os.tmpdir(), 'lmc_serve_'));
}

export function run(args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(LMC, args, { maxBuffer: 64 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) reject(new Error(`lmc ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

// Simple sentences from a small grammar: a model learns them in seconds.
export function corpus(n, seed = 1) {
  const S = ['The cat', 'A dog', 'The old man', 'My friend', 'The teacher', 'A little bird', 'The king', 'Our neighbor'];
  const V = ['sat on', 'looked at', 'walked to', 'found', 'liked', 'painted', 'opened', 'watched'];
  const O = ['the red door.', 'a small house.', 'the green tree.', 'the big river.', 'an old book.',
             'the bright moon.', 'a warm fire.', 'the quiet garden.'];
  let x = seed;
  const rnd = (k) => { x = (x * 1103515245 + 12345) % 2147483648; return x % k; };
  const out = [];
  for (let i = 0; i < n; i++) out.push(`${S[rnd(8)]} ${V[rnd(8)]} ${O[rnd(8)]}`);
  return out.join(' ');
}

// llm.c shard: 256 int32 header [20240520, 1, ntokens], then uint16 tokens
export function writeShard(file, text) {
  const ids = gpt2.encode(text);
  const header = new Int32Array(256);
  header[0] = 20240520; header[1] = 1; header[2] = ids.length;
  fs.writeFileSync(file, Buffer.concat([Buffer.from(header.buffer), Buffer.from(Uint16Array.from(ids).buffer)]));
  return ids.length;
}

// A tiny GPT-2 with GPT-2's vocabulary, trained for a few seconds. One
// thread: on a shared 2-core machine OpenMP teams wait on each other.
export async function trainTiny(dir, steps = 30) {
  const shard = path.join(dir, 'train.bin'), model = path.join(dir, 'tiny.safetensors');
  writeShard(shard, corpus(1500));
  const t0 = Date.now();
  await run(['train', '--model', 'd6', '--layers', '2', '--dim', '64', '--heads', '4', '--vocab', '50257',
             '--max-seq', '512', '--batch', '4', '--seq', '64', '--steps', String(steps), '--lr', '1e-2',
             '--warmup', '5', '--data', shard, '--save', model, '--quiet', '--threads', '1']);
  return { model, seconds: (Date.now() - t0) / 1000 };
}

// Starts `lmc serve --port 0 ...` and resolves when it listens.
export function startServer(model, extra = [], env = {}) {
  const args = ['serve', '--model', model, '--tokenizer', TOK, '--port', '0', '--name', 'tiny',
                '--threads', process.env.LMC_SERVE_THREADS || '1', ...extra];
  const proc = spawn(LMC, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, log })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = /listening on port (\d+)/.exec(log);
      if (m && !proc.port) {
        clearTimeout(timer);
        proc.port = Number(m[1]);
        resolve({ proc, port: proc.port, exited, base: `http://127.0.0.1:${proc.port}`, log: () => log });
      }
    });
    proc.on('exit', () => { clearTimeout(timer); reject(new Error(`server exited:\n${log}`)); });
  });
}

// Raw request; resolves {status, headers, body, json}
export function request(port, method, urlPath, { body, headers = {}, key, chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (key) h.Authorization = `Bearer ${key}`;
    if (body !== undefined && !chunked) h['Content-Length'] = Buffer.byteLength(body);
    if (body !== undefined && !h['Content-Type']) h['Content-Type'] = 'application/json';
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: h, agent: false }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) {
      if (chunked) { // in pieces, no Content-Length
        const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
        for (let i = 0; i < buf.length; i += 65536) req.write(buf.subarray(i, i + 65536));
      } else {
        req.write(body);
      }
    }
    req.end();
  });
}

// Streams a request; calls onEvent(obj|'[DONE]') per event. Resolves with
// {events, firstMs, totalMs}. abortAfter: destroy the socket after n events.
export function stream(port, urlPath, payload, { key, onEvent, abortAfter } = {}) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(payload);
    const t0 = Date.now();
    const h = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    if (key) h.Authorization = `Bearer ${key}`;
    const events = [];
    let firstMs = null, buf = '';
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: urlPath, headers: h, agent: false },
      (res) => {
        if (res.statusCode !== 200) {
          let t = '';
          res.on('data', (d) => { t += d; });
          res.on('end', () => reject(new Error(`status ${res.statusCode}: ${t}`)));
          return;
        }
        res.setEncoding('utf8');
        res.on('data', (d) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const ev = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!ev.startsWith('data: ')) continue;
            const data = ev.slice(6);
            const obj = data === '[DONE]' ? '[DONE]' : JSON.parse(data);
            if (firstMs === null) firstMs = Date.now() - t0;
            events.push(obj);
            if (onEvent) onEvent(obj);
            if (abortAfter && events.length >= abortAfter) {
              req.destroy();
              resolve({ events, firstMs, totalMs: Date.now() - t0, aborted: true });
              return;
            }
          }
        });
        res.on('end', () => resolve({ events, firstMs, totalMs: Date.now() - t0 }));
        res.on('error', reject);
      });
    req.on('error', (e) => (abortAfter ? resolve({ events, aborted: true }) : reject(e)));
    req.end(body);
  });
}

export async function metrics(port) {
  const r = await request(port, 'GET', '/metrics');
  const m = {};
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return m;
}

// Concurrent greedy completions through `client` (the openai package) on a
// server of `model`: each equals the full-recompute `lmc sample
// --temperature 0` (a prefix when it stopped early), and the engine batched
// them (a mean decode batch above 1.5).
export async function greedyBatchIsSample(srv, client, model, prompts, maxTokens) {
  const before = await metrics(srv.port);
  const got = await Promise.all(prompts.map((prompt) =>
    client.completions.create({ model: 'tiny', prompt, max_tokens: maxTokens, temperature: 0 })));
  const after = await metrics(srv.port);
  for (let i = 0; i < prompts.length; i++) {
    const { stdout } = await run(['sample', '--model', model, '--tokenizer', TOK, '--prompt', prompts[i],
                                  '--max-tokens', String(maxTokens), '--temperature', '0', '--threads', '1']);
    const want = stdout.replace(/\n$/, ''), text = got[i].choices[0].text;
    if (got[i].choices[0].finish_reason === 'stop') assert.ok(want.startsWith(text), `prompt ${i}`);
    else assert.equal(text, want, `prompt ${i}: '${text}' vs '${want}'`);
  }
  const steps = after.lmc_engine_steps_total - before.lmc_engine_steps_total;
  const rows = after.lmc_engine_step_rows_total - before.lmc_engine_step_rows_total;
  console.log(`     ${rows} sequence-steps in ${steps} engine steps (mean batch ${(rows / steps).toFixed(2)})`);
  assert.ok(rows / steps > 1.5, 'the requests were not batched');
}

// llama.cpp's (node-llama-cpp's) greedy continuation of prompt ids with each
// token's log-probability, and lmc generate's (--logprobs).
export async function llamaGreedy(m, prompt, n) {
  const ctx = await m.createContext({ contextSize: 128, threads: 1 });
  const out = [];
  try {
    const seq = ctx.getSequence();
    for await (const r of seq.evaluateWithMetadata(prompt, { confidence: true }, { temperature: 0 })) {
      out.push({ id: r.token, logprob: Math.log(r.confidence) });
      if (out.length >= n) break;
    }
  } finally {
    await ctx.dispose();
  }
  return out;
}

export async function lmcGreedy(file, prompt, n, extra = []) {
  const { stdout } = await run(['generate', '--model', file, '--prompt-ids', prompt.join(' '), '--max-tokens',
                                String(n), '--temperature', '0', '--logprobs', '--threads', '1', ...extra]);
  return stdout.trim().split('\n').map((l) => JSON.parse(l));
}

export function rssBytes(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(s)[1]) * 1024;
}

export function percentile(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

// N concurrent streaming clients for `seconds`; each sends requests back to
// back. Returns counts, latencies (ms) and sampled RSS.
export async function loadTest(srv, { clients, seconds, maxTokens = 32, key } = {}) {
  const end = Date.now() + seconds * 1000;
  const lat = [], ttft = [], rss = [];
  let ok = 0, failed = 0, tokens = 0;
  const errors = [];
  const sampler = setInterval(() => rss.push(rssBytes(srv.proc.pid)), 500);
  const prompts = ['The cat', 'A dog walked', 'My friend liked', 'The king', 'Our neighbor found the'];
  async function client(i) {
    let k = 0;
    while (Date.now() < end) {
      try {
        const r = await stream(srv.port, '/v1/completions', {
          model: 'tiny', prompt: prompts[(i + k++) % prompts.length], max_tokens: maxTokens, stream: true,
          temperature: 0.8, stream_options: { include_usage: true },
        }, { key });
        const last = r.events[r.events.length - 1];
        const usage = r.events[r.events.length - 2]?.usage;
        if (last !== '[DONE]' || !usage) throw new Error('stream did not end with usage and [DONE]');
        tokens += usage.completion_tokens;
        lat.push(r.totalMs);
        ttft.push(r.firstMs);
        ok++;
      } catch (e) {
        failed++;
        if (errors.length < 5) errors.push(String(e));
      }
    }
  }
  const t0 = Date.now();
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  clearInterval(sampler);
  rss.push(rssBytes(srv.proc.pid));
  const secs = (Date.now() - t0) / 1000;
  return { ok, failed, errors, tokens, secs, tokPerSec: tokens / secs, p50: percentile(lat, 50),
           p99: percentile(lat, 99), ttft50: percentile(ttft, 50), ttft99: percentile(ttft, 99), rss };
}
