"""Phone symbols across the aligners: PocketSphinx's ARPAbet onto the IPA of the viseme table
(models/avatar/visemes.py), and eSpeak's IPA back onto ARPAbet for words the CMU dictionary lacks."""

from __future__ import annotations

import numpy as np

from models.tts.base import Phoneme

# ARPAbet -> IPA, as Piper and eSpeak write them. Diphthongs are two symbols: a phone's span is shared between
# them (DIPHTHONG_SPLIT), as Piper times them, so the jaw closes through the glide.
ARPABET_IPA = {
    "AA": ("ɑ",), "AE": ("æ",), "AH": ("ʌ",), "AO": ("ɔ",), "AW": ("a", "ʊ"), "AY": ("a", "ɪ"), "EH": ("ɛ",),
    "ER": ("ɚ",), "EY": ("e", "ɪ"), "IH": ("ɪ",), "IY": ("i",), "OW": ("o", "ʊ"), "OY": ("ɔ", "ɪ"), "UH": ("ʊ",),
    "UW": ("u",), "B": ("b",), "CH": ("tʃ",), "D": ("d",), "DH": ("ð",), "F": ("f",), "G": ("ɡ",), "HH": ("h",),
    "JH": ("dʒ",), "K": ("k",), "L": ("l",), "M": ("m",), "N": ("n",), "NG": ("ŋ",), "P": ("p",), "R": ("ɹ",),
    "S": ("s",), "SH": ("ʃ",), "T": ("t",), "TH": ("θ",), "V": ("v",), "W": ("w",), "Y": ("j",), "Z": ("z",),
    "ZH": ("ʒ",),
}  # fmt: skip
DIPHTHONG_SPLIT = 0.6  # share of a diphthong's span that its first vowel takes
SILENT = "_"

# eSpeak's IPA (stress and length marks stripped) -> ARPAbet, longest symbols first when a symbol is read
# letter by letter.
_IPA_ARPABET = {
    "aɪ": "AY", "aʊ": "AW", "eɪ": "EY", "oʊ": "OW", "əʊ": "OW", "ɔɪ": "OY", "tʃ": "CH", "dʒ": "JH", "ɑ": "AA",
    "æ": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ᵻ": "IH", "ɔ": "AO", "ɒ": "AA", "ɛ": "EH", "e": "EH", "ɚ": "ER",
    "ɜ": "ER", "ɪ": "IH", "i": "IY", "ʊ": "UH", "u": "UW", "o": "OW", "a": "AA", "b": "B", "d": "D", "ð": "DH",
    "f": "F", "ɡ": "G", "g": "G", "h": "HH", "k": "K", "l": "L", "m": "M", "n": "N", "ŋ": "NG", "p": "P",
    "ɹ": "R", "r": "R", "s": "S", "ʃ": "SH", "t": "T", "ɾ": "T", "θ": "TH", "v": "V", "w": "W", "j": "Y",
    "z": "Z", "ʒ": "ZH", "ʔ": "T", "x": "K",
}  # fmt: skip
_MARKS = "ˈˌːˑ̩̃"


def ipa_to_arpabet(symbols: list[str]) -> list[str]:
    """ARPAbet phones of eSpeak IPA symbols (unknown letters are dropped: a pronunciation for the aligner, not
    a transcription)."""
    out: list[str] = []
    for raw in symbols:
        s = "".join(c for c in raw if c not in _MARKS)
        while s:
            for n in (2, 1):
                if s[:n] in _IPA_ARPABET:
                    out.append(_IPA_ARPABET[s[:n]])
                    s = s[n:]
                    break
            else:
                s = s[1:]
    return out


def arpabet_phonemes(phones: list[tuple[str, float, float]]) -> list[Phoneme]:
    """(ARPAbet phone, start s, duration s) -> IPA Phonemes; silence, noise and fillers become "_"."""
    out: list[Phoneme] = []
    for name, start, dur in phones:
        ipa = ARPABET_IPA.get(name.upper().rstrip("012"))
        if ipa is None:
            out.append(Phoneme(SILENT, start, dur))
        elif len(ipa) == 1:
            out.append(Phoneme(ipa[0], start, dur))
        else:
            first = dur * DIPHTHONG_SPLIT
            out += [Phoneme(ipa[0], start, first), Phoneme(ipa[1], start + first, dur - first)]
    return merge_silence(out)


def merge_silence(phonemes: list[Phoneme]) -> list[Phoneme]:
    """Neighbouring silences as one."""
    out: list[Phoneme] = []
    for p in phonemes:
        if out and p.symbol == SILENT and out[-1].symbol == SILENT:
            prev = out[-1]
            out[-1] = Phoneme(SILENT, prev.start, p.start + p.duration - prev.start)
        else:
            out.append(p)
    return out


def shift(phonemes: list[Phoneme], offset: float) -> list[Phoneme]:
    return [Phoneme(p.symbol, p.start + offset, p.duration) for p in phonemes]


_VOWEL_CHARS = frozenset("aeiouæɑɐɒɔəɚɛɜɪʊʌyøœɨɤᵻ")


