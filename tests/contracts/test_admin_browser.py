"""The registry's admin flow, as people click through it, in a real headless Chromium.

Debian's ``chromium`` and ``chromium-driver`` drive a real BFF server (uvicorn, SQLite);
Selenium is pointed at both binaries and runs offline, so nothing downloads a browser.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.live import LiveBFF, base_env, manage

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOW_TO_GET_A_BROWSER = (
    "The admin's browser test needs Debian's Chromium and its driver at /usr/bin/chromium and "
    "/usr/bin/chromedriver: apt-get install chromium chromium-driver"
)
# Generous: a loaded two-core machine runs the BFF, Chromium and the test at once.
WAIT_SECONDS = 20
SERVED_WITHIN_SECONDS = 10

PASSWORDS = {
    "mobile-dev": "mobile-demo-password",
    "partner-dev": "partner-demo-password",
    "release-manager": "release-demo-password",
    "admin": "admin-demo-password",
}


@pytest.fixture(scope="module")
def browser_binaries() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    if os.environ.get("BFF_REQUIRE_BROWSER") == "1":
        pytest.fail(HOW_TO_GET_A_BROWSER, pytrace=False)
    pytest.skip(HOW_TO_GET_A_BROWSER)


@pytest.fixture(scope="module")
def bff(browser_binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBFF]:
    """A BFF on a fresh SQLite file with the demo users and contracts, no Redis."""
    workdir = tmp_path_factory.mktemp("bff")
    env = base_env(DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}", DJANGO_DEBUG="1")
    env.pop("REDIS_URL", None)
    for command in (("migrate", "--noinput"), ("seed_demo",)):
        result = manage(*command, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    with LiveBFF(env, migrate=False) as server:
        yield server


@pytest.fixture(scope="module")
def driver(browser_binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(profile.parent / "chromedriver.log")
    )
    # With both binaries named, Selenium Manager has nothing to find; offline makes sure it
    # never tries to fetch a browser or a driver anyway.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        browser = webdriver.Chrome(service=service, options=options)
    try:
        yield browser
    finally:
        browser.quit()


class Screenshots:
    """Numbered screenshots of each step, in this test's temporary directory."""

    def __init__(self, driver: WebDriver, directory: Path) -> None:
        self.driver = driver
        self.directory = directory
        self.count = 0

    def take(self, name: str, showing: WebElement | None = None) -> Path:
        if showing is not None:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", showing)
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture
def screenshots(
    driver: WebDriver, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Screenshots]:
    directory = tmp_path / "screenshots"
    directory.mkdir()
    # No reporting hook needed: by teardown, a failed call is already counted.
    failed_before = request.session.testsfailed
    shots = Screenshots(driver, directory)
    yield shots
    if request.session.testsfailed > failed_before:
        shots.take("failure")
        print(f"\nscreenshots of the failed browser test: {directory}")


def wait(driver: WebDriver, timeout: float = WAIT_SECONDS) -> WebDriverWait:
    return WebDriverWait(driver, timeout)


def find(driver: WebDriver, css: str) -> WebElement:
    return wait(driver).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def click(driver: WebDriver, css: str) -> None:
    wait(driver).until(ec.element_to_be_clickable((By.CSS_SELECTOR, css))).click()


def success_message(driver: WebDriver, containing: str) -> None:
    """Waits for the next page's success message (the previous page's may say another)."""
    wait(driver).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".messagelist .success"), containing),
        message=f"no success message saying {containing!r}",
    )


def log_in(driver: WebDriver, bff: LiveBFF, username: str) -> None:
    driver.get(f"{bff.url}/admin/login/?next=/admin/")
    find(driver, "#id_username").send_keys(username)
    find(driver, "#id_password").send_keys(PASSWORDS[username])
    click(driver, "#login-form input[type=submit]")
    find(driver, "#logout-form")
    # textContent, not .text: the admin's CSS shows the user's name in capitals.
    welcome = driver.find_element(By.CSS_SELECTOR, "#user-tools strong")
    assert welcome.get_property("textContent") == username


def log_out(driver: WebDriver) -> None:
    click(driver, "#logout-form button[type=submit]")
    wait(driver).until(ec.text_to_be_present_in_element((By.ID, "content"), "Logged out"))


def shown_preview(driver: WebDriver) -> dict:
    """What the live preview panel shows now (its text is the preview endpoint's JSON)."""
    text = driver.find_element(By.ID, "preview-data").get_property("textContent")
    return json.loads(text)


