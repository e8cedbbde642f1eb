import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BusError, DEFAULT_SERVER, NatsServer, busOptionsFrom, connect, toConnectionOptions } from '../mod.ts';

t.test('defaults, env, and flags winning over env', async (t) => {
  t.same(busOptionsFrom({}, {}).servers, [DEFAULT_SERVER]);
  t.equal(busOptionsFrom({}, {}).reconnect, true);
  t.equal(busOptionsFrom({}, {}).maxReconnectAttempts, -1);
  t.same(busOptionsFrom({}, { NATS_URL: 'nats://a:1,nats://b:2' }).servers, ['nats://a:1', 'nats://b:2']);
  t.same(busOptionsFrom({ 'nats-url': 'nats://flag:3' }, { NATS_URL: 'nats://env:1' }).servers, ['nats://flag:3']);
  const o = busOptionsFrom({ 'nats-user': 'u', 'nats-pass': 'p', 'nats-name': 'me' }, { NATS_TOKEN: '' });
  t.equal(o.user, 'u');
  t.equal(o.pass, 'p');
  t.equal(o.name, 'me');
  t.equal(busOptionsFrom({}, { NATS_TOKEN: 'tok' }).token, 'tok');
  t.equal(busOptionsFrom({ 'nats-no-reconnect': true }, {}).reconnect, false);
  const tls = busOptionsFrom({ 'nats-tls-ca': 'ca.pem' }, { NATS_CERT: 'c.pem', NATS_KEY: 'k.pem' }).tls;
  t.same(tls, { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'k.pem' });
});

t.test('bad values are errors that name the flag or variable', async (t) => {
  t.throws(() => busOptionsFrom({ 'nats-url': 'http://x:1' }, {}), /--nats-url: 'http:\/\/x:1' has scheme http:/);
  t.throws(() => busOptionsFrom({}, { NATS_URL: ',' }), /NATS_URL names no server/);
  t.throws(() => busOptionsFrom({ 'nats-user': 'u' }, {}), /user and password go together/);
  t.throws(() => busOptionsFrom({ 'nats-token': 't' }, { NATS_USER: 'u', NATS_PASSWORD: 'p' }), /one authentication method/);
  t.throws(() => busOptionsFrom({ 'nats-tls-cert': 'c' }, {}), /needs both/);
  t.throws(() => busOptionsFrom({ 'nats-url': true }, {}), BusError);
  t.throws(() => busOptionsFrom({ 'nats-url': ' ' }, {}), /is empty/);
  t.throws(() => toConnectionOptions({ ...busOptionsFrom({}, {}), credsFile: '/nonexistent.creds' }), /cannot read the credentials file/);
});

t.test('user/password and token auth against a real server', async (t) => {
  const s = await NatsServer.start({ config: 'authorization { user: alice, password: s3cret }' });
  t.teardown(() => s.stop());
  const good = await connect(busOptionsFrom({ 'nats-url': s.url, 'nats-user': 'alice', 'nats-pass': 's3cret' }, {}));
  t.ok(good.info, 'connected with user/password');
  await good.close();
  await t.rejects(connect({ ...busOptionsFrom({ 'nats-url': s.url, 'nats-user': 'alice', 'nats-pass': 'wrong' }, {}), reconnect: false }));

  const tk = await NatsServer.start({ config: 'authorization { token: "tk1" }' });
  t.teardown(() => tk.stop());
  const nc = await connect(busOptionsFrom({}, { NATS_URL: tk.url, NATS_TOKEN: 'tk1' }));
  t.ok(nc.info, 'connected with a token from the environment');
  await nc.close();
});

t.test('nkey seed file is read (and a bad one is rejected clearly)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bus-'));
  const seed = join(dir, 'seed.nk');
  writeFileSync(seed, 'not-a-seed\n');
  const opts = toConnectionOptions({ ...busOptionsFrom({}, {}), nkeySeedFile: seed });
  t.ok(Array.isArray(opts.authenticator), 'an authenticator is configured');
});
