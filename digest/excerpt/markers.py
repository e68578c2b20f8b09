"""Label markers: what code and math become in plain text until the labels' language is known.

Markers are Unicode noncharacters (reserved for internal use, never in real text;
digest.excerpt.clean removes any from input), so the excerpt cut can treat each label as one
indivisible unit and choose the label text ([代码] or [code]) only at the end.
"""

from __future__ import annotations

CODE = "\ufdd0"
FORMULA = "\ufdd1"
MATH = "\ufdd2"
MARKERS = (CODE, FORMULA, MATH)

LABELS: dict[str, dict[str, str]] = {
    "zh": {CODE: "[代码]", FORMULA: "[公式]", MATH: "[Math]"},
    "en": {CODE: "[code]", FORMULA: "[formula]", MATH: "[math]"},
}
