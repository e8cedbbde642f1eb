import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, FormatError, ParseError, detectFormat, loadRatings } from '../mod.ts';

const dir = t.testdir({
  'u.data': '196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n',
  'ratings.dat': '1::1193::5::978300760\r\n1::661::3::978302109\r\n2::1193::4::978298413\r\n',
  'ratings.csv': 'userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n6,1,0.5,845553522\n',
  'combined_data_1.txt': '1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n1488844,4,2005-09-07\n',
  'plays.tsv': 'who\twhat\tscore\nalice\tsong-a\t2\nbob\tsong-a\t1\nalice\tsong-b\t5\n',
  'noheader.csv': 'x,alice,a\ny,bob,b\n',
  'bad.data': '1\t2\t3\t4\n1\tx\t3\t4\n2\t2\t\t4\n3\t3\t5\n4\t4\t4\t4\n',
  'mystery.txt': 'hello world\n',
  'empty.csv': 'userId,movieId,rating,timestamp\n',
  'no-newline.dat': '1::2::3::4',
});

t.test('MovieLens u.data (tab)', async (t) => {
  const r = await loadRatings(join(dir, 'u.data'));
  t.equal(r.format, 'ml-100k');
  t.equal(r.ratings.length, 3);
  t.same([...r.ratings.user], [0, 1, 0]);
  t.same([...r.ratings.item], [0, 1, 2]);
  t.same([...r.ratings.rating], [3, 3, 1]);
  t.same([...(r.ratings.timestamp ?? [])], [881250949, 891717742, 878887116]);
  t.equal(r.users.decode(1), 186);
  t.equal(r.items.get(377), 2);
});

t.test('MovieLens ratings.dat (::, CRLF) and ratings.csv (header, half stars)', async (t) => {
  const dat = await loadRatings(join(dir, 'ratings.dat'));
  t.equal(dat.format, 'ml-1m');
  t.same([...dat.ratings.rating], [5, 3, 4]);
  t.equal(dat.users.size, 2);
  const csv = await loadRatings(join(dir, 'ratings.csv'));
  t.equal(csv.format, 'ml-csv');
  t.same([...csv.ratings.rating], [4, 4.5, 0.5]);
  t.equal(csv.items.size, 2);
  const last = await loadRatings(join(dir, 'no-newline.dat'));
  t.equal(last.ratings.length, 1, 'last line without a newline counts');
});

t.test('Netflix Prize combined_data', async (t) => {
  const r = await loadRatings(join(dir, 'combined_data_1.txt'));
  t.equal(r.format, 'netflix');
  t.same([...r.ratings.user], [0, 1, 0]);
  t.same([...r.ratings.item], [0, 0, 1]);
  t.same([...r.ratings.rating], [3, 5, 4]);
  t.equal(r.ratings.timestamp?.[0], Date.parse('2005-09-06') / 1000);
});

t.test('generic CSV/TSV with a column mapping (string ids, by name or index)', async (t) => {
  const r = await loadRatings(join(dir, 'plays.tsv'), { format: 'generic', mapping: { delimiter: '\t', header: true, user: 'who', item: 'what', rating: 'score' } });
  t.same([...r.ratings.user], [0, 1, 0]);
  t.equal(r.users.decode(0), 'alice');
  t.equal(r.items.decode(1), 'song-b');
  t.same([...r.ratings.rating], [2, 1, 5]);
  t.equal(r.ratings.timestamp, undefined);
  const implicit = await loadRatings(join(dir, 'noheader.csv'), { mapping: { delimiter: ',', header: false, user: 1, item: 2 } });
  t.same([...implicit.ratings.rating], [1, 1], 'no rating column: interactions');
  await t.rejects(loadRatings(join(dir, 'plays.tsv'), { mapping: { delimiter: '\t', header: true, user: 'who', item: 'nope' } }), /header has no column 'nope'/);
  await t.rejects(loadRatings(join(dir, 'noheader.csv'), { mapping: { delimiter: ',', header: false, user: 'x', item: 1 } }), /has no header/);
  await t.rejects(loadRatings(join(dir, 'plays.tsv'), { format: 'generic' }), FormatError);
});

t.test('malformed lines: file, line number and reason; or skipped and counted', async (t) => {
  await t.rejects(loadRatings(join(dir, 'bad.data')), ParseError);
  await t.rejects(loadRatings(join(dir, 'bad.data')), /bad\.data:2: item id 'x' is not a number/);
  const skipped = await loadRatings(join(dir, 'bad.data'), { skipBadLines: true });
  t.equal(skipped.ratings.length, 2);
  t.equal(skipped.skipped, 3);
  t.same(
    skipped.firstErrors.map((e) => e.line),
    [2, 3, 4],
  );
  t.match(skipped.firstErrors[1].message, /rating is missing/);
  t.match(skipped.firstErrors[2].message, /expected at least 4 fields/);
});

t.test('unknown format, missing file, empty file', async (t) => {
  t.throws(() => detectFormat(join(dir, 'mystery.txt')), /cannot tell the format/);
  await t.rejects(loadRatings(join(dir, 'nope.csv')), /no such file/);
  await t.rejects(loadRatings(join(dir, 'empty.csv')), DataError);
});

t.test('streams big files in chunks with progress and a limit', async (t) => {
  const path = join(dir, 'big.csv');
  const rows = 600_000;
  let text = 'userId,movieId,rating,timestamp\n';
  for (let i = 0; i < rows; i++) text += `${i % 5000},${i % 977},${(i % 5) + 1},${1e9 + i}\n`;
  writeFileSync(path, text);
  const progress: number[] = [];
  const r = await loadRatings(path, { onProgress: (p) => progress.push(p.rows) });
  t.equal(r.ratings.length, rows);
  t.equal(r.users.size, 5000);
  t.ok(progress.length >= 1 && progress[progress.length - 1] === rows);
  const few = await loadRatings(path, { limit: 10 });
  t.equal(few.ratings.length, 10);
});
