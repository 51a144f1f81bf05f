from tests.onboarding.conftest import onboarding_enabled  # noqa: F401 - a fixture
