import t from 'tap';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { ChecksumError, ZipError, fetchMovieLens, listZip, parseMd5, unzip, verifyMd5 } from '../mod.ts';

/** A minimal zip writer for fixtures (deflate or stored). */
function makeZip(files: Record<string, string>, method: 0 | 8 = 8): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const comp = method === 8 ? deflateRawSync(data) : data;
    const nameBuf = Buffer.from(name);
    const crc = crc32(data) >>> 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(comp.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(comp.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, comp);
    centrals.push(central, nameBuf);
    offset += 30 + nameBuf.length + comp.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const udata = '196\t242\t3\t881250949\n186\t302\t3\t891717742\n';

t.test('unzip: deflate and stored entries, CRC and path checks', async (t) => {
  const dir = t.testdir({});
  const zip = join(dir, 'a.zip');
  writeFileSync(zip, makeZip({ 'ml-100k/u.data': udata, 'ml-100k/README': 'hi' }));
  const written = unzip(zip, join(dir, 'out'));
  t.equal(written.length, 2);
  t.equal(readFileSync(join(dir, 'out', 'ml-100k', 'u.data'), 'utf8'), udata);
  const stored = join(dir, 's.zip');
  writeFileSync(stored, makeZip({ 'x.txt': 'plain' }, 0));
  t.equal(listZip(readFileSync(stored))[0].size, 5);
  const corrupt = makeZip({ 'x.txt': 'hello hello hello' }, 0);
  corrupt[37] ^= 0xff; // inside the stored data (30-byte header + 5-byte name)
  writeFileSync(join(dir, 'c.zip'), corrupt);
  t.throws(() => unzip(join(dir, 'c.zip'), join(dir, 'c')), /CRC/);
  writeFileSync(join(dir, 'evil.zip'), makeZip({ '../evil.txt': 'x' }));
  t.throws(() => unzip(join(dir, 'evil.zip'), join(dir, 'e')), /outside the target dir/);
  writeFileSync(join(dir, 'no.zip'), 'not a zip');
  t.throws(() => unzip(join(dir, 'no.zip'), dir), ZipError);
});

t.test('checksums', async (t) => {
  const dir = t.testdir({ 'f.bin': 'abc' });
  t.equal(parseMd5('900150983cd24fb0d6963f7d28e17f72  f.bin'), '900150983cd24fb0d6963f7d28e17f72');
  t.equal(parseMd5('MD5 (f.bin) = 900150983CD24FB0D6963F7D28E17F72'), '900150983cd24fb0d6963f7d28e17f72');
  t.throws(() => parseMd5('nothing here'), /not an MD5/);
  await verifyMd5(join(dir, 'f.bin'), '900150983cd24fb0d6963f7d28e17f72');
  await t.rejects(verifyMd5(join(dir, 'f.bin'), '0'.repeat(32)), ChecksumError);
});

t.test('full path against a loopback server: download, verify, unpack; a bad checksum deletes the download', async (t) => {
  const zip = makeZip({ 'ml-100k/u.data': udata });
  let served = md5(zip);
  const server = createServer((req, res) => {
    if (req.url === '/ml-100k.zip') {
      res.setHeader('content-length', zip.length);
      res.end(zip);
    } else if (req.url === '/ml-100k.zip.md5') res.end(`${served}  ml-100k.zip\n`);
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = t.testdir({});
  const lines: string[] = [];
  const ratings = await fetchMovieLens({ name: 'ml-100k', dir, baseUrl: base, log: (l) => lines.push(l) });
  t.equal(readFileSync(ratings, 'utf8'), udata);
  t.ok(lines.some((l) => /verifying MD5/.test(l)));
  const dir2 = t.testdir({});
  served = '0'.repeat(32);
  await t.rejects(fetchMovieLens({ name: 'ml-100k', dir: dir2, baseUrl: base }), ChecksumError);
  t.notOk(existsSync(join(dir2, 'ml-100k.zip')), 'bad download removed');
  await t.rejects(fetchMovieLens({ name: 'ml-1m', dir: dir2, baseUrl: base }), /HTTP 404/);
  const local = join(dir2, 'local.zip');
  writeFileSync(local, zip);
  const offline = await fetchMovieLens({ name: 'ml-100k', dir: dir2, zip: local, md5: md5(zip) });
  t.ok(existsSync(offline));
});
