// test_server.mjs: `lmc serve` end to end. Trains a tiny GPT-2 with GPT-2's
// tokenizer (a few seconds), serves it on a loopback port and drives it
//  - with the official `openai` npm client: models, completion, chat,
//    streaming of both (usage, finish_reason, [DONE]), stop strings, seeds,
//    and errors (wrong key, bad parameter, unknown model);
//  - with raw HTTP for every malformed input: bad JSON, wrong field types,
//    a prompt longer than the context, missing or wrong API key, a body
//    over the limit (declared and chunked), invalid UTF-8, unknown routes,
//    too many concurrent requests (429); the server keeps serving;
//  - concurrent greedy requests (continuous batching) against the plain
//    full-recompute `lmc sample --temperature 0`: the same text;
//  - a client disconnecting mid-stream frees its slot;
//  - a short load test (zero failures, p50/p99, RSS);
//  - SIGTERM: the in-flight stream finishes, exit code 0.
// Usage: LMC=build/lmc node tests/node/test_server.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import * as L from './lib_server.mjs';

const KEY = 'sk-lmc-test';
const { check } = L;

function expectError(r, status, param, code) {
  assert.equal(r.status, status, `status ${r.status}: ${r.body}`);
  assert.ok(r.json && r.json.error && typeof r.json.error.message === 'string', `error body: ${r.body}`);
  if (param !== undefined) assert.equal(r.json.error.param, param, r.body);
  if (code !== undefined) assert.equal(r.json.error.code, code, r.body);
}

