// The stock `cent.js` 6.1.0 (npm) against wspush's HTTP API: publish, broadcast, presence,
// history, info, and batch through its pipeline() (Centrifugo's legacy POST /api stream).
// Driven by crates/wspush/tests/stock_api.rs. Prints one JSON line of results.
import { CentClient, CentException } from 'cent.js';

const client = new CentClient({ url: process.env.WSPUSH_API_URL, apiKey: process.env.WSPUSH_API_KEY });
const out = {};

const pub = await client.publish({ channel: 'news', data: { from: 'cent.js' } });
out.publish = [pub.offset, pub.epoch];
const b = await client.broadcast({ channels: ['news', 'other'], data: { n: 'js' } });
out.broadcast = b.responses.map((r) => r.result?.offset);
out.presence = Object.keys((await client.getPresence({ channel: 'news' })).presence).sort();
const hist = await client.getHistory({ channel: 'news', limit: 100 });
out.history = hist.publications.map((p) => [p.offset, p.data]);
out.top = [hist.offset, hist.epoch];
const nodes = (await client.getInfo()).nodes;
out.info = nodes.map((n) => n.uid !== '' && n.name !== '');
const rep = await client.pipeline([
  { method: 'publish', params: { channel: 'news', data: 'piped' } },
  { method: 'presence_stats', params: { channel: 'news' } },
]);
out.pipeline = [rep[0].offset, rep[1].num_clients];
try {
  await new CentClient({ url: process.env.WSPUSH_API_URL, apiKey: 'wrong' }).getInfo();
  out.wrong_key = 'accepted';
} catch (e) {
  // 401 with an empty body, as Centrifugo answers: cent.js then fails parsing it (a
  // SyntaxError rather than its CentException), with Centrifugo alike.
  out.wrong_key = e instanceof CentException || e instanceof SyntaxError ? 'refused' : String(e);
}
console.log(JSON.stringify(out));
