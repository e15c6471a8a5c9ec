import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../framework/cli/report.js';
import { buildDemoDatabase, XSS } from '../framework/report/demo-fixtures.js';
import { reportAll } from '../framework/report/generate.js';
import { openResultsDb } from '../framework/report/load.js';
import { assignSlugs, sanitize } from '../framework/report/slug.js';
import { openWritable } from '../framework/report/sqlite.js';

let dir: string;
let dbPath: string;
let out: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'report-output-'));
  dbPath = join(dir, 'results.db');
  out = join(dir, 'reports');
  buildDemoDatabase(dbPath);
  const db = openResultsDb(dbPath);
  try {
    await reportAll(db, { dbPath, outDir: out, now: new Date('2026-11-26T12:00:00Z') });
  } finally {
    db.close();
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

function read(...parts: string[]): string {
  return readFileSync(join(out, ...parts), 'utf8');
}

/** Runs main() with its output captured. */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

describe('files beside the page', () => {
  test('every experiment folder has the page, the tables and the plots', () => {
    for (const slug of ['ablation-a', 'ablation-a-disagree', 'ablation-b', 'scaling']) {
      for (const f of ['index.html', 'table.md', 'table.tex', 'table.csv', 'jobs.csv', 'curves.csv', 'figure1.csv', 'loss.png', 'accuracy-vs-step.png']) {
        assert.ok(existsSync(join(out, slug, f)), `${slug}/${f}`);
      }
    }
    // Figure 1: one plot, or one per block of the table (scaling has a block per model preset).
    for (const slug of ['ablation-a', 'ablation-a-disagree', 'ablation-b']) assert.ok(existsSync(join(out, slug, 'accuracy-vs-time.png')), slug);
    for (const preset of ['tiny', 'small']) assert.ok(existsSync(join(out, 'scaling', `accuracy-vs-time-${preset}.png`)), preset);
    assert.ok(existsSync(join(out, 'scaling', 'accuracy-vs-flops.png')));
    assert.ok(existsSync(join(out, 'ablation-a', 'zero_shot_top1-vs-mask.image_ratio.png')));
  });

  test('markdown rows', () => {
    const md = read('ablation-a', 'table.md');
    assert.ok(md.includes('| mask.image\\_ratio | n | zero-shot top-1 (%) | paper | zero-shot top-5 (%) |'), md);
    assert.ok(md.includes('| **0 (baseline)** | 3 | 32.0 ± 2.0 | 68.6 |'));
    assert.ok(md.includes('| 0.5 | 3 | 34.0 ± 1.0 | 69.6 |'));
    assert.ok(md.includes('| 0.75 | 2/3, 1 failed | 30.5 ± 0.7 | 68.2 |'));
    assert.ok(md.includes('| 50.0 ± 0.0 | 0.50x | 0.50x | 0.52x | 0.52x |'));
    const grid = read('ablation-b', 'table.md');
    assert.match(grid, /\| 64 \| 30\.5 ± 0\.7 \(n=2\) \| failed \|/);
    assert.match(grid, /\| 256 \| 34\.5 ± 0\.7 \(n=2\) \| — \|/);
  });

  test('Table 1(a) form: batch after n; each block leaves out what its budget fixes, in every format', () => {
    const md = read('ablation-a-budget', 'table.md');
    const [epochs, rest] = md.split('## budget = time');
    const time = rest!.split('\n- ')[0];
    assert.ok(epochs!.includes('| mask.image\\_ratio | n | batch | zero-shot top-1 (%) | paper |'), epochs);
    assert.ok(epochs!.includes('| train time (s) | time (rel.) | paper | FLOPs (rel.) | paper | peak memory (MiB) |'), epochs);
    assert.ok(!epochs!.includes('samples seen'));
    assert.ok(time!.includes('| T→I R@1 (%) | FLOPs (rel.) | paper | samples seen |'), time);
    assert.ok(!time!.includes('train time') && !time!.includes('time (rel.)'), time);
    assert.ok(md.includes('- budget = time: every job trains for the same 60 s (train.time\\_budget\\_s), so train time and its ratio are left out.'));
    assert.ok(md.includes('wall-clock time (rel.) [ours: budget = time]: not compared'));
    assert.ok(!md.includes('wall-clock time (rel.) [ours: budget = time]: disagrees'));
    const page = read('ablation-a-budget', 'index.html');
    assert.equal(page.match(/<table class="results">/g)?.length, 2);
    const csv = read('ablation-a-budget', 'table.csv').split('\n');
    assert.ok(!csv.some((l) => l.startsWith('time,') && /,train_seconds(_rel)?,/.test(l)), 'no train time cells in the equal-time block');
    assert.ok(csv.some((l) => l.startsWith('epochs,0.5,train_seconds_rel,ratio,')));
    const tex = read('ablation-a-budget', 'table.tex');
    assert.equal(tex.match(/\\begin\{tabular\}/g)?.length, 2);
  });

  test('latex booktabs rows', () => {
    const tex = read('ablation-a', 'table.tex');
    for (const s of ['\\toprule', '\\midrule', '\\bottomrule', '\\begin{tabular}']) assert.ok(tex.includes(s), s);
    assert.ok(tex.includes('\\rowcolor{gray!15}0 (baseline) & 3 & 32.0 $\\pm$ 2.0 & 68.6'), tex);
    assert.ok(tex.includes('0.75 & 2/3, 1 failed & 30.5 $\\pm$ 0.7'));
    assert.ok(tex.includes('0.50$\\times$'));
    assert.ok(tex.includes('mask.image\\_ratio'));
    const grid = read('ablation-b', 'table.tex');
    assert.ok(grid.includes('64 & 30.5 $\\pm$ 0.7 {\\scriptsize (n=2)} & failed'));
    assert.ok(grid.includes('256 & 34.5 $\\pm$ 0.7 {\\scriptsize (n=2)} & ---'));
  });

  test('csv: one line per cell, failed and missing included', () => {
    const lines = read('ablation-b', 'table.csv').trim().split('\n');
    assert.equal(lines[0], 'train.batch_size,column,unit,text,mean,std,n,jobs,status,baseline');
    assert.ok(lines.includes('64,zero_shot_top1@mask.image_ratio=0.75,percent,failed,,,0,2,failed,false'));
    assert.ok(lines.includes('256,zero_shot_top1@mask.image_ratio=0.75,percent,—,,,0,0,missing,false'));
    assert.ok(lines.some((l) => l.startsWith('128,zero_shot_top1@mask.image_ratio=0.5,percent,32.5 ± 0.7 (n=2),32.5,')));
    const scaling = read('scaling', 'table.csv').split('\n');
    assert.equal(scaling[0], 'model.preset,mask.image_ratio,column,unit,text,mean,std,n,jobs,status,baseline');
    assert.ok(scaling.some((l) => l.startsWith('small,0.5,train_seconds_rel,ratio,0.60x (n=1),0.6,')));
    const a = read('ablation-a', 'table.csv').split('\n');
    assert.ok(a.some((l) => l.startsWith('0.75,zero_shot_top1,percent,"30.5 ± 0.7 (n=2/3, 1 failed)",30.5,')), a.join('\n'));
  });

  test('the page holds the spec as written and resolved, per-job details and no remote resource', () => {
    const page = read('ablation-a', 'index.html');
    assert.ok(page.includes('extends: base.yaml'));
    assert.ok(page.includes('as resolved'));
    assert.ok(page.includes('Error: loss is NaN at step 7'));
    assert.ok(page.includes('<details id="job-'));
    assert.ok(page.includes('<tr class="baseline">'));
    assert.doesNotMatch(page, /(src|href)="(https?:)?\/\//);
    assert.doesNotMatch(page, /<script/i);
  });
});

describe('paper comparison', () => {
  test('agreement stated for a case that agrees', () => {
    const md = read('ablation-a', 'table.md');
    assert.match(md, /zero-shot top-1 \(%\): agrees: same ordering of the 3 rows and the same sign of every difference to the baseline \(0%\)/);
  });

  test('disagreement stated plainly', () => {
    const md = read('ablation-a-disagree', 'table.md');
    assert.ok(md.includes('zero-shot top-1 (%): disagrees: paper 69.6 > 68.6 at 50% vs 0%, ours 31.2 < 33.0'), md);
    const page = read('ablation-a-disagree', 'index.html');
    assert.ok(page.includes('<span class="verdict disagrees">disagrees</span>'));
  });

  test('labels matched by position are said so; a series without our results cannot be compared', () => {
    const md = read('ablation-b', 'table.md');
    assert.ok(md.includes('matched by position: 16384 → 64, 32768 → 128, 65536 → 256'), md);
    assert.ok(md.includes('mask 75%: cannot compare'));
  });
});

describe('escaping and folder names', () => {
  test('markup in names, descriptions, specs, labels and errors is text', () => {
    const slug = sanitize(XSS);
    assert.equal(slug, '_script_alert_1___script_');
    const page = read(slug, 'index.html');
    assert.doesNotMatch(page, /<script/i);
    assert.doesNotMatch(page, /<img src=x/);
    assert.doesNotMatch(page, /<b>0\.5<\/b>/);
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(read('index.html').includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  });

  test('folder names are sanitised and unique', () => {
    assert.equal(sanitize('a/b c'), 'a_b_c');
    assert.equal(sanitize('..'), '_..');
    const slugs = assignSlugs([{ id: 1, name: 'a/b' }, { id: 2, name: 'a_b' }, { id: 3, name: 'A_B' }]);
    assert.deepEqual([...slugs.values()], ['a_b', 'a_b-2', 'A_B-3']);
    assert.deepEqual([...assignSlugs([{ id: 4, name: 'index.html' }]).values()], ['index.html-4']);
  });
});

describe('index page', () => {
  test('links every experiment with its job counts', () => {
    const index = read('index.html');
    const row = (name: string): string => {
      const m = index.match(new RegExp(`<tr><th><a href="${name}/index.html">[^<]*</a></th>.*?</tr>`));
      assert.ok(m, name);
      return m[0];
    };
    const counts = (name: string): Record<string, number> =>
      Object.fromEntries([...row(name).matchAll(/data-status="(\w+)">(\d+)</g)].map((m) => [m[1]!, Number(m[2])]));
    assert.deepEqual(counts('ablation-a'), { pending: 0, running: 0, done: 8, failed: 1, interrupted: 0 });
    assert.deepEqual(counts('ablation-b'), { pending: 0, running: 2, done: 6, failed: 2, interrupted: 0 });
    assert.ok(row('ablation-a').includes('2026-11-2'), 'last update time');
    assert.ok(index.includes('href="_script_alert_1___script_/index.html"'));
  });
});

describe('command line', () => {
  test('unknown experiment: one paragraph naming it and the known ones, exit 1', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'framework/cli/report.ts', '--db', dbPath, '--out', out, '--experiment', 'nope'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no experiment named "nope"/);
    assert.match(r.stderr, /Known experiments: "ablation-a", "ablation-a-disagree", "ablation-b", "ablation-a-budget", "scaling"/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('missing database: exit 1 naming it', async () => {
    const r = await runCli(['--db', join(dir, 'none.db'), '--experiment', 'ablation-a']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /none\.db does not exist/);
  });

  test('a spec file argument reports the experiment its name: field names', async () => {
    const spec = join(dir, 'ablation-b.yaml');
    execFileSync('sh', ['-c', `printf 'name: ablation-b\\naxes: {}\\n' > '${spec}'`]);
    const r = await runCli([spec, '--db', dbPath, '--out', join(dir, 'single')]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'single', 'ablation-b', 'index.html')));
  });

  test('reads while a writer holds an open transaction (WAL)', async () => {
    const writer = openWritable(dbPath);
    try {
      writer.exec('BEGIN IMMEDIATE');
      writer.prepare("UPDATE jobs SET status = 'running' WHERE status = 'done'").run();
      const r = await runCli(['--db', dbPath, '--out', join(dir, 'during'), '--experiment', 'ablation-a']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(join(dir, 'during', 'ablation-a', 'table.md'), 'utf8').includes('| **0 (baseline)** | 3 | 32.0 ± 2.0 |'));
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
    }
  });
});
