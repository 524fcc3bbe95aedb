#!/usr/bin/env python3
"""Compares `bert wikiextract` with the `wikiextractor` package on the real dumps in ../shared/datasets/wikipedia/dump.

Runs both on each dump (wikiextractor as NVIDIA's bertPrep.py runs it: `-b 100M`, templates of the dump, default
cleaning), pairs the articles by id and reports, per dump: the share of articles whose text (title line dropped) is
identical after whitespace normalisation, the token F1 (whitespace tokens, multiset overlap) of the others, and the
throughput of each (MB of compressed dump per second, best of --repeats runs, same machine).

Writes the fixture Tests/Fixtures/wikipedia/ that WikipediaDumpTests reads:
  reference_articles.jsonl  wikiextractor's text of a few articles of each dump (id, title, paragraphs)
  agreement.json            per-dump figures and per-article agreement (id -> identical / token F1)

Needs: python3 -m venv /work/venv-wiki && /work/venv-wiki/bin/pip install wikiextractor   (3.1.0 measured)
Usage: /work/venv-wiki/bin/python scripts/reference/wikiextractor_reference.py --bert .build/release/bert
"""
import argparse, bz2, collections, json, os, re, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMPS = os.path.join(ROOT, '..', 'shared', 'datasets', 'wikipedia', 'dump')
FILES = ['enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2', 'enwiki-table-markup.xml.bz2']
# Articles whose expected text goes into the fixture (about 125 KB): short and long, tables, templates, quotes.
FIXTURE_IDS = {'25', '39', '290', '305', '217916'}
DOC_RE = re.compile(r'<doc id="([^"]*)" url="[^"]*" title="([^"]*)">\n(.*?)\n</doc>\n', re.S)


def read_docs(directory):
    docs = collections.OrderedDict()
    for sub in sorted(os.listdir(directory)):
        for name in sorted(os.listdir(os.path.join(directory, sub))):
            with open(os.path.join(directory, sub, name), encoding='utf-8') as f:
                for m in DOC_RE.finditer(f.read()):
                    lines = m.group(3).split('\n')[1:]          # the title line dropped
                    docs[m.group(1)] = (m.group(2), [l for l in lines if l.strip()])
    return docs


def normalise(paragraphs):
    return ' '.join(' '.join(paragraphs).split())


def token_f1(a, b):
    ta, tb = collections.Counter(a.split()), collections.Counter(b.split())
    common = sum((ta & tb).values())
    if not ta and not tb:
        return 1.0
    if common == 0:
        return 0.0
    p, r = common / sum(ta.values()), common / sum(tb.values())
    return 2 * p * r / (p + r)


def with_siteinfo(dump, donor, workdir):
    """`dump` itself when it has a <siteinfo>; else a bzip2 copy with the donor dump's <siteinfo> after its first line.
    wikiextractor skips every page of an export without one (no Template namespace is then known, and its test
    `title.startswith(templateNamespace)` holds for the empty prefix), so the table-markup dump gets enwiki's."""
    with bz2.open(dump, 'rt', encoding='utf-8') as f:
        text = f.read()
    if '<siteinfo>' in text[:65536]:
        return dump
    with bz2.open(donor, 'rt', encoding='utf-8') as f:
        head = f.read(65536)
    siteinfo = head[head.index('  <siteinfo>'):head.index('</siteinfo>') + len('</siteinfo>\n')]
    first_line_end = text.index('\n') + 1
    path = os.path.join(workdir, 'with-siteinfo-' + os.path.basename(dump))
    with bz2.open(path, 'wt', encoding='utf-8') as f:
        f.write(text[:first_line_end] + siteinfo + text[first_line_end:])
    return path


def timed(cmd, repeats):
    best = None
    for _ in range(repeats):
        out = tempfile.mkdtemp()
        shutil.rmtree(out)
        t = time.perf_counter()
        subprocess.run(cmd(out), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t
        best = elapsed if best is None else min(best, elapsed)
        keep = out
    return best, keep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bert', default=os.path.join(ROOT, '.build', 'release', 'bert'))
    ap.add_argument('--wikiextractor', default=os.path.join(os.path.dirname(sys.executable), 'wikiextractor'))
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    args = ap.parse_args()
    fixture = os.path.join(ROOT, 'Tests', 'Fixtures', 'wikipedia')
    os.makedirs(fixture, exist_ok=True)
    summary, articles = {}, []
    workdir = tempfile.mkdtemp()
    for name in FILES:
        dump = os.path.join(DUMPS, name)
        size = os.path.getsize(dump)
        ref_input = with_siteinfo(dump, os.path.join(DUMPS, FILES[0]), workdir)
        ref_s, ref_dir = timed(lambda o: [args.wikiextractor, ref_input, '-o', o, '-b', '100M', '-q',
                                          '--processes', str(args.threads)], args.repeats)
        ours_s, ours_dir = timed(lambda o: [args.bert, 'wikiextract', '--input', dump, '--output', o,
                                            '--bytes', '100M', '--threads', str(args.threads)], args.repeats)
        ref, ours = read_docs(ref_dir), read_docs(ours_dir)
        per_article, identical, f1s = {}, 0, []
        for doc_id, (title, paragraphs) in ref.items():
            mine = normalise(ours.get(doc_id, ('', []))[1])
            theirs = normalise(paragraphs)
            if mine == theirs:
                identical += 1
                per_article[doc_id] = {'title': title, 'identical': True, 'f1': 1.0}
            else:
                f1 = token_f1(mine, theirs)
                f1s.append(f1)
                per_article[doc_id] = {'title': title, 'identical': False, 'f1': round(f1, 4)}
            if doc_id in FIXTURE_IDS:
                articles.append({'dump': name, 'id': doc_id, 'title': title, 'paragraphs': paragraphs})
        summary[name] = {
            'articles_reference': len(ref), 'articles_ours': len(ours),
            'same_ids': list(ref.keys()) == list(ours.keys()),
            'identical_share': round(identical / max(1, len(ref)), 4),
            'mean_token_f1_of_the_rest': round(sum(f1s) / len(f1s), 4) if f1s else None,
            'min_token_f1': round(min(f1s), 4) if f1s else None,
            'mean_token_f1_all': round((identical + sum(f1s)) / max(1, len(ref)), 4),
            'dump_bytes': size,
            'seconds_wikiextractor': round(ref_s, 3), 'seconds_ours': round(ours_s, 3),
            'mb_per_s_wikiextractor': round(size / 1e6 / ref_s, 3), 'mb_per_s_ours': round(size / 1e6 / ours_s, 3),
            'threads': args.threads, 'articles': per_article,
        }
        shutil.rmtree(ref_dir)
        shutil.rmtree(ours_dir)
    shutil.rmtree(workdir)
    with open(os.path.join(fixture, 'agreement.json'), 'w') as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
        f.write('\n')
    with open(os.path.join(fixture, 'reference_articles.jsonl'), 'w') as f:
        for a in articles:
            f.write(json.dumps(a, ensure_ascii=False) + '\n')
    for name, s in summary.items():
        print(json.dumps({k: v for k, v in s.items() if k != 'articles'}))


if __name__ == '__main__':
    main()
