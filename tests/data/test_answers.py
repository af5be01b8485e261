"""Final-answer extraction (`####` and \\boxed{}) and MATH-style equivalence, and grading with them."""
import pytest

from premem.data.answers import (answers_match, extract_answer, extract_boxed, extract_gsm8k, math_equiv,
                                 normalize_math, normalize_number, solution_lines)
from premem.data.format import extract_hash_answer
from premem.data.format import normalize_number as format_normalize_number


# ------------------------------------------------------------------------------------------------- gsm8k
@pytest.mark.parametrize("text, expected", [
    ("She has 3 + 4 = 7.\n#### 7", "7"),
    ("#### 1,234", "1234"),
    ("#### $42.", "42"),
    ("#### 42.0", "42"),
    ("#### 3.50", "3.5"),
    ("#### -7", "-7"),
    ("#### +5", "5"),
    ("#### 0.0", "0"),
    ("first #### 3\nthen #### 5\nDone.", "5"),     # the last `####` counts
    ("#### 12\nDone.", "12"),                       # only the rest of that line
    ("#### 1/2", "1/2"),                            # kept as written, not evaluated
])
def test_extract_gsm8k(text, expected):
    assert extract_gsm8k(text) == expected


@pytest.mark.parametrize("text", ["no marker at all: 42", "####", "#### \nfoo 42", "####   $ ,", ""])
def test_extract_gsm8k_unparseable_never_falls_back(text):
    assert extract_gsm8k(text) is None


def test_format_module_names_agree():
    for text in ("#### 1,234.00", "x\n#### $5", "none"):
        assert extract_hash_answer(text) == extract_gsm8k(text)
    assert format_normalize_number(" $1,000.0 ") == normalize_number(" $1,000.0 ") == "1000"


# ------------------------------------------------------------------------------------------------- boxed
@pytest.mark.parametrize("text, expected", [
    (r"so $\boxed{5}$.", "5"),
    (r"$\boxed{\frac{1}{2}}$", r"\frac{1}{2}"),                        # nested braces
    (r"\boxed{\left(\frac{\sqrt{3}}{2}, 1\right)}", r"\left(\frac{\sqrt{3}}{2}, 1\right)"),
    (r"first \boxed{1}, finally \boxed{2}", "2"),                        # the last one
    (r"is \fbox{720} degrees", "720"),
    (r"\boxed{3} or \fbox{4}", "4"),
    (r"$\boxed 5$.", "5"),                                               # no braces (Hendrycks' form)
    (r"\boxed { 7 }", "7"),
    (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),                                  # escaped braces are not groups
    (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
])
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


@pytest.mark.parametrize("text", [
    "the answer is 5",
    r"\boxed{5",                     # unbalanced
    r"\boxed{1} and then \boxed{2",  # the last is unbalanced: no fall back to the earlier one
    r"\boxed{}",
    r"\boxed",
    r"\boxedfoo{3}",                 # another macro
])
def test_extract_boxed_none(text):
    assert extract_boxed(text) is None


# ------------------------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("a, b", [
    ("0.5", r"\frac{1}{2}"),
    (r"\tfrac12", "0.5"),
    (r"\dfrac{1}{2}", r"\frac12"),
    (".5", "0.5"),
    ("1/2", r"\frac{1}{2}"),
    ("-1/2", r"-\frac{1}{2}"),
    (r"\frac{3}{4}", "0.75"),
    ("10", "10.0"),
    (r"10,\!000", "10000"),
    (r"\sqrt2", r"\sqrt{2}"),
    (r"5\sqrt 2", r"5\sqrt{2}"),
    (r"\frac{\sqrt3}{2}", r"\dfrac{\sqrt{3}}{2}"),
    (r"\frac1{72}", r"\frac{1}{72}"),
    (r"\left(2,-3\right)", "(2,-3)"),
    (r"\left( 2, -3 \right)", "(2, -3)"),
    (r"10\text{ cm}", "10"),
    (r"20\text{ cm}^2", "20"),
    (r"50\%", "50"),
    ("50%", "50"),
    (r"90^\circ", "90"),
    (r"90^{\circ}", "90"),
    (r"\$5", "5"),
    ("$5$", "5"),
    ("x = 5", "5"),
    ("k=3", "3"),
    ("x_1 = 4", "4"),
    (r"9 \pi", r"9\pi"),
    ("(-\\infty, 2) \\cup (2, \\infty)", "(-\\infty,2)\\cup(2,\\infty)"),
    (r"\begin{pmatrix} \frac{1}{2} & 0 \\ 0 & \frac{1}{4} \end{pmatrix}",
     r"\begin{pmatrix}\frac12&0\\0&\tfrac14\end{pmatrix}"),
])
def test_equivalent(a, b):
    assert math_equiv(a, b) and math_equiv(b, a)


@pytest.mark.parametrize("a, b", [
    ("1,2", "2,1"),               # order of list items matters
    ("0.33", r"\frac{1}{3}"),     # numbers compare exactly
    ("2", "3"),
    (r"\frac{1}{2}", r"\frac{1}{3}"),
    (r"\text{(A)}", r"\text{(B)}"),
    ("x+1", "x-1"),
    (r"\sqrt{2}", r"\sqrt{3}"),
    ("(1,2)", "[1,2]"),
])
def test_not_equivalent(a, b):
    assert not math_equiv(a, b) and not math_equiv(b, a)


def test_none_agrees_with_nothing():
    assert not math_equiv(None, "5") and not math_equiv("5", None) and not math_equiv(None, None)


def test_normalize_math_forms():
    assert normalize_math(r"\frac12") == r"\frac{1}{2}"
    assert normalize_math(r"\sqrt[3]8") == r"\sqrt[3]{8}"
    assert normalize_math(r"\frac\pi2") == r"\frac{\pi}{2}"
    assert normalize_math("3/4") == r"\frac{3}{4}"
    assert normalize_math(r"x \rightarrow 2") == r"x\rightarrow2"   # \right only as a whole word
    assert normalize_math(r"\frac1") == r"\frac1"                   # malformed: left alone, no crash


# --------------------------------------------------------------------------------------------- by format
def test_extract_and_match_by_format():
    assert extract_answer("#### 5", "gsm8k") == "5" and extract_answer(r"\boxed{5}", "gsm8k") is None
    assert extract_answer(r"\boxed{5}", "boxed") == "5" and extract_answer("#### 5", "boxed") is None
    assert answers_match("1,000", "1000", "gsm8k") and not answers_match("0.5", "1/2", "gsm8k")
    assert answers_match("0.5", r"\frac{1}{2}", "boxed")
    assert not answers_match(None, "5", "boxed")
    with pytest.raises(ValueError, match="unknown answer format"):
        extract_answer("#### 5", "latex")


def test_solution_lines():
    assert solution_lines("a = 1\nb = 2\n\n#### 3") == 2
    assert solution_lines("one line\n#### 3") == 1
    assert solution_lines("a\nb\nc is \\boxed{3}", "boxed") == 3


def test_grade_uses_the_answer_format():
    from premem.data.answers import grade

    comps = ["... #### 1,000", "#### 999", "no answer", r"so \boxed{1000}"]
    assert grade(comps, "1000") == (1, 2)                      # default: gsm8k
    assert grade(comps, "1000", "gsm8k") == (1, 2)
    comps = [r"\boxed{\frac12}", r"\boxed{0.5}", r"\boxed{1/3}", "#### 0.5", r"\boxed{\frac{1}{2"]
    assert grade(comps, r"\dfrac{1}{2}", "boxed") == (2, 2)    # unparseable counted apart from wrong
