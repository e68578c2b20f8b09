"""axe-core in a Playwright page: the accessibility rules engine, run where the page is.

axe-core comes from the npm registry, pinned by tests/axe/package-lock.json and installed into
tests/axe/node_modules by scripts/system-deps (as MJML.js is into tests/mjml). `audit` puts
its script into the page through the DevTools protocol (`page.evaluate`), which the page's own
Content-Security-Policy does not govern, so a page is checked under the policy it is served
with; then it runs the rules of the given tags over the whole document and returns what
failed, by impact.

One policy does govern it: a document sandboxed without `allow-scripts` (an archived issue,
`Content-Security-Policy: sandbox ...`) runs no task of its own, so the synchronous injection
works but `axe.run`, which goes on in promises and timers, would never return and the test
would hang. `audit` refuses such a page at once (served over HTTP, its origin is opaque,
"null"); open it in a context with `bypass_csp=True` to check its markup and styles.

    found = audit(page)                      # WCAG 2.1 A and AA rules
    assert found.serious() == [], found.report()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from playwright.sync_api import Page

from tests.support import paths

AXE = paths.TESTS / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
# The rules that read colours: all that a change of colour scheme alone can turn.
COLOUR_RULES = ("color-contrast", "link-in-text-block")
IMPACTS = ("critical", "serious", "moderate", "minor")


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule that failed, and where: a CSS selector and axe's summary per element."""

    rule: str
    impact: str
    help: str
    nodes: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        where = "; ".join(f"{target}: {summary}" for target, summary in self.nodes[:5])
        return f"[{self.impact}] {self.rule} ({self.help}): {where}"


@dataclass(frozen=True, slots=True)
class Audit:
    """What axe found on one page (`url`), grouped by impact."""

    url: str
    by_impact: dict[str, list[Violation]] = field(default_factory=dict)

    def serious(self) -> list[Violation]:
        """The serious and critical violations."""
        return [*self.by_impact.get("critical", []), *self.by_impact.get("serious", [])]

    def report(self) -> str:
        lines = [v.describe() for impact in IMPACTS for v in self.by_impact.get(impact, [])]
        return f"{self.url}\n" + "\n".join(lines)


@lru_cache(maxsize=1)
def _source() -> str:
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: run scripts/system-deps")
    return AXE.read_text("utf-8")


def audit(page: Page, tags: tuple[str, ...] = WCAG_21_AA, only: tuple[str, ...] = ()) -> Audit:
    """Run axe-core's rules tagged `tags` on the page as it is now (of them, only the rules
    named in `only`, when given). A sandboxed page (an HTTP page of opaque origin) is
    refused rather than waited for forever: it runs none of axe's tasks."""
    if page.evaluate("() => location.protocol.startsWith('http') && window.origin === 'null'"):
        raise RuntimeError(
            f"{page.url} is sandboxed and runs no script, so axe-core would never finish: "
            "open it in a browser context with bypass_csp=True"
        )
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_source() + "\n;void 0")
    results: dict[str, Any] = page.evaluate(
        """async ([tags, only]) => {
            const found = await axe.run(document, {
                runOnly: { type: "tag", values: tags },
                rules: only.length ? Object.fromEntries(axe.getRules(tags).map(
                    (r) => [r.ruleId, { enabled: only.includes(r.ruleId) }])) : {},
                resultTypes: ["violations"],
            });
            return { violations: found.violations.map((v) => ({
                id: v.id, impact: v.impact || "minor", help: v.help,
                nodes: v.nodes.map((n) => [n.target.join(" "), n.failureSummary || ""]),
            })) };
        }""",
        [list(tags), list(only)],
    )
    by_impact: dict[str, list[Violation]] = {}
    for found in results["violations"]:
        violation = Violation(
            rule=found["id"],
            impact=found["impact"],
            help=found["help"],
            nodes=tuple((str(t), str(s)) for t, s in found["nodes"]),
        )
        by_impact.setdefault(violation.impact, []).append(violation)
    return Audit(url=page.url, by_impact=by_impact)
