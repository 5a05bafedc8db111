"""Search benchmark: our TantivyIndex vs raw tantivy vs SQLite FTS5 on the same German corpus.

Generates deterministic German-like IAS documents over 200 units and 20,000 cases, indexes
them into each engine (docs/s), then measures query latency (p50/p95/p99) for a canton user
(no case filter), a municipality user (the ~100 cases of one unit) and an organisation user
(10 cases), with facets as the service asks for them. Raw tantivy on the same data and
queries (default tokenizer, one body field) gives our overhead as p95 ratios: doing the
same work (count, page, type/year/unit aggregations, tantivy's own snippets), and search
only on both sides. FTS5 is a peer baseline.

    .venv/bin/python -m bench.search --docs 100000 --queries 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from bench.common import machine_info, markdown_table, write_json
from search import IndexedDocument, SearchFilter, SearchRequest, open_index
from search.base import MAX_FACET_SIZE

UNITS = 200
CASES = 20_000
ORG_CASES = 10
MOVED = 20
SEED = 20260

# Domain nouns in several inflections, so stemming and folding have work to do.
DOMAIN = (
    "Integrationskurs Integrationskurses Integrationskurse Kostengutsprache Kostengutsprachen "
    "Sprachkurs Sprachkurses Sprachkurse Vorlehre Vorlehren Standortgespräch Standortgespräche "
    "Standortgesprächs Wohnung Wohnungen Arbeit Arbeitgeber Arbeitsstelle Lehrstelle "
    "Integrationsplan Integrationspläne Potenzialabklärung Kurzassessment Schlussbericht "
    "Vereinbarung Vereinbarungen Deutschkurs Deutschkurse Sprachniveau Kinderbetreuung "
    "Sozialhilfe Gemeinde Gemeinden Fallführung Zertifikat Kursbestätigung Programmanmeldung "
    "Beschäftigungsprogramm Praktikum Praktika Bewerbung Bewerbungen Gesundheit Arzttermin "
    "Schulbesuch Ausbildung Ausbildungen Übersetzung Dolmetscher Familie Kinder Nachzug "
    "Aufenthaltsbewilligung Mietvertrag Krankenkasse Prämienverbilligung Berufsberatung"
).split()
VERBS = (
    "besucht besuchte erteilt beantragt vereinbart abgeschlossen begonnen abgebrochen geprüft "
    "bestätigt bewilligt abgelehnt gemeldet angemeldet verlängert organisiert gefunden gesucht"
).split()
FILLER = (
    "der die das und mit für im in am zum zur von wurde hat ist sind nicht noch bereits "
    "gemäss sowie bei nach vor seit wegen Frau Herr Klientin Klient heute Woche Monat"
).split()
NAMES = (
    "Müller Schärer Bürgi Käser Lüthi Jörg Gysi Häfliger Zürcher Bächli Rüegg Hürlimann "
    "Haile Tesfay Yılmaz Öztürk Ahmadi Karimi Nguyễn Šimić Ćosić Mahmoud Abdi Semhar Ayşe"
).split()
BIGRAMS = (
    "Kostengutsprache erteilt",
    "Integrationskurs besucht",
    "Standortgespräch vereinbart",
    "Vorlehre begonnen",
    "Wohnung gefunden",
    "Sprachkurs abgeschlossen",
)
DOC_TYPES = (
    "meeting_record",
    "cost_approval_decision",
    "integration_plan",
    "end_report",
    "correspondence",
    "certificate",
    "other",
)
EPOCH = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Doc:
    """One generated document version, engine-neutral."""

    doc_id: str
    case_id: str
    type: str
    title: str
    text: str
    names: str
    created_at: dt.datetime


def unit_cases(unit: int) -> list[str]:
    """Case ids held by *unit*: case ``j`` belongs to unit ``j % UNITS`` (100 cases each)."""
    return [f"c{j:05d}" for j in range(unit, CASES, UNITS)]


def generate(count: int, seed: int = SEED) -> list[Doc]:
    """*count* deterministic German-like documents spread over the cases."""
    rng = random.Random(seed)
    # Zipf-like weights: a few words are everywhere, most are rare (as in real dossiers).
    vocab = FILLER + DOMAIN + VERBS
    weights = [3.0] * len(FILLER) + [1.0 / (1 + i % 17) for i in range(len(DOMAIN))]
    weights += [0.5] * len(VERBS)
    docs = []
    for i in range(count):
        words = rng.choices(vocab, weights, k=rng.randint(40, 120))
        words.insert(rng.randrange(len(words)), rng.choice(BIGRAMS))
        given, family = rng.choice(NAMES), rng.choice(NAMES)
        words.insert(0, f"{given} {family}")
        docs.append(
            Doc(
                doc_id=f"d{i:07d}",
                case_id=f"c{rng.randrange(CASES):05d}",
                type=rng.choice(DOC_TYPES),
                title=" ".join(rng.choices(DOMAIN, k=3)),
                text=" ".join(words) + ".",
                names=f"{given} {family}",
                created_at=EPOCH + dt.timedelta(minutes=rng.randrange(8 * 365 * 24 * 60)),
            )
        )
    return docs


@dataclass(frozen=True)
class Query:
    """One benchmark query as clauses: (kind, words), kind in term/phrase/prefix/exclude."""

    kind: str
    clauses: tuple[tuple[str, str], ...]

    def ours(self) -> str:
        """In our caseworker query language."""
        parts = []
        for kind, words in self.clauses:
            parts.append(
                {
                    "term": words,
                    "phrase": f'"{words}"',
                    "prefix": f"{words}*",
                    "exclude": f"-{words}",
                }[kind]
            )
        return " ".join(parts)

    def fts5(self) -> str:
        """As an FTS5 MATCH expression (NOT is binary there: group the positive part)."""
        positive = " AND ".join(
            f'"{w}"' if k in ("term", "phrase") else f'"{w}" *'
            for k, w in self.clauses
            if k != "exclude"
        )
        negative = [w for k, w in self.clauses if k == "exclude"]
        return f'({positive}) NOT "{negative[0]}"' if negative else positive


def make_queries(count: int, seed: int = SEED + 1) -> list[Query]:
    """A deterministic mix: 40% one word, 20% two words, 15% phrase, 15% prefix, 10% exclusion."""
    rng = random.Random(seed)
    domain = [w.lower() for w in DOMAIN]
    queries = []
    for i in range(count):
        slot = i % 20
        if slot < 8:
            queries.append(Query("one word", (("term", rng.choice(domain)),)))
        elif slot < 12:
            a, b = rng.sample(domain, 2)
            queries.append(Query("two words", (("term", a), ("term", b))))
        elif slot < 15:
            queries.append(Query("phrase", (("phrase", rng.choice(BIGRAMS).lower()),)))
        elif slot < 18:
            queries.append(Query("prefix", (("prefix", rng.choice(domain)[:5]),)))
        else:
            a, b = rng.sample(domain, 2)
            queries.append(Query("exclusion", (("term", a), ("exclude", b))))
    return queries


def user_filters(count: int, seed: int = SEED + 2) -> dict[str, list[frozenset[str] | None]]:
    """Per query, the readable case ids of each kind of user (None = canton, everything)."""
    rng = random.Random(seed)
    municipality, organisation = [], []
    for _ in range(count):
        municipality.append(frozenset(unit_cases(rng.randrange(UNITS))))
        organisation.append(frozenset(rng.sample(unit_cases(rng.randrange(UNITS)), ORG_CASES)))
    return {"canton": [None] * count, "municipality": municipality, "organisation": organisation}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of *values* (milliseconds in, milliseconds out)."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def time_queries(
    run: Callable[[Query, frozenset[str] | None], int],
    queries: list[Query],
    filters: list[frozenset[str] | None],
) -> dict[str, Any]:
    """Latency percentiles (ms) of ``run`` over the queries, after a short warm-up."""
    for query, case_ids in list(zip(queries, filters, strict=True))[:10]:
        run(query, case_ids)
    latencies, hits = [], 0
    for query, case_ids in zip(queries, filters, strict=True):
        start = time.perf_counter()
        hits += run(query, case_ids)
        latencies.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "mean_hits": round(hits / len(queries), 1),
    }


# --- our index ---------------------------------------------------------------------------


def ours_documents(docs: list[Doc]) -> Iterator[IndexedDocument]:
    """The generated documents as the service hands them to the index."""
    for doc in docs:
        yield IndexedDocument(
            document_id=doc.doc_id,
            version=1,
            case_id=doc.case_id,
            case_reference=f"IAS-2026-{int(doc.case_id[1:]):06d}",
            type=doc.type,
            title=doc.title,
            text=doc.text,
            person_names=doc.names,
            zemis="",
            ahv="",
            created_at=doc.created_at,
            is_current=True,
            unit=f"u{int(doc.case_id[1:]) % UNITS:03d}",
        )


def bench_ours(
    docs: list[Doc], work: Path
) -> tuple[float, Callable[..., int], Callable[..., int], Any]:
    """Index via TantivyIndex.rebuild(); return (seconds, service-like and bare runners, index)."""
    index = open_index("tantivy", path=str(work / "ours"))
    start = time.perf_counter()
    index.rebuild(ours_documents(docs))
    elapsed = time.perf_counter() - start

    # A day's transfers: the service double-checks the unit facet for these cases.
    moved = frozenset(f"c{j:05d}" for j in random.Random(SEED + 3).sample(range(CASES), MOVED))

    def run(query: Query, case_ids: frozenset[str] | None) -> int:
        # Exactly what services/search.py asks for: facets, highlight, full facet size,
        # the per-case breakdown for recently moved cases the caller may read.
        request = SearchRequest(
            query=query.ours(),
            filter=SearchFilter(case_ids=case_ids),
            facets=True,
            highlight=True,
            facet_size=MAX_FACET_SIZE,
            unit_check_cases=moved if case_ids is None else moved & case_ids,
        )
        return index.search(request).total

    def run_bare(query: Query, case_ids: frozenset[str] | None) -> int:
        # Same query without facets and highlight: splits the overhead into its causes.
        request = SearchRequest(
            query=query.ours(),
            filter=SearchFilter(case_ids=case_ids),
            facets=False,
            highlight=False,
        )
        return index.search(request).total

    return elapsed, run, run_bare, index


# --- raw tantivy -------------------------------------------------------------------------


def bench_raw(docs: list[Doc], work: Path) -> tuple[float, Callable[..., int], Callable[..., int]]:
    """A plain tantivy index (default tokenizer, one body field, fast case/type/year/unit).

    Two runners: search only (count + a page of stored ids), and the same work the service
    asks of ours (plus type/year/unit terms aggregations and tantivy's own snippets).
    """
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("doc_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("case_id", stored=False, tokenizer_name="raw", fast=True)
    builder.add_text_field("type", stored=False, tokenizer_name="raw", fast=True)
    builder.add_text_field("unit", stored=False, tokenizer_name="raw", fast=True)
    builder.add_integer_field("year", stored=False, indexed=True, fast=True)
    builder.add_text_field("body", stored=True)
    schema = builder.build()
    (work / "raw").mkdir()
    index = tantivy.Index(schema, path=str(work / "raw"))
    start = time.perf_counter()
    writer = index.writer(heap_size=256_000_000, num_threads=2)
    for doc in docs:
        writer.add_document(
            tantivy.Document(
                doc_id=doc.doc_id,
                case_id=doc.case_id,
                type=doc.type,
                unit=f"u{int(doc.case_id[1:]) % UNITS:03d}",
                year=doc.created_at.year,
                body=f"{doc.title} {doc.names} {doc.text}",
            )
        )
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    elapsed = time.perf_counter() - start
    searcher = index.searcher()
    must, must_not = tantivy.Occur.Must, tantivy.Occur.MustNot

    def clause(kind: str, words: str) -> tantivy.Query:
        if kind == "phrase":
            return tantivy.Query.phrase_query(schema, "body", words.split())
        if kind == "prefix":
            return tantivy.Query.regex_query(schema, "body", f"{words}.*")
        return tantivy.Query.term_query(schema, "body", words)

    def compile_query(query: Query, case_ids: frozenset[str] | None) -> tantivy.Query:
        parts = [(must_not if k == "exclude" else must, clause(k, w)) for k, w in query.clauses]
        if case_ids is not None:
            # A term set is tantivy's fastest way to say "one of these cases".
            parts.append((must, tantivy.Query.term_set_query(schema, "case_id", sorted(case_ids))))
        return tantivy.Query.boolean_query(parts)

    def run(query: Query, case_ids: frozenset[str] | None) -> int:
        result = searcher.search(compile_query(query, case_ids), limit=20, count=True)
        for _score, address in result.hits:
            searcher.doc(address)  # load the page's stored ids, as any caller would
        return int(result.count or 0)

    facets = {name: {"terms": {"field": name, "size": 1000}} for name in ("type", "year", "unit")}

    def run_same_work(query: Query, case_ids: frozenset[str] | None) -> int:
        compiled = compile_query(query, case_ids)
        result = searcher.search(compiled, limit=20, count=True)
        searcher.aggregate(compiled, facets)
        snippets = tantivy.SnippetGenerator.create(searcher, compiled, schema, "body")
        snippets.set_max_num_chars(200)
        for _score, address in result.hits:
            snippets.snippet_from_doc(searcher.doc(address)).to_html()
        return int(result.count or 0)

    return elapsed, run, run_same_work


# --- SQLite FTS5 -------------------------------------------------------------------------


def bench_fts5(docs: list[Doc], work: Path) -> tuple[float, Callable[..., int]]:
    """An FTS5 table (unicode61, diacritics removed), filtered by ``case_id IN (...)``."""
    conn = sqlite3.connect(work / "fts5.sqlite")
    conn.execute(
        "CREATE VIRTUAL TABLE docs USING fts5(body, case_id UNINDEXED, doc_id UNINDEXED, "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    start = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO docs(body, case_id, doc_id) VALUES (?, ?, ?)",
            ((f"{d.title} {d.names} {d.text}", d.case_id, d.doc_id) for d in docs),
        )
    elapsed = time.perf_counter() - start

    def run(query: Query, case_ids: frozenset[str] | None) -> int:
        where, args = "docs MATCH ?", [query.fts5()]
        if case_ids is not None:
            where += f" AND case_id IN ({','.join('?' * len(case_ids))})"
            args += sorted(case_ids)
        # A page ranked by bm25 plus the total, like a search results page.
        conn.execute(
            f"SELECT doc_id FROM docs WHERE {where} ORDER BY rank LIMIT 20", args
        ).fetchall()
        return int(conn.execute(f"SELECT count(*) FROM docs WHERE {where}", args).fetchone()[0])

    return elapsed, run


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print Markdown tables and write bench/out/search-<ts>.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where the indexes go (default: a temporary directory)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the indexes afterwards")
    args = parser.parse_args(argv)

    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-search-", dir=args.work_dir))
    info = machine_info(work)
    try:
        start = time.perf_counter()
        docs = generate(args.docs)
        print(
            f"generated {len(docs)} documents in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        queries = make_queries(args.queries)
        filters = user_filters(args.queries)
        engines: dict[str, tuple[float, Callable[..., int]]] = {}
        ours_seconds, ours_run, ours_bare, ours_index = bench_ours(docs, work)
        engines["ours (TantivyIndex)"] = (ours_seconds, ours_run)
        engines["ours, no facets/highlight"] = (ours_seconds, ours_bare)
        raw_seconds, raw_run, raw_same_work = bench_raw(docs, work)
        engines["raw tantivy"] = (raw_seconds, raw_run)
        engines["raw tantivy + facets/snippets"] = (raw_seconds, raw_same_work)
        engines["SQLite FTS5"] = bench_fts5(docs, work)
        results: dict[str, Any] = {}
        for name, (seconds, run) in engines.items():
            print(f"{name}: indexed in {seconds:.1f} s; querying", file=sys.stderr)
            results[name] = {
                "index_seconds": round(seconds, 2),
                "docs_per_s": round(len(docs) / seconds),
                "users": {user: time_queries(run, queries, filters[user]) for user in filters},
            }
        ours_index.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def ratio(ours: str, raw: str, user: str) -> float:
        return round(
            results[ours]["users"][user]["p95_ms"]
            / max(results[raw]["users"][user]["p95_ms"], 0.01),
            2,
        )

    comparisons = {
        "same work": ("ours (TantivyIndex)", "raw tantivy + facets/snippets"),
        "search only": ("ours, no facets/highlight", "raw tantivy"),
        "ours with facets/highlights vs raw search only": ("ours (TantivyIndex)", "raw tantivy"),
    }
    overhead = {
        label: {user: ratio(ours, raw, user) for user in filters}
        for label, (ours, raw) in comparisons.items()
    }
    rows = [
        [name, user, r["docs_per_s"], u["p50_ms"], u["p95_ms"], u["p99_ms"], u["mean_hits"]]
        for name, r in results.items()
        for user, u in r["users"].items()
    ]
    print(
        f"\n**Machine:** {info['cpu_model']}, {info['cpu_cores']} cores, {info['ram_gib']} GiB "
        f"RAM, Python {info['python']}, load average at start {info['load_average_1m']}"
    )
    print(
        f"**Corpus:** {len(docs)} documents, {UNITS} units, {CASES} cases; "
        f"{args.queries} queries per user (facets + highlight for ours)\n"
    )
    print(
        markdown_table(
            ["engine", "user", "index docs/s", "p50 ms", "p95 ms", "p99 ms", "mean hits"], rows
        )
    )
    print(
        "\n"
        + markdown_table(
            ["user", *(f"p95 ratio: {label}" for label in comparisons)],
            [[user, *(overhead[label][user] for label in comparisons)] for user in filters],
        )
    )
    path = write_json(
        "search",
        {
            "machine": info,
            "docs": len(docs),
            "units": UNITS,
            "cases": CASES,
            "queries": args.queries,
            "results": results,
            "overhead_p95_ratio": overhead,
            "query_mix": sorted({q.kind for q in queries}),
        },
    )
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
