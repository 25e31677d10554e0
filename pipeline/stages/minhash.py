"""MinHash signatures and LSH band keys, with datasketch's estimator.

datasketch (2.x, scheme ``affine32``) computes, for 32-bit shingle hashes h,
``min over shingles of (fmix32(h) * a + b) mod 2^32`` for each permutation
(a, b).  ``MinHasher`` does exactly that arithmetic, but vectorised over all
shingles at once and with the shingle hashes themselves computed in numpy
(rolling polynomial hashes of characters or word hashes) instead of one
Python SHA-1 call per shingle, which is what makes a naive ``update_batch``
slow.  The permutations are ``datasketch.MinHash(num_perm, seed,
scheme="affine32")``'s, the signatures are valid ``LeanMinHash`` hash values
(tests check both against datasketch's own ``permutations`` and
``update_batch``), and the LSH band/row split is datasketch's parameter
optimiser's answer.  Both are computed here with numpy rather than by
importing datasketch at run time: its package imports scipy (0.4-0.8 s of
CPU in every process that signs, launcher and each worker alike), for what is
three lines of numpy and a quadrature.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib

import numpy as np
import regex

from ..schema import Shingle

_NON_WORD = re.compile(r"[\W_]+")
_WORD = re.compile(r"\w+")
_P64 = np.uint64(0x100000001B3)  # FNV prime: odd multiplier for the rolling hash
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))


def normalise_for_shingles(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _rolling(values: np.ndarray, n: int) -> np.ndarray:
    """64-bit polynomial hash of every n-gram of ``values``, folded to 32 bits."""
    m = len(values) - n + 1
    if m <= 0:
        m, n = 1, len(values)
    v = values.astype(np.uint64, copy=False)
    h = np.zeros(m, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _P64 + v[k:k + m] + np.uint64(1)
    return (h ^ (h >> np.uint64(32))).astype(np.uint32)


def char_shingle_hashes(text: str, n: int) -> np.ndarray:
    """Character n-grams of the text without punctuation and whitespace
    (Chinese has no word spaces; punctuation edits should not matter)."""
    compact = _NON_WORD.sub("", normalise_for_shingles(text))
    if not compact:
        return np.empty(0, dtype=np.uint32)
    return _rolling(np.frombuffer(compact.encode("utf-32-le", "surrogatepass"), dtype=np.uint32), n)


def word_shingle_hashes(text: str, n: int) -> np.ndarray:
    """Word n-grams (``\\w+`` tokens) for space-delimited languages."""
    words = _WORD.findall(normalise_for_shingles(text))
    if not words:
        return np.empty(0, dtype=np.uint32)
    ids = np.fromiter((zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in words), dtype=np.uint64,
                      count=len(words))
    return _rolling(ids, n)


def _fmix32(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = _FMIX32
    h = h ^ (h >> s1)
    h = h * m1
    h = h ^ (h >> s2)
    h = h * m2
    return h ^ (h >> s3)


_SCRIPT = {"ja": regex.compile(r"[\p{Hiragana}\p{Katakana}]"), "ko": regex.compile(r"\p{Hangul}"),
           "th": regex.compile(r"\p{Thai}"), "zh": regex.compile(r"\p{Han}")}
_NON_LETTERS = regex.compile(r"\P{L}+")
SCRIPT_SAMPLE_CHARS = 2000
MIN_SCRIPT_SHARE = 0.3  # of the letters: the text is written in a script without word spaces


def script_language(text: str) -> str | None:
    """The language of a script without word spaces (Han, Kana, Hangul, Thai)
    that carries the text, from its first 2,000 characters; None for texts
    written with word spaces.  Any Kana makes Han text Japanese."""
    head = text[:SCRIPT_SAMPLE_CHARS]
    # what is left without the non-letters: as many as findall(r"\p{L}") finds, without a string per letter
    letters = len(_NON_LETTERS.sub("", head))
    if not letters:
        return None
    counts = {lang: len(p.findall(head)) for lang, p in _SCRIPT.items()}
    if sum(counts.values()) / letters < MIN_SCRIPT_SHARE:
        return None
    if counts["ja"] >= 0.05 * letters:
        return "ja"
    return max(counts, key=counts.get)


def affine32_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of ``datasketch.MinHash(num_perm, seed, scheme="affine32")``: an odd
    multiplier and an offset per permutation, drawn as datasketch draws them."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


_RECENT: dict = {}  # (hasher parameters, language, text) -> signature, insertion ordered
_RECENT_SIZE = 8  # the two signers follow each other per document; a few texts, not many, held in memory


class MinHasher:
    """Signatures for documents; one instance per worker (built in ``setup()``)."""

    def __init__(self, num_perm: int = 256, seed: int = 1, shingles: dict[str, Shingle] | None = None,
                 chunk: int | None = None):
        self.num_perm, self.seed = num_perm, seed
        self.a, self.b = affine32_permutations(self.num_perm, self.seed)
        self.shingles = shingles or {"default": Shingle(unit="word", n=5)}
        # shingles per block: about a million slots (4 MB) of working set
        self.chunk = chunk or max(512, 1_000_000 // self.num_perm)
        self._params = (self.num_perm, self.seed, repr(sorted(self.shingles.items())))

    def shingle_spec(self, text: str, language: str | None) -> Shingle:
        """The shingles of a text: by its language label, unless the label is
        absent or disagrees with the script (Chinese text without a label, or
        labelled English, still gets character shingles; word 5-grams of Chinese
        would be whole clauses)."""
        char_langs = {k for k, v in self.shingles.items() if v.unit == "char" and k != "default"}
        script = script_language(text)
        if script is not None and language not in char_langs:
            language = script
        elif script is None and language in char_langs:
            language = None
        return self.shingles.get(language or "", self.shingles["default"])

    @staticmethod
    def hashes(text: str, spec: Shingle) -> np.ndarray:
        fn = char_shingle_hashes if spec.unit == "char" else word_shingle_hashes
        return fn(text, spec.n)

    def shingle_hashes(self, text: str, language: str | None) -> np.ndarray:
        return self.hashes(text, self.shingle_spec(text, language))

    def signature_of_hashes(self, hv: np.ndarray) -> np.ndarray:
        sig = np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        if hv.size == 0:
            return sig
        mixed = _fmix32(hv.astype(np.uint32, copy=False))
        a, b = self.a[:, None], self.b[:, None]
        with np.errstate(over="ignore"):
            for start in range(0, mixed.size, self.chunk):
                # permutations x shingles, reduced along the contiguous axis
                block = np.multiply(a, mixed[None, start:start + self.chunk])
                block += b
                np.minimum(sig, block.min(axis=1), out=sig)
        return sig

    def signature(self, text: str, language: str | None = None) -> np.ndarray:
        """Read-only: the near-dedup stage and the dedup state rows each sign the
        same kept text, one right after the other in a fused stage, so the last
        few signatures are remembered (shared by every hasher of the same
        parameters in the process) rather than computed twice."""
        key = (self._params, language, text)
        sig = _RECENT.get(key)
        if sig is None:
            sig = self.signature_of_hashes(self.shingle_hashes(text, language))
            sig.flags.writeable = False
            if len(_RECENT) >= _RECENT_SIZE:
                del _RECENT[next(iter(_RECENT))]  # the oldest
            _RECENT[key] = sig
        return sig

    def lean(self, sig: np.ndarray):
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.seed, hashvalues=sig, scheme="affine32")


def estimated_jaccard(s1: np.ndarray, s2: np.ndarray) -> float:
    """The MinHash estimator (datasketch's ``jaccard``): share of equal slots."""
    return float(np.count_nonzero(s1 == s2)) / len(s1)


def lsh_params(threshold: float, num_perm: int, fp_weight: float, fn_weight: float,
               bands: int | None = None, rows: int | None = None) -> tuple[int, int]:
    """(bands, rows): given, or from datasketch's optimiser for the threshold."""
    if bands and rows:
        if bands * rows > num_perm:
            raise ValueError(f"bands*rows = {bands * rows} exceeds num_perm = {num_perm}")
        return int(bands), int(rows)
    return optimal_bands_rows(threshold, num_perm, fp_weight, fn_weight)


def optimal_bands_rows(threshold: float, num_perm: int, fp_weight: float, fn_weight: float) -> tuple[int, int]:
    """datasketch's ``MinHashLSH`` optimiser: the (bands, rows) with bands x rows
    <= num_perm minimising the weighted areas of false positives (the
    candidate probability 1 - (1 - s^r)^b over [0, threshold]) and false
    negatives (its complement over [threshold, 1]), b ascending then r
    ascending, the first minimum kept.  The candidate probability is a
    polynomial of degree b*r <= num_perm, so Gauss-Legendre quadrature with
    num_perm/2 + 1 nodes integrates it exactly (datasketch calls scipy's
    adaptive ``quad`` per pair; a test checks the answers agree)."""
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    t = float(threshold)
    below, above = t / 2 * (nodes + 1), (1 - t) / 2 * (nodes + 1) + t  # the nodes on [0, t] and [t, 1]
    best, opt = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // b + 1, dtype=float)[:, None]
        fp = (1 - (1 - below[None, :] ** rows) ** b) @ weights * (t / 2)
        fn = ((1 - above[None, :] ** rows) ** b) @ weights * ((1 - t) / 2)
        error = fp * fp_weight + fn * fn_weight
        i = int(np.argmin(error))
        if error[i] < best:
            best, opt = float(error[i]), (b, i + 1)
    return opt


def band_keys(sig: np.ndarray, bands: int, rows: int) -> list[str]:
    """One key per band: documents sharing a key are candidate duplicates."""
    out = []
    for i in range(bands):
        h = hashlib.blake2b(sig[i * rows:(i + 1) * rows].tobytes(), digest_size=8, person=b"mdfs-lsh")
        out.append(f"{i:02x}{h.hexdigest()}")
    return out


def candidate_probability(s: float, bands: int, rows: int) -> float:
    return 1.0 - (1.0 - s ** rows) ** bands
