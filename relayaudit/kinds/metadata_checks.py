"""Reading what a response says about where it came from: model names, id formats, relay-software headers.

Pure helpers for the `metadata` kind, kept apart so the matching rules can be read and tested alone.

Model names. Official APIs answer with dated snapshot names ("gpt-4o-2024-08-06" for "gpt-4o"), relays
add provider prefixes ("openai/gpt-4o", "azure/gpt-4o", Bedrock's "anthropic.claude-...-v1:0", Vertex's
"...@20240620") or deployment aliases ("gpt-4o-prod"). Two names are the same model when:
1. both resolve to registry models (directly, or after removing prefixes and date/version suffixes):
   the same registry model;
2. otherwise their stems (lower case, prefixes and date/version suffixes removed, letters and digits
   only) are equal, or one contains the other and what remains is an alias word (at least three letters,
   such as "prod" or "eastus") rather than a size or tier marker ("mini", "lite", "7b", a lone "o").
`resolve` is the registry half alone: a name the registry knows is evidence; an unknown one is not. The
registry is the run's own copy (RunBasis.registry), so a registry edit never changes a stored run's analysis.

Id shapes. A response id is read as (literal prefix, character class of the rest, length of the rest):
"chatcmpl-" + 29 letters and digits, "resp_" + 48 hex digits, "msg_" + 24 letters and digits; a prefix
is literal when most of the baseline's ids share it (Gemini's random ids have none). Relay
software that generates its own ids (LiteLLM's "chatcmpl-" + a UUID, a Bedrock "msg_bdrk_01...") gives
another shape. A relay id conforms when the baseline has its prefix, a class at least as wide
(digits < hex < letters and digits < URL-safe), and a length within the baseline's range.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import cache

from relayaudit.models import Registry

_SUFFIXES = re.compile(
    r"(?:[-_.@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{6}|\d{4}|\d{2}-\d{2}|\d{3}|v\d+:\d+|latest|preview|exp))$"
)
_TIER = re.compile(r"mini|nano|lite|flash|haiku|small|tiny|micro|turbo|instant|distill|light|\d+b")
_CLASSES = ("digits", "hex", "alnum", "urlsafe", "other")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

SOFTWARE_HEADERS: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("LiteLLM", ("x-litellm-", "llm_provider-"), "x-litellm-version"),
    ("new-api", ("x-new-api",), "x-new-api-version"),
    ("one-api", ("x-oneapi",), None),
)
BACKEND_HEADERS = frozenset(
    {
        "x-litellm-model-name",
        "x-upstream-model",
        "x-upstream-model-name",
        "x-backend-model",
        "x-backend-model-name",
        "x-model",
        "x-model-name",
    }
)
UPSTREAM_BASE_HEADERS = ("x-litellm-model-api-base",)


def _variants(name: str) -> list[str]:
    """The name, then with provider prefixes and then date/version suffixes removed, one step at a time."""
    current = name.strip().lower()
    steps = [current]
    current = current.rsplit("/", 1)[-1].split("@", 1)[0]
    steps.append(current)
    if re.match(r"^[a-z]+\.[a-z]", current) and not re.match(r"^[a-z]+\.\d", current):
        current = current.split(".", 1)[1]  # bedrock's vendor prefix, e.g. "anthropic.claude-..."
        steps.append(current)
    while (stripped := _SUFFIXES.sub("", current)) != current and stripped:
        current = stripped
        steps.append(current)
    return steps


@cache
def resolve(name: str, registry: Registry) -> str | None:
    """The registry model a name refers to, or None when the registry does not know it."""
    for candidate in _variants(name):
        found = registry.find(candidate)
        if found is not None:
            return found.name
    return None


def stem(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _variants(name)[-1])


def same_model(a: str, b: str, registry: Registry) -> bool:
    """Whether two model names denote the same model (see the module docstring)."""
    ra, rb = resolve(a, registry), resolve(b, registry)
    if ra is not None and rb is not None:
        return ra == rb
    sa, sb = stem(a), stem(b)
    if sa == sb:
        return True
    short, long = sorted((sa, sb), key=len)
    if len(short) < 3 or short not in long:
        return False
    remainder = long.replace(short, " ", 1)
    return len(re.findall(r"[a-z]", remainder)) >= 3 and not _TIER.search(remainder)


def _class_of(text: str) -> str:
    if _UUID.match(text):
        return "uuid"
    if text.isdigit():
        return "digits"
    if re.fullmatch(r"[0-9a-f]+", text):
        return "hex"
    if re.fullmatch(r"[A-Za-z0-9]+", text):
        return "alnum"
    return "urlsafe" if re.fullmatch(r"[A-Za-z0-9_-]+", text) else "other"


def _prefix(value: str) -> str:
    match = re.match(r"^[A-Za-z]+[-_]", value)
    return match.group(0) if match else ""


Shape = tuple[str, str, int]


class ShapeSet:
    """The id shapes a baseline showed. A prefix counts as literal only when at least ESTABLISHED of the
    baseline's ids share it ("chatcmpl-", "msg_"): a random id that happens to begin "aB-" has none."""

    ESTABLISHED = 0.8

    def __init__(self, values: Iterable[str | None]) -> None:
        values = list(values)
        present = [v for v in values if v]
        counts = Counter(_prefix(v) for v in present)
        self.prefixes = {p for p, n in counts.items() if p and n >= self.ESTABLISHED * len(present)}
        self.classes: dict[str, set[str]] = defaultdict(set)
        self.lengths: dict[str, tuple[int, int]] = {}
        for prefix, kind, length in (self.shape(v) for v in values):
            self.classes[prefix].add(kind)
            low, high = self.lengths.get(prefix, (length, length))
            self.lengths[prefix] = (min(low, length), max(high, length))

    def shape(self, value: str | None) -> Shape:
        """(prefix, class of the rest, length of the rest); ("(none)", "", 0) when there is no id."""
        if not value:
            return ("(none)", "", 0)
        prefix = next((p for p in self.prefixes if value.startswith(p)), "")
        rest = value[len(prefix) :]
        return (prefix, _class_of(rest) if rest else "", len(rest))

    def describe(self, value: str | None) -> str:
        prefix, kind, length = self.shape(value)
        if prefix == "(none)":
            return "none"
        return f"{prefix or '(no prefix)'}+{length} {kind}" if kind else prefix

    def conforms(self, value: str | None) -> bool:
        prefix, kind, length = self.shape(value)
        if prefix not in self.classes:
            return False
        low, high = self.lengths[prefix]
        if not low <= length <= high:
            return False
        seen = self.classes[prefix]
        if kind in seen:
            return True
        ranked = [_CLASSES.index(k) for k in seen if k in _CLASSES]
        return kind in _CLASSES and bool(ranked) and _CLASSES.index(kind) <= max(ranked)


def software_named(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Relay software that response headers name, with its version where a header gives one."""
    headers = list(headers)
    found: dict[str, str] = {}
    for label, prefixes, version_header in SOFTWARE_HEADERS:
        if any(name.startswith(prefixes) for name, _ in headers):
            found[label] = next((value for name, value in headers if name == version_header), "")
    return found


def backend_named(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(header, model name) for every header that names the model the relay called upstream."""
    return [(name, value.strip()) for name, value in headers if name in BACKEND_HEADERS and value.strip()]


def upstream_base(headers: Iterable[tuple[str, str]]) -> str | None:
    return next((value for name, value in headers if name in UPSTREAM_BASE_HEADERS and value), None)
