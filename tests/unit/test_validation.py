"""Input rules as tables: one row per rule of the contract."""

import pytest

from errors import BadUserInput
from validation import (
    MAX_EMAIL_LENGTH,
    POLICY,
    check_login_password,
    check_sign_up,
    check_text,
    clean_profile,
    email_key,
    is_clean_text,
    normalize_email,
    password_problem,
    profile_problem,
)

EMAIL = "ann1@x.io"


def email_of_length(length: int) -> str:
    email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * (length - 196)
    return email + ".io"


# ---- email --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        pytest.param("ann@x.io", "ann@x.io", id="plain"),
        pytest.param("  ann@x.io\t\n", "ann@x.io", id="trimmed"),
        pytest.param("Ann@X.IO", "Ann@x.io", id="domain lower-cased, local kept"),
        pytest.param(email_of_length(254), email_of_length(254), id="254 characters"),
    ],
)
def test_valid_email_is_normalized(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(email_of_length(MAX_EMAIL_LENGTH + 1), id="255 characters"),
        pytest.param("plainaddress", id="no at sign"),
        pytest.param("ann@", id="no domain"),
        pytest.param("@x.io", id="no local part"),
        pytest.param("ann@@x.io", id="two at signs"),
        pytest.param("ann smith@x.io", id="space inside"),
        pytest.param("ann@x", id="domain without a dot"),
        pytest.param("ann\x00@x.io", id="NUL"),
        pytest.param("ann\ud800@x.io", id="lone surrogate"),
    ],
)
def test_invalid_email_is_bad_input_for_its_field(raw: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        normalize_email(raw, field="target")
    assert set(raised.value.fields) == {"target"}


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("ann@x.io", "ANN@x.io", id="case"),
        pytest.param("σας@x.io", "ΣΑΣ@x.io", id="final and capital sigma"),
        pytest.param("σας@x.io", "σασ@x.io", id="final and medial sigma"),  # noqa: RUF001
        pytest.param("admin@a.io", "ａｄｍｉｎ@a.io", id="fullwidth"),  # noqa: RUF001
        pytest.param("straße@x.io", "STRASSE@x.io", id="sharp s"),
        pytest.param("ﬁle@x.io", "file@x.io", id="ligature"),
        pytest.param("e\u0301@x.io", "\u00e9@x.io", id="combining accent"),
    ],
)
def test_spellings_of_one_address_share_its_key(one: str, other: str) -> None:
    assert email_key(one) == email_key(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("ann@x.io", "anna@x.io", id="other letters"),
        pytest.param("e@x.io", "\u00e9@x.io", id="accent"),
        pytest.param("i@x.io", "\u0131@x.io", id="dotless i"),
    ],
)
def test_different_addresses_have_different_keys(one: str, other: str) -> None:
    assert email_key(one) != email_key(other)


def test_email_key_is_stable_when_folded_again() -> None:
    for email in ["ΣΑΣ@x.io", "ǰ@x.io", "ﷺ@x.io", "İ@x.io"]:
        assert email_key(email_key(email)) == email_key(email)


# ---- password -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        pytest.param("Ab1!xyz", "8 to 128 characters", id="7 characters"),
        pytest.param("a" * 127 + "1!", "8 to 128 characters", id="129 characters"),
        pytest.param("12345678!", "a letter", id="no letter"),
        pytest.param("abcdefgh!", "a digit", id="no digit"),
        pytest.param("abcdefg1", "other than a letter or digit", id="no other char"),
        pytest.param(EMAIL, "email", id="equal to the email"),
        pytest.param("ANN1@X.IO", "email", id="the email in other case"),
        pytest.param("Password1!", "too common", id="common password"),
        pytest.param("PASSWORD1!", "too common", id="common password in other case"),
        pytest.param("Abc1!\ud800", "not valid text", id="lone surrogate"),
    ],
)
def test_password_breaking_a_rule_has_a_problem(password: str, problem: str) -> None:
    assert problem in (password_problem(password, email=EMAIL) or "")


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Ab1!xyzw", id="8 characters"),
        pytest.param("a" * 126 + "1!", id="128 characters"),
        pytest.param("\U0001f600" * 126 + "a1", id="128 emoji-heavy characters"),
        pytest.param("Abc1!\x00xyz", id="NUL inside"),
        pytest.param("Pässwörd1€", id="non-ASCII"),
    ],
)
def test_password_within_the_rules_has_no_problem(password: str) -> None:
    assert password_problem(password, email=EMAIL) is None


def test_password_policy_is_the_contract() -> None:
    assert (
        POLICY.min_length,
        POLICY.max_length,
        POLICY.requires_letter,
        POLICY.requires_digit,
        POLICY.requires_special,
    ) == (8, 128, True, True, True)


