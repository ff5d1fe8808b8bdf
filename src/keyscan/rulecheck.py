"""`keyscan rules check`: every rule against its own examples and negative examples.

Examples are templates, so that rule files hold no key-shaped text: `{hex:N}`,
`{HEX:N}`, `{alnum:N}`, `{digits:N}`, `{lower:N}`, `{upper:N}` stand for N random
characters of that alphabet, drawn from a generator seeded by the example's own
text (the same example always expands the same way). Any other `{...}` is literal.

An example passes when a default scan reports it under its rule (placeholders
are filtered out, as they are for users); a negative example passes when it
does not. Problems name the rule and a redacted form of the example.
"""

from __future__ import annotations

import random
import re
import string

from keyscan.engine import Engine
from keyscan.filters.placeholders import is_placeholder
from keyscan.model import Fragment, Rule

ALPHABETS = {
    "hex": "0123456789abcdef",
    "HEX": "0123456789ABCDEF",
    "alnum": string.ascii_letters + string.digits,
    "digits": string.digits,
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
}
_TEMPLATE = re.compile(r"\{(" + "|".join(ALPHABETS) + r"):(\d{1,4})\}")
_LONG_RUN = re.compile(r"[A-Za-z0-9+/=]{9,}")


def expand(example: str) -> str:
    """The example with each `{alphabet:N}` replaced by N characters (deterministic)."""
    rng = random.Random(example)

    def draw(match: re.Match[str]) -> str:
        alphabet = ALPHABETS[match[1]]
        return "".join(rng.choice(alphabet) for _ in range(int(match[2])))

    return _TEMPLATE.sub(draw, example)


def redact_example(text: str) -> str:
    """Every long letter/digit run cut to `…` and its last 4 characters: no whole secret."""
    return _LONG_RUN.sub(lambda m: "…" + m[0][-4:], text)


def check_examples(rules: tuple[Rule, ...]) -> list[str]:
    """One line per misbehaving example; empty when every rule passes."""
    engine = Engine(rules)
    problems: list[str] = []
    for rule in rules:
        if not rule.examples:
            problems.append(f"{rule.id}: has no examples: add at least one text it must find")
        for number, example in enumerate(rule.examples, start=1):
            if not _reports(engine, rule, expand(example)):
                problems.append(
                    f"{rule.id}: example {number} is not found: {redact_example(example)}"
                )
        for number, example in enumerate(rule.negative_examples, start=1):
            if _reports(engine, rule, expand(example)):
                problems.append(
                    f"{rule.id}: negative example {number} is found: {redact_example(example)}"
                )
    return problems


def _reports(engine: Engine, rule: Rule, text: str) -> bool:
    findings = engine.scan(Fragment(text.encode("utf-8"), "example"))
    return any(f.rule_id == rule.id and not is_placeholder(f.secret, f.prefix) for f in findings)