def preview_showing_email(driver: WebDriver) -> dict | bool:
    shown = shown_preview(driver)
    return shown if "email" in shown.get("payload", {}).get("user", {}) else False


def serving(bff: LiveBFF) -> str | None:
    # /readyz may answer 503 here (no demo services are running); the registry's part of
    # its body still says which version each major serves.
    body = httpx.get(f"{bff.url}/readyz", timeout=5).json()
    return body["checks"]["contracts"]["serving"].get("mobile/home/v1")


def test_team_member_adds_a_field_and_release_manager_approves_it_into_service(
    bff: LiveBFF, driver: WebDriver, screenshots: Screenshots
) -> None:
    assert serving(bff) == "1.0"

    # The mobile team's developer starts a draft of mobile/home.
    log_in(driver, bff, "mobile-dev")
    driver.get(f"{bff.url}/admin/contracts/contractversion/add/")
    Select(find(driver, "#id_endpoint")).select_by_visible_text("mobile/home")
    find(driver, "#id_summary").send_keys("Show the user's email on home")
    screenshots.take("new-draft-form")
    click(driver, "#new-draft-form input[type=submit]")
    wait(driver).until(ec.url_matches(r"/admin/contracts/contractversion/\d+/change/$"))
    draft_pk = int(re.search(r"/contractversion/(\d+)/change/", driver.current_url).group(1))

    # Picks user.email in a new row and watches the live preview follow.
    find(driver, "#preview-payload")
    before = shown_preview(driver)
    assert "email" not in before["payload"]["user"]
    new_row = int(driver.find_element(By.ID, "id_rules-TOTAL_FORMS").get_property("value"))
    screenshots.take("draft-opened")
    click(driver, "#rules-group .add-row a")
    picker = find(driver, f"select[name='rules-{new_row}-field']")
    Select(picker).select_by_visible_text("user.email (string) · personal data")
    screenshots.take("field-picked", showing=picker)
    after = wait(driver).until(
        preview_showing_email, message="the live preview never showed the picked field"
    )
    assert after["payloadBytes"] > before["payloadBytes"]
    assert driver.find_element(By.ID, "contract-preview").get_attribute(
        "data-payload-bytes"
    ) == str(after["payloadBytes"])
    assert [(c["kind"], c["path"]) for c in after["changes"]] == [("field_added", "user.email")]
    screenshots.take("live-preview", showing=driver.find_element(By.ID, "contract-preview"))

    click(driver, "input[name=_continue]")
    success_message(driver, "was changed successfully")
    assert "email" in shown_preview(driver)["payload"]["user"]
    screenshots.take("draft-saved")

    click(driver, "#submit-for-review-button")
    success_message(driver, "submitted for review")
    assert find(driver, ".field-status .readonly").text == "submitted"
    screenshots.take("draft-submitted")
    log_out(driver)

    # The release manager finds it in the queue (next to the demo proposal) and reviews it.
    log_in(driver, bff, "release-manager")
    driver.get(f"{bff.url}/admin/contracts/reviewqueue/")
    review_link = f"a[href$='/admin/contracts/contractversion/{draft_pk}/review/']"
    row = find(driver, review_link).find_element(By.XPATH, "./ancestor::tr")
    assert "mobile-dev" in row.text and "additive" in row.text
    screenshots.take("review-queue")
    click(driver, review_link)
    diff = find(driver, "#review-diff")
    assert "field_added" in diff.text
    additive = diff.find_elements(By.CSS_SELECTOR, "tr.change-additive")
    assert [r.find_element(By.CSS_SELECTOR, "td code").text for r in additive] == ["user.email"]
    assert "user.email" in find(driver, "#review-rules").text
    find(driver, "textarea[name=comment]").send_keys("Email on home is fine: additive.")
    screenshots.take("review-page")
    click(driver, "#approve-button")
    success_message(driver, "Approved as v1.1")
    assert not driver.find_elements(By.CSS_SELECTOR, review_link)
    screenshots.take("approved")

    # Every instance serves it without a deploy: this one, within seconds.
    WebDriverWait(driver, SERVED_WITHIN_SECONDS, poll_frequency=0.1).until(
        lambda _: serving(bff) == "1.1",
        message="mobile/home/v1 was not serving 1.1 within 10 s of the approval",
    )
