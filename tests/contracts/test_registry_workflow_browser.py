# ruff: noqa: F811 - the fixtures imported from test_admin_browser are used by name
"""The registry workflow a release manager can trust, walked in a real headless Chromium.

Each test shows one or more of issue #15's defects fixed, numbered as in the issue:
1 retire needs a second release manager, 2 no sunset in the past, 3 Submit saves pending
edits, 4 the review diff is computed now, 5 no empty contract, 6 history has no Revert,
7 a team sees only its own client, 8 abandoned drafts take no major number, 9 forbidden
pages are admin pages, 10 internal fields are labelled and need an override. The tests
share one BFF (with the demo services, so requests are served and counted) and run in
order, each building on the registry the previous one left.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from aggregation.tokens import mint_token
from tests.contracts.test_admin_browser import (  # noqa: F401 - fixtures used by name
    SERVED_WITHIN_SECONDS,
    browser_binaries,
    click,
    driver,
    find,
    log_in,
    log_out,
    serving,
    success_message,
    wait,
)
from tests.live import LiveBFF, base_env, manage, seed

pytestmark = pytest.mark.browser

REQUESTS_SENT = 4
# The server flushes its request counts every 5 s (aggregation/usage.py).
FLUSHED_WITHIN_SECONDS = 20


@pytest.fixture(scope="module")
def bff(browser_binaries, demo_services, tmp_path_factory) -> Iterator[LiveBFF]:
    """A BFF on a fresh SQLite file with the demo registry, wired to the demo services."""
    workdir = tmp_path_factory.mktemp("bff-workflow")
    env = base_env(DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}", DJANGO_DEBUG="1",
                   RATE_LIMITS="off", **demo_services.env)  # fmt: skip
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    seed(env)
    with LiveBFF(env, migrate=False) as server:
        yield server


def shell(bff: LiveBFF, code: str) -> str:
    """Runs Python against the live server's registry (setup and lookups only)."""
    prelude = (
        "from contracts import services;from contracts.models import *;"
        "from contract_core.schema import Rule;from django.contrib.auth import get_user_model;"
        "U=get_user_model().objects;"
    )
    result = manage("shell", "-c", prelude + code, env=bff.env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def error_message(driver: WebDriver, containing: str) -> None:
    wait(driver).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist .error"), containing),
        message=f"no error message saying {containing!r}",
    )


def version_pk(driver: WebDriver) -> int:
    return int(re.search(r"/contractversion/(\d+)/", driver.current_url).group(1))


def text_of(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).get_property("textContent")


def pick_new_field(driver: WebDriver, label: str) -> None:
    new_row = int(driver.find_element(By.ID, "id_rules-TOTAL_FORMS").get_property("value"))
    click(driver, "#rules-group .add-row a")
    Select(find(driver, f"select[name='rules-{new_row}-field']")).select_by_visible_text(label)


def new_draft(driver: WebDriver, bff: LiveBFF, endpoint: str, *, new_major: bool = False) -> int:
    driver.get(f"{bff.url}/admin/contracts/contractversion/add/")
    Select(find(driver, "#id_endpoint")).select_by_visible_text(endpoint)
    if new_major:
        click(driver, "#id_new_major")
    click(driver, "#new-draft-form input[type=submit]")
    wait(driver).until(ec.url_matches(r"/admin/contracts/contractversion/\d+/change/$"))
    return version_pk(driver)


def switch_user(driver: WebDriver, bff: LiveBFF, username: str) -> None:
    log_out(driver)
    log_in(driver, bff, username)