async function openaiTests(srv, client) {
  await check('openai: models.list', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), ['tiny']);
  });
  await check('openai: completion (greedy), usage, finish_reason', async () => {
    const r = await client.completions.create({ model: 'tiny', prompt: 'The cat', max_tokens: 12, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices.length, 1);
    assert.ok(r.choices[0].text.length > 0);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.deepEqual(r.usage, { prompt_tokens: 2, completion_tokens: 12, total_tokens: 14 });
  });
  await check('openai: chat completion', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny', max_tokens: 8, temperature: 0,
      messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Tell me about the cat.' }],
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 10 && r.usage.completion_tokens <= 8);
  });
  await check('openai: streaming completion equals the whole one', async () => {
    const whole = await client.completions.create({ model: 'tiny', prompt: 'My friend', max_tokens: 20, temperature: 0 });
    const s = await client.completions.create({
      model: 'tiny', prompt: 'My friend', max_tokens: 20, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    let text = '', finish = null, usage = null, chunks = 0;
    for await (const ch of s) {
      chunks++;
      if (ch.choices.length) {
        text += ch.choices[0].text;
        finish = ch.choices[0].finish_reason || finish;
      }
      if (ch.usage) usage = ch.usage;
    }
    assert.ok(chunks > 3, `only ${chunks} chunks: not streamed`);
    assert.equal(text, whole.choices[0].text);
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 20);
  });
  await check('openai: streaming chat (role first, content deltas, finish)', async () => {
    const s = await client.chat.completions.create({
      model: 'tiny', max_tokens: 10, temperature: 0, stream: true,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }],
    });
    const deltas = [];
    let finish = null;
    for await (const ch of s) {
      deltas.push(ch.choices[0].delta);
      finish = ch.choices[0].finish_reason || finish;
      assert.equal(ch.object, 'chat.completion.chunk');
    }
    assert.equal(deltas[0].role, 'assistant');
    assert.ok(deltas.slice(1).some((d) => typeof d.content === 'string' && d.content.length > 0));
    assert.ok(['stop', 'length'].includes(finish));
  });
  await check('openai: stop string ends the text before it', async () => {
    const whole = await client.completions.create({ model: 'tiny', prompt: 'The king', max_tokens: 30, temperature: 0 });
    const t = whole.choices[0].text;
    const words = t.trim().split(/\s+/);
    const stop = words[Math.min(3, words.length - 1)];
    const r = await client.completions.create({ model: 'tiny', prompt: 'The king', max_tokens: 30, temperature: 0, stop: [stop] });
    assert.equal(r.choices[0].text, t.slice(0, t.indexOf(stop)));
    assert.equal(r.choices[0].finish_reason, 'stop');
  });
  await check('openai: the same seed gives the same sample', async () => {
    const req = { model: 'tiny', prompt: 'A dog', max_tokens: 16, temperature: 1.2, top_p: 0.95, seed: 7,
                  frequency_penalty: 0.3 };
    const [a, b] = await Promise.all([client.completions.create(req), client.completions.create(req)]);
    assert.equal(a.choices[0].text, b.choices[0].text);
  });
  await check('openai: errors are thrown as the client\'s error classes', async () => {
    const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${srv.base}/v1`, maxRetries: 0 });
    await assert.rejects(bad.completions.create({ model: 'tiny', prompt: 'x' }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x', temperature: 5 }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature');
    await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  });
}

async function rawTests(srv) {
  const p = srv.port;
  const post = (route, body, opts = {}) => L.request(p, 'POST', route, { body, key: KEY, ...opts });
  await check('http: malformed JSON -> 400', async () => {
    expectError(await post('/v1/completions', '{"model": "tiny", "prompt": '), 400);
    expectError(await post('/v1/completions', '[1, 2]'), 400);
    expectError(await post('/v1/chat/completions', ''), 400);
  });
  await check('http: known fields of the wrong type -> 400 naming them', async () => {
    const cases = [
      ['/v1/completions', { model: 'tiny', prompt: 5 }, 'prompt'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 'ten' }, 'max_tokens'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 2.5 }, 'max_tokens'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', stream: 'yes' }, 'stream'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', temperature: '0.5' }, 'temperature'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', top_p: 3 }, 'top_p'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', stop: 7 }, 'stop'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', seed: 'abc' }, 'seed'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', logit_bias: { abc: 1 } }, 'logit_bias'],
      ['/v1/completions', { model: 'tiny', prompt: [1, 99999999] }, 'prompt'],
      ['/v1/completions', { model: 'tiny', prompt: 'x', n: 3 }, 'n'],
      ['/v1/completions', { model: 5, prompt: 'x' }, 'model'],
      ['/v1/completions', { prompt: 'x' }, 'model'],
      ['/v1/chat/completions', { model: 'tiny', messages: 'hi' }, 'messages'],
      ['/v1/chat/completions', { model: 'tiny', messages: [] }, 'messages'],
      ['/v1/chat/completions', { model: 'tiny', messages: [{ role: 'wizard', content: 'x' }] }, 'messages'],
      ['/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 42 }] }, 'messages'],
      ['/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'x' }], stream_options: 1 },
       'stream_options'],
    ];
    for (const [route, body, param] of cases) expectError(await post(route, JSON.stringify(body)), 400, param);
  });
  await check('http: prompt longer than the context -> 400 context_length_exceeded', async () => {
    const long = 'The cat sat on the red door. '.repeat(40); // ~280 tokens > ctx 128
    expectError(await post('/v1/completions', JSON.stringify({ model: 'tiny', prompt: long })), 400, 'prompt',
      'context_length_exceeded');
    expectError(await post('/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'The cat', max_tokens: 127 })),
      400, 'prompt', 'context_length_exceeded');
    expectError(await post('/v1/chat/completions', JSON.stringify({ model: 'tiny',
      messages: [{ role: 'user', content: long }] })), 400, 'messages', 'context_length_exceeded');
  });
  await check('http: missing or wrong API key -> 401', async () => {
    const body = JSON.stringify({ model: 'tiny', prompt: 'x' });
    expectError(await L.request(p, 'POST', '/v1/completions', { body }), 401);
    expectError(await L.request(p, 'POST', '/v1/completions', { body, key: 'sk-wrong' }), 401, null,
      'invalid_api_key');
    expectError(await L.request(p, 'GET', '/v1/models', { headers: { Authorization: 'Basic abc' } }), 401);
    assert.equal((await L.request(p, 'GET', '/health')).status, 200); // no key needed
  });
  await check('http: body over the limit -> 413 (declared and chunked)', async () => {
    const big = JSON.stringify({ model: 'tiny', prompt: 'x'.repeat(300000) }); // limit: 256 KiB
    expectError(await post('/v1/completions', big), 413);
    expectError(await post('/v1/completions', big, { chunked: true }), 413);
  });
  await check('http: invalid UTF-8 -> 400', async () => {
    const body = Buffer.concat([Buffer.from('{"model":"tiny","prompt":"a'), Buffer.from([0xff, 0xc3]),
                                Buffer.from('"}')]);
    expectError(await post('/v1/completions', body), 400);
  });
  await check('http: unknown route 404, wrong method 405', async () => {
    expectError(await L.request(p, 'GET', '/v1/engines', { key: KEY }), 404);
    const r = await L.request(p, 'GET', '/v1/completions', { key: KEY });
    expectError(r, 405);
    assert.equal(r.headers.allow, 'POST');
    expectError(await L.request(p, 'GET', '/v1/models/other', { key: KEY }), 404, undefined, 'model_not_found');
  });
  await check('http: still serving after the errors', async () => {
    const r = await post('/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'The cat', max_tokens: 3 }));
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.usage.completion_tokens, 3);
  });
}

// Several prompts at once through the batched engine vs. full recompute.
async function exactness(srv, client, model) {
  await check('greedy: 4 concurrent requests == lmc sample --temperature 0', () =>
    L.greedyBatchIsSample(srv, client, model, ['The cat', 'A little bird looked', 'Our neighbor', 'The teacher opened the'],
                          24));
}

// A second server with one slot and no queue: 429 and disconnects. The
// long generations (500 tokens) keep the slot busy for a while even on a
// fast machine.
async function slotTests(model) {
  const srv = await L.startServer(model, ['--slots', '1', '--queue', '0', '--ctx', '512']);
  const small = JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 2 });
  try {
    await check('http: too many concurrent requests -> 429, then served again', async () => {
      let fire;
      const busy = new Promise((resolve) => { fire = resolve; });
      const first = L.stream(srv.port, '/v1/completions',
        { model: 'tiny', prompt: 'The cat', max_tokens: 500, stream: true }, { onEvent: () => fire() });
      await busy; // the first request holds the only slot
      const refused = await Promise.all([1, 2, 3].map(() =>
        L.request(srv.port, 'POST', '/v1/completions', { body: small })));
      for (const r of refused) {
        expectError(r, 429, undefined, 'rate_limit_exceeded');
        assert.equal(r.headers['retry-after'], '1');
      }
      const done = await first;
      assert.equal(done.events[done.events.length - 1], '[DONE]');
      const again = await L.request(srv.port, 'POST', '/v1/completions', { body: small });
      assert.equal(again.status, 200, again.body);
    });
    await check('disconnect mid-stream frees the slot', async () => {
      const m0 = await L.metrics(srv.port);
      const r = await L.stream(srv.port, '/v1/completions',
        { model: 'tiny', prompt: 'The cat', max_tokens: 500, stream: true }, { abortAfter: 2 });
      assert.ok(r.aborted);
      let m = m0;
      for (let i = 0; i < 100; i++) {
        m = await L.metrics(srv.port);
        if (m.lmc_requests_running === 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(m.lmc_requests_running, 0, 'the slot is still held');
      assert.equal(m.lmc_requests_cancelled_total, m0.lmc_requests_cancelled_total + 1);
      assert.ok(m.lmc_completion_tokens_total - m0.lmc_completion_tokens_total < 500, 'generation was not cut short');
      const again = await L.request(srv.port, 'POST', '/v1/completions', { body: small });
      assert.equal(again.status, 200, again.body);
    });
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
  }
}

async function shortLoad(srv) {
  await check('load: 8 concurrent streaming clients for 4 s, zero failures', async () => {
    await L.loadTest(srv, { clients: 4, seconds: 1, key: KEY }); // warm-up
    const r = await L.loadTest(srv, { clients: 8, seconds: 4, key: KEY });
    const mb = (x) => (x / 1048576).toFixed(1);
    console.log(`     ${r.ok} requests, ${r.failed} failed, ${r.tokPerSec.toFixed(0)} tok/s, latency p50 ${r.p50} ms ` +
                `p99 ${r.p99} ms, first token p50 ${r.ttft50} ms p99 ${r.ttft99} ms, RSS ${mb(r.rss[0])} -> ` +
                `${mb(r.rss[r.rss.length - 1])} MB (max ${mb(Math.max(...r.rss))})`);
    assert.equal(r.failed, 0, r.errors.join('\n'));
    assert.ok(r.ok >= 8);
    assert.ok(r.rss[r.rss.length - 1] < r.rss[0] + 64 * 1048576, 'RSS grew by more than 64 MB');
  });
}

async function shutdown(srv) {
  await check('SIGTERM: no new connections, the in-flight stream finishes, exit code 0', async () => {
    let signalled = false, probe = null;
    const s = L.stream(srv.port, '/v1/completions', { model: 'tiny', prompt: 'The cat', max_tokens: 120, stream: true },
      { key: KEY, onEvent: () => {
        if (signalled) return;
        signalled = true;
        srv.proc.kill('SIGTERM');
        probe = new Promise((res) => setTimeout(res, 150)).then(() =>
          L.request(srv.port, 'GET', '/health').then((r) => r.status, (e) => e.code));
      } });
    const r = await s;
    assert.equal(r.events[r.events.length - 1], '[DONE]');
    assert.equal(r.events[r.events.length - 2].choices[0].finish_reason, 'length');
    const got = await probe;
    assert.ok(got === 'ECONNREFUSED' || got === 503 || got === 'ECONNRESET', `a new request got ${got}`);
    const { code, log } = await srv.exited;
    assert.equal(code, 0, log);
    assert.match(log, /SIGTERM/);
  });
}

// A device error inside an op (faked: every attention_decode's scratch
// allocation fails) fails that batch with a 500 naming the op, and the
// server stays up for the next request.
async function backendErrors(model) {
  const srv = await L.startServer(model, ['--slots', '1'], { LMC_TEST_FAIL_OP: 'attention_decode' });
  const body = JSON.stringify({ model: 'tiny', prompt: 'The cat', max_tokens: 4 });
  try {
    await check('a backend error during decoding -> 500 naming the op; the server stays up', async () => {
      for (let i = 0; i < 2; i++) {
        const r = await L.request(srv.port, 'POST', '/v1/completions', { body });
        expectError(r, 500);
        assert.match(r.json.error.message, /attention_decode/, r.body);
      }
      assert.equal((await L.request(srv.port, 'GET', '/health')).status, 200);
    });
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
  }
}

async function main() {
  const dir = L.tmpdir();
  try {
    const { model, seconds } = await L.trainTiny(dir);
    console.log(`trained a tiny GPT-2 in ${seconds.toFixed(1)} s`);
    const srv = await L.startServer(model, ['--slots', '4', '--queue', '16', '--ctx', '128', '--api-key', KEY,
                                            '--max-body', String(256 * 1024)]);
    const client = new OpenAI({ apiKey: KEY, baseURL: `${srv.base}/v1`, maxRetries: 0 });
    await openaiTests(srv, client);
    await rawTests(srv);
    await exactness(srv, client, model);
    await slotTests(model);
    await backendErrors(model);
    await shortLoad(srv);
    await shutdown(srv);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (L.failures()) {
    console.error(`${L.failures()} failure(s)`);
    process.exit(1);
  }
  console.log('ok');
}

await main();
