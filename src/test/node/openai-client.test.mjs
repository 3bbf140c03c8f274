// The official openai npm client, unmodified, against a running Jemma server (JEMMA_URL, e.g.
// http://127.0.0.1:8080). Run by run.sh; by hand: JEMMA_URL=... node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.env.JEMMA_URL;
if (!base) {
  throw new Error('set JEMMA_URL to the server, e.g. http://127.0.0.1:8080');
}
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed', maxRetries: 0, timeout: 120_000 });
const MAX_TOKENS = 12;

async function servedModel() {
  const models = [];
  for await (const m of client.models.list()) {
    models.push(m);
  }
  assert.equal(models.length, 1);
  assert.equal(models[0].object, 'model');
  return models[0].id;
}

test('streams a chat completion with usage', async () => {
  const model = await servedModel();
  // ignore_eos is a server extra: the embedded model would otherwise stop after its short answer
  const request = {
    model,
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }],
    max_tokens: MAX_TOKENS,
    temperature: 0,
    ignore_eos: true,
  };
  const stream = await client.chat.completions.create({
    ...request, stream: true, stream_options: { include_usage: true },
  });
  let content = '';
  let finishReason = null;
  let usage = null;
  let sawRole = false;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.ok(chunk.id.startsWith('chatcmpl-'));
    if (chunk.usage) {
      usage = chunk.usage;
      assert.equal(chunk.choices.length, 0);
      continue;
    }
    const choice = chunk.choices[0];
    assert.equal(choice.index, 0);
    if (choice.delta.role) {
      assert.equal(choice.delta.role, 'assistant');
      sawRole = true;
    }
    content += choice.delta.content ?? '';
    if (choice.finish_reason) {
      finishReason = choice.finish_reason;
    }
  }
  assert.ok(sawRole, 'the first chunk carries the role');
  assert.ok(content.length > 0, 'content arrived');
  assert.equal(finishReason, 'length');
  assert.ok(usage, 'a usage chunk came last');
  assert.equal(usage.completion_tokens, MAX_TOKENS);
  assert.ok(usage.prompt_tokens > 0);
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

  const whole = await client.chat.completions.create(request);
  assert.equal(whole.choices[0].message.content, content, 'streamed and whole agree');
  assert.equal(whole.usage.prompt_tokens, usage.prompt_tokens);
});

test('streams a text completion with usage', async () => {
  const model = await servedModel();
  const stream = await client.completions.create({
    model, prompt: 'Once upon a time', max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true,
    stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finishReason = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion');
    if (chunk.usage) {
      usage = chunk.usage;
      continue;
    }
    text += chunk.choices[0].text;
    finishReason = chunk.choices[0].finish_reason ?? finishReason;
  }
  assert.ok(text.length > 0, 'text arrived');
  assert.equal(finishReason, 'length');
  assert.equal(usage.completion_tokens, MAX_TOKENS);
  assert.ok(usage.prompt_tokens > 0);
});

test('bad input is an APIError naming the field', async () => {
  const model = await servedModel();
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], temperature: -1 }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.param, 'temperature');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }] }),
    (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError, String(err));
      assert.equal(err.code, 'model_not_found');
      return true;
    });
});