def test_submit_saves_pending_edits_empty_contracts_are_refused_and_take_no_number(
    bff: LiveBFF, driver: WebDriver
) -> None:
    """Defects 3, 5 and 8."""
    log_in(driver, bff, "mobile-dev")
    # 5: a new major with no rules cannot be submitted (so never approved and served).
    new_draft(driver, bff, "mobile/home", new_major=True)
    assert "new major draft" in find(driver, ".field-version_label .readonly").text
    click(driver, "#submit-for-review-button")
    error_message(driver, "empty contract")
    # 8: deleting the abandoned draft deletes its provisional major: no number was taken.
    click(driver, ".submit-row .deletelink")
    click(driver, "#content form input[type=submit]")
    success_message(driver, "deleted successfully")
    assert shell(bff, "print(MajorVersion.objects.filter(endpoint__name='home').count())") == "1"

    # 3: a rule picked but not saved is saved, then submitted, by the one Submit button.
    draft = new_draft(driver, bff, "mobile/home")
    row = driver.find_element(By.CSS_SELECTOR, ".submit-row")
    assert row.find_elements(By.NAME, "_save") and row.find_elements(By.NAME, "_submit")
    pick_new_field(driver, "user.email (string) · personal data")
    click(driver, "#submit-for-review-button")
    success_message(driver, "submitted for review")
    # The seeded proposal also started from v1.0: the author is told.
    assert "also open on the same base" in find(driver, ".messagelist .warning").text
    assert find(driver, ".field-status .readonly").text == "submitted"
    rules = shell(
        bff,
        f"print([r.source for r in services.rules_of(ContractVersion.objects.get(pk={draft}))])",
    )
    assert "'email'" in rules
    # A submitted version is read-only: no Save, but its team may withdraw it.
    row = driver.find_element(By.CSS_SELECTOR, ".submit-row")
    assert not row.find_elements(By.NAME, "_save") and row.find_elements(By.ID, "withdraw-button")


def test_the_review_diff_is_computed_against_what_is_approved_now(
    bff: LiveBFF, driver: WebDriver
) -> None:
    """Defect 4, with request changes and update from the new base."""
    email = shell(
        bff, "print(ContractVersion.objects.get(status='submitted', rules__source_path='email').pk)"
    )
    phone = shell(bff, (
        "home=Endpoint.objects.get(client__name='mobile',name='home');"
        "base=services.latest_approved(home.majors.get(number=1));dev=U.get(username='mobile-dev');"
        "d=services.CreateDraft(dev,home,from_version=base,summary='Phone on home',"
        "rules=[*services.rules_of(base),Rule('user','phone')]).execute();"
        "services.SubmitForReview(dev,d).execute();print(d.pk)"
    ))  # fmt: skip
    switch_user(driver, bff, "release-manager")
    driver.get(f"{bff.url}/admin/contracts/contractversion/{email}/review/")
    assert find(driver, "#next-version").text == "v1.1"
    assert re.search(
        r"\d+ → \d+ bytes \(\+\d+ bytes, \+[\d.]+ %\)", find(driver, "#review-size").text
    )
    assert '"email"' in text_of(driver, "#review-after") and '"email"' not in text_of(
        driver, "#review-before"
    )
    assert "personal" in find(driver, "#review-rules").text
    click(driver, "#approve-button")
    success_message(driver, "Approved as v1.1")

    # The phone proposal was made against v1.0; its review now compares it with v1.1.
    driver.get(f"{bff.url}/admin/contracts/contractversion/{phone}/review/")
    assert "against v1.1" in find(driver, "#content-main h2").text
    assert find(driver, "#review-compatibility").text.startswith("breaking: approval will refuse")
    assert "user.email" in find(driver, "#review-diff").text
    find(driver, "textarea[name=comment]").send_keys("Rebase on 1.1, please")
    click(driver, "#request-changes-button")
    success_message(driver, "Changes requested")

    switch_user(driver, bff, "mobile-dev")
    driver.get(f"{bff.url}/admin/contracts/contractversion/{phone}/change/")
    notices = find(driver, ".registry-notices").text
    assert "Changes requested: Rebase on 1.1, please" in notices
    assert "v1.1 was approved since" in notices
    click(driver, "#update-from-base-button")
    success_message(driver, "Update from the new base: done")
    click(driver, "#submit-for-review-button")
    success_message(driver, "submitted for review")

    switch_user(driver, bff, "release-manager")
    driver.get(f"{bff.url}/admin/contracts/contractversion/{phone}/review/")
    assert find(driver, "#review-compatibility").text == "additive"
    click(driver, "#approve-button")
    success_message(driver, "Approved as v1.2")
    WebDriverWait(driver, SERVED_WITHIN_SECONDS, poll_frequency=0.1).until(
        lambda _: serving(bff) == "1.2", message="1.2 was not served within 10 s"
    )


