#!/usr/bin/env -S node --import tsx
// Coverage policy (see README "Tests"): tap 21 can only demand 100 % or nothing, so every
// lib runs tap with `allow-incomplete-coverage` and then this gate, which compares tap's
// json-summary with the thresholds the lib declares in its package.json under "coverageGate".
// Thresholds are set to what each lib actually meets, so a drop fails the build.
import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';

type Metric = 'lines' | 'branches' | 'functions' | 'statements';
interface Summary {
  total: Record<Metric, { pct: number | 'Unknown'; total: number }>;
}

const cwd = process.cwd();
const pkg = JSON.parse(readFileSync(resolve(cwd, 'package.json'), 'utf8')) as {
  name: string;
  coverageGate?: Partial<Record<Metric, number>>;
};
const thresholds = pkg.coverageGate ?? {};
const summaryPath = resolve(cwd, '.tap/report/coverage-summary.json');
if (!existsSync(summaryPath)) {
  console.error(`coverage-gate: ${summaryPath} is missing; run tap first (with coverage-report json-summary).`);
  process.exit(1);
}
const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as Summary;
const failures: string[] = [];
for (const [metric, min] of Object.entries(thresholds) as [Metric, number][]) {
  const got = summary.total[metric];
  const pct = got === undefined || got.pct === 'Unknown' ? 0 : got.pct;
  if (pct < min) failures.push(`${metric} ${pct.toFixed(1)} % < ${min} %`);
}
if (failures.length > 0) {
  console.error(`coverage-gate: ${pkg.name} is below its declared coverage: ${failures.join(', ')}`);
  process.exit(1);
}
console.log(`coverage-gate: ${pkg.name} meets ${JSON.stringify(thresholds)}`);
