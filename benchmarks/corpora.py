"""Benchmark corpora of different kinds and sizes, built from text that ships with Python or
with a pip package (faker: `pip install -e '.[bench]'`); nothing is downloaded at run time.

Each builder writes one UTF-8 text file into the cache folder (once) and returns its path.
The text depends only on this Python, the faker version and the installed packages, so a
rerun on the same machine builds the same files.
"""

from __future__ import annotations

import ast
import random
import sysconfig
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SEED = 1234
CJK_LOCALES = ("zh_CN", "zh_TW", "ja_JP", "ko_KR")
CJK_CHARS = 2_000_000
DOCS_SKIPPED = {"test", "tests", "idlelib", "turtledemo", "site-packages"}
BIG_BYTES, BIG_BYTES_QUICK = 60_000_000, 6_000_000
TINY_LINES = 500


@dataclass(frozen=True)
class Corpus:
    name: str
    what: str
    builder: Callable[[Path], str]  # (cache folder) -> the text
    file_name: str
    tokens: str = "char"  # or "word": preprocessed with --tokens word

    def build(self, cache: Path) -> Path:
        path = cache / self.file_name
        if not path.exists():
            cache.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(self.builder(cache), encoding="utf-8")
            tmp.replace(path)
        return path


# ---- names ---------------------------------------------------------------------------------
def _faker():
    try:
        import faker
    except ImportError:
        raise SystemExit("the name and CJK corpora need faker: pip install -e '.[bench]'") from None
    return faker


def first_names() -> list[str]:
    """Every first name of every faker locale, folded to lowercase a-z (as makemore's
    names.txt is), each once, in a fixed shuffled order."""
    import importlib
    import pkgutil

    _faker()
    person = importlib.import_module("faker.providers.person")
    names = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attr in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"):
            listed = getattr(provider, attr, None)
            if isinstance(listed, (tuple, list, dict)):  # some locales make it a property
                names.update(filter(None, map(_ascii_lower, listed)))
    return _shuffled(names)


def _ascii_lower(name: str) -> str | None:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return folded if folded.isalpha() else None


def _shuffled(items) -> list[str]:
    # shuffled: sorted names would put one part of the alphabet in the validation split
    ordered = sorted(items)
    random.Random(SEED).shuffle(ordered)
    return ordered


def names_text(cache: Path) -> str:
    return "\n".join(first_names()) + "\n"


def tiny_names_text(cache: Path) -> str:
    """TINY_LINES English first names (~4 KB): a list as small as users bring."""
    from faker.providers.person.en_US import Provider

    english = sorted({n for n in (*Provider.first_names_male, *Provider.first_names_female) if _ascii_lower(n)})
    step = len(english) / TINY_LINES
    return "\n".join(_shuffled(english[int(i * step)] for i in range(TINY_LINES))) + "\n"


# ---- Python ----------------------------------------------------------------------------------
def python_source_text(cache: Path) -> str:
    from rnnkit.text.stdlib import stdlib_text

    return stdlib_text()


def docstrings_text(cache: Path) -> str:
    """The standard library's docstrings (modules, classes, functions) as prose, in file
    and line order; tests and demos left out."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in lib.rglob("*.py") if not DOCS_SKIPPED & set(p.relative_to(lib).parts))
    return "\n\n".join(doc for path in files for doc in _docstrings(path)) + "\n"


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return []
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    nodes = sorted((n for n in ast.walk(tree) if isinstance(n, kinds)), key=lambda n: getattr(n, "lineno", 0))
    return [doc for doc in map(ast.get_docstring, nodes) if doc]


def site_packages_text(limit: int) -> Callable[[Path], str]:
    """Every .py file of this environment's site-packages, in path order, up to `limit` characters."""
    def build(cache: Path) -> str:
        roots = sorted({Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")})
        parts, size = [], 0
        for path in (p for root in roots for p in sorted(root.rglob("*.py"))):
            if size >= limit:
                break
            text = path.read_text(encoding="utf-8", errors="replace")[: limit - size]
            parts.append(text)
            size += len(text)
        return "".join(parts)
    return build


# ---- non-Latin -------------------------------------------------------------------------------
def cjk_text(cache: Path) -> str:
    """Fake people, jobs, companies, addresses and lorem text in Chinese (simplified and
    traditional), Japanese and Korean, the locales taking turns record by record so that
    every split holds all four (~2,800 distinct characters)."""
    faker = _faker()
    fakers = []
    for locale in CJK_LOCALES:
        f = faker.Faker(locale)
        f.seed_instance(SEED)
        fakers.append(f)
    records, size = [], 0
    while size < CJK_CHARS:
        for f in fakers:
            record = "\n".join((f.name(), f.job(), f.company(), f.address(), f.text(200))) + "\n\n"
            records.append(record)
            size += len(record)
    return "".join(records)


def all_corpora(quick: bool = False) -> list[Corpus]:
    big = BIG_BYTES_QUICK if quick else BIG_BYTES
    return [
        Corpus("names", "first names of every faker locale, a-z, one per line", names_text, "names.txt"),
        Corpus("tiny", f"{TINY_LINES} English first names (~4 KB)", tiny_names_text, "tiny-names.txt"),
        Corpus("pysource", "Python standard-library source (~1.2 MB)", python_source_text, "python-source.txt"),
        Corpus("pydocs", "standard-library docstrings, English prose", docstrings_text, "python-docs.txt"),
        Corpus("cjk", "faker zh_CN/zh_TW/ja_JP/ko_KR records, large vocabulary", cjk_text, "cjk.txt"),
        Corpus("words", "the docstrings as words (preprocess --tokens word)", docstrings_text, "python-docs.txt", "word"),
        Corpus("big", f"site-packages .py files, {big / 1e6:.0f} MB", site_packages_text(big),
               f"site-packages-{big // 1_000_000}MB.txt"),
    ]