def test_retiring_is_proposed_shows_its_effect_and_usage_and_needs_a_second_manager(
    bff: LiveBFF, driver: WebDriver
) -> None:
    """Defect 1, and usage before retirement: a known number of requests, counted."""
    for number in range(REQUESTS_SENT):
        token = mint_token("mobile", f"usr_{number + 1}")
        response = httpx.get(f"{bff.url}/mobile/v1/home", timeout=10,
                             headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert response.json()["meta"]["schemaVersion"] == "1.2"
    v12 = shell(
        bff,
        "print(ContractVersion.objects.get(status='approved', minor=2, "
        "major__endpoint__name='home').pk)",
    )
    retire_page = f"{bff.url}/admin/contracts/contractversion/{v12}/retire/"
    driver.get(f"{bff.url}/admin/contracts/contractversion/{v12}/change/")
    assert "live" in find(driver, ".live-note").text
    click(driver, "#retire-link")

    def counted(driver: WebDriver) -> bool:
        # Every request, not only the first flush: the counts are flushed every few
        # seconds, and one may fall between two of the requests.
        driver.get(retire_page)
        rows = driver.find_elements(By.CSS_SELECTOR, "tr.usage-highlight .usage-24h")
        return bool(rows) and rows[0].text == str(REQUESTS_SENT)

    WebDriverWait(driver, FLUSHED_WITHIN_SECONDS, poll_frequency=1).until(
        counted, message="the requests never all showed up on the retire page"
    )
    assert "in use" in find(driver, "#content-main").text
    row = find(driver, "tr.usage-highlight")
    assert row.find_element(By.CSS_SELECTOR, ".usage-24h").text == str(REQUESTS_SENT)
    assert row.find_element(By.CSS_SELECTOR, ".usage-7d").text == str(REQUESTS_SENT)
    assert f"{REQUESTS_SENT} requests in the last 7 days" in find(driver, "#usage-warning").text
    assert find(driver, "#lifecycle-effect").text == (
        "v1 will be served as 1.1: `user.phone` 'phone' removed"
    )
    click(driver, "#propose-button")
    success_message(driver, "Another release manager must confirm it")
    assert find(driver, "#withdraw-proposal-button")
    assert not driver.find_elements(By.ID, "confirm-button")  # never the proposer
    assert serving(bff) == "1.2"  # nothing changed for clients

    switch_user(driver, bff, "admin")
    driver.get(retire_page)
    click(driver, "#confirm-button")
    success_message(driver, "Proposal confirmed")
    WebDriverWait(driver, SERVED_WITHIN_SECONDS, poll_frequency=0.1).until(
        lambda _: serving(bff) == "1.1", message="1.1 was not served within 10 s"
    )
    driver.get(f"{bff.url}/admin/contracts/contractversion/{v12}/change/")
    audit = text_of(driver, ".field-audit_trail")
    assert "retired: proposed by release-manager, confirmed by admin" in audit


def test_a_sunset_must_be_in_the_future_with_notice(bff: LiveBFF, driver: WebDriver) -> None:
    """Defect 2, with the date picker."""
    major = shell(bff, "print(MajorVersion.objects.get(endpoint__name='product', number=1).pk)")
    page = f"{bff.url}/admin/contracts/majorversion/{major}/deprecate/"
    driver.get(f"{bff.url}/admin/contracts/majorversion/{major}/change/")
    link = find(driver, "#deprecate-link")
    assert "button" in link.get_attribute("class").split()  # styled like the admin's own
    link.click()
    picker = find(driver, "#id_sunset_at")
    assert picker.get_attribute("type") == "datetime-local"
    before = shell(bff, f"print(MajorVersion.objects.get(pk={major}).sunset_at)")

    def propose(at: datetime) -> None:
        driver.get(page)
        field = find(driver, "#id_sunset_at")
        driver.execute_script("arguments[0].value = arguments[1]", field,
                              at.strftime("%Y-%m-%dT%H:%M"))  # fmt: skip
        click(driver, "#propose-button")

    now = datetime.now(UTC)
    propose(now - timedelta(days=1))
    error_message(driver, "the sunset must be in the future")
    propose(now + timedelta(days=10))
    error_message(driver, "at least 30 days' notice")
    assert shell(bff, f"print(MajorVersion.objects.get(pk={major}).sunset_at)") == before
    assert httpx.get(f"{bff.url}/partner/v1/products?ids=prd_1", timeout=10).status_code != 410


def test_permissions_history_and_forbidden_pages(bff: LiveBFF, driver: WebDriver) -> None:
    """Defects 6, 7 and 9."""
    web = shell(
        bff, "print(ContractVersion.objects.filter(major__endpoint__client__name='web').first().pk)"
    )
    mine = shell(
        bff,
        "print(ContractVersion.objects.get(status='approved', minor=0, "
        "major__endpoint__name='home').pk)",
    )
    switch_user(driver, bff, "mobile-dev")
    # 6: the history of an approved version is read-only: no Revert button.
    driver.get(f"{bff.url}/admin/contracts/contractversion/{mine}/history/")
    click(driver, "#change-history tbody tr a")
    find(driver, "#content-main")
    assert not driver.find_elements(By.CSS_SELECTOR, "input[value=Revert]")
    # 7 and 9: another client's history is not found, as an admin page, not JSON.
    driver.get(f"{bff.url}/admin/contracts/contractversion/{web}/history/")
    # (This demo server runs with DEBUG on, so Django's own 404 page answers: still HTML.)
    assert "not found" in find(driver, "h1").text.lower()
    driver.get(f"{bff.url}/admin/contracts/endpoint/")
    assert "mobile/home" in find(driver, "#result_list").text
    assert "web/dashboard" not in driver.find_element(By.ID, "result_list").text
    # Cosmetics: an endpoint links to its versions; the version list fits the screen, marks
    # the live version and shows dates in the one admin format.
    click(driver, "#result_list a[href$='/change/']")
    click(driver, "#endpoint-versions")
    results = find(driver, "#changelist .results")
    assert driver.execute_script("return arguments[0].scrollWidth", results) <= (
        driver.execute_script("return arguments[0].clientWidth", results)
    )
    assert find(driver, "#result_list .live-marker").text == "live"
    updated = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "td.field-updated")]
    assert updated and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", u) for u in updated)
    # 9: a page the role may not see is a 403 admin page.
    driver.get(f"{bff.url}/admin/contracts/contractversion/{mine}/retire/")
    assert find(driver, "#content h1").text == "Not allowed"
    assert find(driver, "#user-tools")  # the admin's header, so an admin page
    # A read-only major has no pointless Save; deprecating is a styled button for managers.
    major = shell(bff, "print(MajorVersion.objects.get(endpoint__name='home', number=1).pk)")
    driver.get(f"{bff.url}/admin/contracts/majorversion/{major}/change/")
    find(driver, "#content-main")
    assert not driver.find_elements(By.NAME, "_save")
    assert not driver.find_elements(By.ID, "deprecate-link")