@pytest.mark.parametrize(
    "password",
    ["a" * 129, "Abc1!\ud800"],
    ids=["longer than any account's", "lone surrogate"],
)
def test_login_password_no_account_can_have_is_bad_input(password: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        check_login_password(password)
    assert set(raised.value.fields) == {"password"}


@pytest.mark.parametrize(
    "password", ["short", "a" * 128, ""], ids=["too short", "128 characters", "empty"]
)
def test_login_password_within_length_is_left_to_the_hash(password: str) -> None:
    check_login_password(password)


# ---- profile ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("city", "x" * 100, id="100 characters"),
        pytest.param("organization", "Åsgård & Søn", id="non-ASCII"),
        pytest.param("mobile", "+4712345678", id="mobile with plus"),
        pytest.param("mobile", "1234567", id="mobile of 7 digits"),
        pytest.param("mobile", "+123456789012345", id="mobile of 15 digits"),
    ],
)
def test_profile_value_within_the_rules_has_no_problem(name: str, value: str) -> None:
    assert profile_problem(name, value) is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("city", "x" * 101, id="101 characters"),
        pytest.param("designation", "Os\x00lo", id="NUL"),
        pytest.param("city", "Os\nlo", id="newline inside"),
        pytest.param("organization", "Os\x1blo", id="escape"),
        pytest.param("city", "Os\ud800lo", id="lone surrogate"),
        pytest.param("mobile", "123456", id="mobile of 6 digits"),
        pytest.param("mobile", "+1234567890123456", id="mobile of 16 digits"),
        pytest.param("mobile", "12-34-567", id="mobile with dashes"),
        pytest.param("mobile", "47+12345678", id="mobile with plus inside"),
        pytest.param("mobile", "+47 1234 5678", id="mobile with spaces"),
        pytest.param("mobile", "١٢٣٤٥٦٧٨", id="mobile of non-ASCII digits"),
    ],
)
def test_profile_value_breaking_a_rule_has_a_problem(name: str, value: str) -> None:
    assert profile_problem(name, value) is not None


def test_clean_profile_trims_and_turns_blank_or_null_into_null() -> None:
    cleaned = clean_profile(
        {"city": "  Oslo ", "organization": "   ", "designation": None}
    )
    assert cleaned == {"city": "Oslo", "organization": None, "designation": None}


def test_clean_profile_names_every_bad_field() -> None:
    with pytest.raises(BadUserInput) as raised:
        clean_profile({"city": "x" * 101, "mobile": "12", "organization": "Acme"})
    assert set(raised.value.fields) == {"city", "mobile"}


@pytest.mark.parametrize(
    ("value", "clean"),
    [
        ("Oslo", True),
        ("", True),
        ("Os\tlo", False),
        ("\x7f", False),
        ("\ud800", False),
    ],
    ids=["text", "empty", "tab", "delete", "lone surrogate"],
)
def test_is_clean_text(value: str, clean: bool) -> None:
    assert is_clean_text(value) is clean


# ---- filters compared with stored text -------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, "", "ann", "a" * 40, "Åsgård"],
    ids=["no filter", "empty", "text", "at the limit", "non-ASCII"],
)
def test_filter_text_that_may_match_passes(value: str | None) -> None:
    check_text(value, field="search", max_length=40)


@pytest.mark.parametrize(
    "value",
    ["a" * 41, "a" * 50_000, "ann\x00", "ann\ud800", "ann\n"],
    ids=["over the limit", "50,000 characters", "NUL", "lone surrogate", "newline"],
)
def test_filter_text_nothing_stored_can_match_is_bad_input(value: str) -> None:
    with pytest.raises(BadUserInput) as raised:
        check_text(value, field="search", max_length=40)
    assert set(raised.value.fields) == {"search"}


# ---- sign-up as a whole ----------------------------------------------------------


def test_check_sign_up_returns_normalized_email_and_clean_profile() -> None:
    email, profile = check_sign_up(" Ann@X.io ", "s3cret-Pw!", {"city": " Oslo "})
    assert (email, profile) == ("Ann@x.io", {"city": "Oslo"})


def test_check_sign_up_names_every_problem_at_once() -> None:
    with pytest.raises(BadUserInput) as raised:
        check_sign_up("not-an-email", "short", {"city": "x" * 101, "mobile": "1"})
    assert set(raised.value.fields) == {"email", "password", "city", "mobile"}


def test_check_sign_up_refuses_an_email_whose_key_unfolds_past_254_characters() -> None:
    # U+FDFA unfolds into 18 characters under NFKC: 15 of them make 270.
    with pytest.raises(BadUserInput) as raised:
        check_sign_up("\ufdfa" * 15 + "@x.io", "s3cret-Pw!", {})
    assert set(raised.value.fields) == {"email"}
    check_sign_up("\ufdfa" * 13 + "@x.io", "s3cret-Pw!", {})  # 234 + 5


def test_check_sign_up_compares_the_password_with_the_normalized_email() -> None:
    with pytest.raises(BadUserInput) as raised:
        check_sign_up("  ann1@x.io ", "ann1@x.io", {})
    assert set(raised.value.fields) == {"password"}