def respell(phones: list[tuple[str, float, float]], symbols: list[str]) -> list[Phoneme]:
    """Recognised ARPAbet phones with the IPA symbols the text's phonemizer gives (eSpeak, as Piper uses), which
    carry stress (speakers open the jaw wider on stressed syllables) and the reduced vowels ARPAbet's AH hides.
    The two sequences are matched by edit distance; a phone without a partner keeps its own symbol."""
    spoken = [i for i, (name, _, _) in enumerate(phones) if name.upper().rstrip("012") in ARPABET_IPA]
    wanted = [(s, ipa_to_arpabet([s])) for s in symbols if ipa_to_arpabet([s])]
    pairs = _match([phones[i][0].upper().rstrip("012") for i in spoken], [w[1][0] for w in wanted])
    out: list[Phoneme] = []
    given = {spoken[a]: wanted[b][0] for a, b in pairs}
    for i, (name, start, dur) in enumerate(phones):
        if i in given:
            out += _split(given[i], start, dur)
        else:
            out += arpabet_phonemes([(name, start, dur)])
    return merge_silence(out)


def _split(symbol: str, start: float, dur: float) -> list[Phoneme]:
    """One IPA symbol over a span; a diphthong ("ˈaɪ") as its two vowels, the stress on the first."""
    stress = "".join(c for c in symbol if c in "ˈˌ")
    core = "".join(c for c in symbol if c not in "ˈˌːˑ")
    vowels = [c for c in core if c in _VOWEL_CHARS]
    if len(core) == 2 and len(vowels) == 2:
        first = dur * DIPHTHONG_SPLIT
        return [Phoneme(stress + core[0], start, first), Phoneme(core[1], start + first, dur - first)]
    return [Phoneme(symbol.replace("ː", ""), start, dur)]


_ARPABET_VOWELS = frozenset(["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"])
MATCH_BAND = 30  # the edit-distance table is filled this far either side of its diagonal


def _sub(x: str, y: str) -> float:
    return 0.0 if x == y else 0.6 if (x in _ARPABET_VOWELS) == (y in _ARPABET_VOWELS) else 1.5


def _match(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """Index pairs of an edit-distance alignment of two ARPAbet sequences (a substitution within vowels or within
    consonants costs less than across; one across is left unpaired), in a band around the diagonal."""
    n, m = len(a), len(b)
    cost = np.full((n + 1, m + 1), np.inf)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    band = lambda i: range(max(1, i * m // max(n, 1) - MATCH_BAND), min(m, i * m // max(n, 1) + MATCH_BAND) + 1)  # noqa: E731
    for i in range(1, n + 1):
        for j in band(i):
            cost[i, j] = min(cost[i - 1, j - 1] + _sub(a[i - 1], b[j - 1]), cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs, i, j = [], n, m
    while i and j:
        sub = _sub(a[i - 1], b[j - 1])
        if cost[i, j] == cost[i - 1, j - 1] + sub:
            if sub < 1.5:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def delay(phonemes: list[Phoneme], vowels: float, consonants: float) -> list[Phoneme]:
    """Every boundary after the first moved later (a recogniser's boundaries sit earlier in a phone than a TTS
    engine's marks, which the face plan was tuned on: by more before a consonant than before a vowel); the
    total span is kept."""
    if not phonemes:
        return []
    end = phonemes[-1].start + phonemes[-1].duration
    later = [vowels if p.symbol.strip("ˈˌ")[:1] in _VOWEL_CHARS else consonants for p in phonemes]
    starts = [phonemes[0].start] + [min(p.start + d, end) for p, d in zip(phonemes[1:], later[1:], strict=True)]
    starts = list(np.maximum.accumulate(starts))
    ends = [*starts[1:], end]
    return [Phoneme(p.symbol, a, b - a) for p, a, b in zip(phonemes, starts, ends, strict=True) if b > a]


BILABIALS = frozenset("mbp")
BILABIAL_MAX_S = 0.045  # a TTS engine marks the last ~35-45 ms of a bilabial (its closure), an HMM the whole phone


def closing(phonemes: list[Phoneme], early: float = 0.012, longest: float = BILABIAL_MAX_S) -> list[Phoneme]:
    """Bilabials cut to their last `longest` seconds, ending `early` before the recogniser's boundary: the
    lips shut as a TTS engine's timings shut them (the renderer's closure rule was tuned on those)."""
    out = list(phonemes)
    for i in range(1, len(out) - 1):
        p = out[i]
        if p.symbol.strip("ˈˌ") not in BILABIALS:
            continue
        end = p.start + p.duration - early
        start = max(p.start, end - longest)
        before, after = out[i - 1], out[i + 1]
        out[i - 1] = Phoneme(before.symbol, before.start, start - before.start)
        out[i] = Phoneme(p.symbol, start, end - start)
        out[i + 1] = Phoneme(after.symbol, end, after.start + after.duration - end)
    return [p for p in out if p.duration > 0]


def quiet_edges(phonemes: list[Phoneme], audio: np.ndarray, sample_rate: int, floor_db: float = -40.0) -> list[Phoneme]:
    """Silence where the audio is silent before the first sound and after the last (an HMM stretches the first
    and last phone over them, and a final m or p would hold the lips shut through the pause)."""
    if not phonemes or not len(audio):
        return phonemes
    hop = max(sample_rate // 100, 1)
    n = len(audio) // hop
    if n == 0:
        return phonemes
    db = 10 * np.log10(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(db > np.percentile(db, 95) + floor_db)
    if not len(loud):
        return phonemes
    first, last = loud[0] * hop / sample_rate, (loud[-1] + 1) * hop / sample_rate
    out = []
    for p in phonemes:
        a, b = max(p.start, first), min(p.start + p.duration, last)
        if b > a:
            out.append(Phoneme(p.symbol, a, b - a))
    end = phonemes[-1].start + phonemes[-1].duration
    head = [Phoneme(SILENT, 0.0, first)] if first > 0 else []
    tail = [Phoneme(SILENT, last, end - last)] if end > last else []
    return merge_silence(head + out + tail)