def test_internal_fields_are_labelled_and_need_a_reason_to_reach_partners(
    bff: LiveBFF, driver: WebDriver
) -> None:
    """Defect 10, and the override in the audit history with its reviewer."""
    switch_user(driver, bff, "partner-dev")
    draft = new_draft(driver, bff, "partner/product")
    pick_new_field(driver, "product.costPrice (number) · internal")
    click(driver, "#submit-for-review-button")
    success_message(driver, "submitted for review")
    assert "product.costPrice: internal" in find(driver, ".registry-notices").text

    switch_user(driver, bff, "release-manager")
    driver.get(f"{bff.url}/admin/contracts/contractversion/{draft}/review/")
    assert "internal" in find(driver, "#review-rules").text
    click(driver, "#approve-button")
    wait(driver).until(ec.text_to_be_present_in_element(
        (By.CSS_SELECTOR, "#review-form .errorlist"), "product.costPrice is internal"
    ))  # fmt: skip
    find(driver, "#id_internal_override").send_keys("Margin feed for ACME, contract 42")
    click(driver, "#approve-button")
    success_message(driver, "Approved as v2.1")
    driver.get(f"{bff.url}/admin/contracts/contractversion/{draft}/change/")
    assert "release-manager" in find(driver, ".field-approver .readonly").text
    audit = text_of(driver, ".field-audit_trail")
    assert "internal fields let through: Margin feed for ACME, contract 42" in audit
